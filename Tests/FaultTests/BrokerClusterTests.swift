import Foundation
import MingusSecurity
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `Deploy/local/<script>` with `arguments`; returns what it printed, or throws naming the
/// exit status.
@discardableResult
func localScript(_ script: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = TestEnvironment.repositoryRoot.appendingPathComponent("Deploy/local/\(script)")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw WorkerProcessError(message: "\(script) \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
    }
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Runs `Deploy/local/rabbitmq-cluster.sh` with `arguments`.
@discardableResult
func rabbitmqCluster(_ arguments: String...) throws -> String {
    try localScript("rabbitmq-cluster.sh", arguments)
}

/// The gateway and payments workers on a three-node RabbitMQ cluster (quorum queues with a member
/// on each node) that loses nodes under load; `make test` runs these alone, after the others.
@Suite("RabbitMQ cluster failover", .serialized)
struct BrokerClusterTests {
    @Test("under payment load a node crashes, then a second stops, then both come back: every accepted payment is decided once; 503 only without a majority")
    func nodeLossUnderLoad() async throws {
        try rabbitmqCluster("up")
        let virtualHost = TestEnvironment.uniqueName("failover")
        try rabbitmqCluster("rabbitmqctl", "1", "-q", "add_vhost", virtualHost)
        try rabbitmqCluster("rabbitmqctl", "1", "-q", "set_permissions", "-p", virtualHost, "guest", ".*", ".*", ".*")
        let brokers = try rabbitmqCluster("url") + virtualHost
        // Every process starts on node 1, the one that crashes first.
        let cluster = try await Cluster.start(workers: 2, environment: ["MINGUS_AMQP_URL": brokers])
        let key = try await cluster.key([.admin]).key
        let clients = 8

        struct Window { var start: Date; var end: Date }
        let (load, noMajority, recovery) = try await PaymentLoad.run(on: cluster, key: key, clients: clients) { load in
            #expect(try await eventually(timeout: .seconds(60)) { try await load.decidedCount(in: cluster) >= 100 },
                    "payments flow on three nodes\n\(cluster.output)")

            // Node 1 crashes: two of three remain, a majority. Publishing and consuming go on.
            let crashed = Date()
            try rabbitmqCluster("kill", "1")
            let decidedAtCrash = try await load.decidedCount(in: cluster)
            #expect(try await eventually(timeout: .seconds(60)) { load.acceptedCount(since: crashed) >= 100 },
                    "the gateway accepts payments on the other nodes: \(load.refused)\n\(cluster.output)")
            var consumedAgain: Date?
            #expect(try await eventually(timeout: .seconds(60)) {
                let resumed = try await load.decidedCount(in: cluster) >= decidedAtCrash + 100
                if resumed && consumedAgain == nil { consumedAgain = Date() }
                return resumed
            }, "the workers consume on the other nodes\n\(cluster.output)")
            let recovery = (consumedAgain ?? Date()).timeIntervalSince(crashed)

            // Node 2 stops too: one node of three, no majority. Nothing is accepted.
            try rabbitmqCluster("stop", "2")
            let lost = Date()
            // Wait until every client has been refused several times since the majority went.
            #expect(try await eventually(timeout: .seconds(60)) { load.refusedAt.filter { $0 > lost }.count >= 4 * clients },
                    "the gateway refuses jobs without a majority: \(load.refused)\n\(cluster.output)")
            let refusing = load.refusedAt.first { $0 > lost } ?? lost
            // Requests already in flight when the refusals began may still have been taken.
            let acceptedWithoutMajority = load.acceptedCount(since: refusing.addingTimeInterval(3))

            // Node 2 back: a majority again.
            try rabbitmqCluster("start", "2")
            let regained = Date()
            #expect(try await eventually(timeout: .seconds(90)) { load.acceptedCount(since: regained) >= 100 },
                    "payments are accepted once a majority is back: \(load.refused)\n\(cluster.output)")
            #expect(acceptedWithoutMajority == 0, "accepted while one node of three was up")

            try rabbitmqCluster("start", "1")
            let whole = Date()
            #expect(try await eventually(timeout: .seconds(60)) { load.acceptedCount(since: whole) >= 100 })
            return (load, Window(start: lost, end: regained), recovery)
        }

        // Every accepted payment is decided, once.
        let settled = try await eventually(timeout: .seconds(180)) { try await load.decidedCount(in: cluster) == load.accepted.count }
        let decisions = try await load.decisions(in: cluster)
        #expect(settled, "\(decisions)\n\(cluster.output)")
        #expect(decisions.decided == decisions.accepted, "\(decisions)")
        #expect(decisions.auditedTwice == 0, "\(decisions)")
        #expect(decisions.auditEvents == decisions.accepted, "\(decisions)")
        // Refusals: without a majority, and at most one per client whose request was in flight
        // on node 1 when it crashed.
        #expect(load.refused.keys.allSatisfy { $0 == 503 }, "\(load.refused)")
        let during = load.refusedAt.filter { $0 >= noMajority.start && $0 <= noMajority.end.addingTimeInterval(15) }
        #expect(!during.isEmpty, "requests were refused while no majority existed")
        let outside = load.refusedAt.filter { $0 < noMajority.start || $0 > noMajority.end.addingTimeInterval(15) }
        #expect(outside.count <= clients, """
            \(outside.count) refusals while a majority was up, at (s from losing the majority): \
            \(outside.map { String(format: "%.1f", $0.timeIntervalSince(noMajority.start)) })
            """)
        print("failover: node 1 crashed → consumption resumed on the others in \(String(format: "%.1f", recovery)) s; "
              + "\(load.accepted.count) payments accepted, \(load.refused[503] ?? 0) answered 503, \(outside.count) of them with a majority up "
              + "(no majority for \(String(format: "%.0f", noMajority.end.timeIntervalSince(noMajority.start))) s)")
        try await cluster.stopCleanly()
        try rabbitmqCluster("rabbitmqctl", "1", "-q", "delete_vhost", virtualHost)
        try rabbitmqCluster("down")
    }
}
