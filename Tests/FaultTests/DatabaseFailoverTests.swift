import Foundation
import MingusPostgres
import MingusSecurity
import TestSupport
import Testing

/// Runs `Deploy/local/pg-failover.sh` with `arguments`.
@discardableResult
func pgFailover(_ arguments: String...) throws -> String {
    try localScript("pg-failover.sh", arguments)
}

/// The gateway and a payments worker on a PostgreSQL primary with a synchronous replica that is
/// promoted under load; `make test` runs these alone, after the others.
@Suite("PostgreSQL failover", .serialized)
struct DatabaseFailoverTests {
    @Test("under payment load the primary crashes and its synchronous replica is promoted: no committed payment is lost or applied twice, and work resumes")
    func promoteReplicaUnderLoad() async throws {
        try pgFailover("up")
        let server = try pgFailover("url")
        let cluster = try await Cluster.start(workers: 1, privateBroker: true, databaseServer: server)
        let key = try await cluster.key([.admin]).key

        let (load, failedOverAt, resumedAfter) = try await PaymentLoad.run(on: cluster, key: key, clients: 8) { load in
            #expect(try await eventually(timeout: .seconds(60)) { try await load.decidedCount(in: cluster) >= 300 },
                    "payments flow on the primary\n\(cluster.output)")
            let decidedBefore = try await load.decidedCount(in: cluster)
            try pgFailover("promote")
            let failedOverAt = Date()
            var resumedAt: Date?
            #expect(try await eventually(timeout: .seconds(90)) {
                let more = try await load.decidedCount(in: cluster) >= decidedBefore + 300
                if more && resumedAt == nil { resumedAt = Date() }
                return more
            }, "the worker applies jobs on the promoted replica: \(load.refused)\n\(cluster.output)")
            #expect(try await eventually(timeout: .seconds(60)) { load.acceptedCount(since: failedOverAt.addingTimeInterval(1)) >= 100 },
                    "the gateway serves again: \(load.refused)\n\(cluster.output)")
            return (load, failedOverAt, (resumedAt ?? Date()).timeIntervalSince(failedOverAt))
        }

        // Every payment the gateway accepted is decided, each once, on the promoted server.
        let settled = try await eventually(timeout: .seconds(180)) { try await load.decidedCount(in: cluster) == load.accepted.count }
        let decisions = try await load.decisions(in: cluster)
        #expect(settled, "\(decisions)\n\(cluster.output)")
        #expect(decisions.decided == decisions.accepted, "\(decisions)")
        #expect(decisions.auditedTwice == 0, "\(decisions)")
        #expect(decisions.auditEvents == decisions.accepted, "\(decisions)")
        // While no server took writes, requests were refused as retryable.
        #expect(load.refused.keys.allSatisfy { $0 == 503 }, "\(load.refused)")
        #expect(try await cluster.database.query("SELECT inet_server_port()")[0].decode(Int.self, at: 0)
                == (try #require(URLComponents(string: "postgresql://x@\(server.split(separator: ",").last!)")?.port)),
                "the cluster works on the promoted replica")
        print("database failover: primary crashed at \(failedOverAt); the next 300 payments were decided \(String(format: "%.1f", resumedAfter)) s later; "
              + "\(load.accepted.count) accepted, refusals \(load.refused)")
        try await cluster.stopCleanly()
        try pgFailover("down")
    }
}
