import Foundation
import MingusCore
import MingusLogs
import MingusPostgres
import MingusSecurity
import MingusSecurityMonitoring
import TestSupport

/// Two figures of the security worker:
/// - detection → incident → first automated action: brute forces (10 failed logins from a new
///   address each) sent through POST /api/logs while a steady stream of ordinary lines flows,
///   timed from the send to the playbook's block of the address (its step's `done_at`);
/// - one DigitalOcean poll cycle over `droplets` droplets of the local stand-in (8 metric
///   requests each), from the schedule firing to the cycle's commit.
enum SecurityBenchmarks {
    struct Figures {
        var attacks: Int
        var backgroundLinesPerSecond: Double
        var p50: Double
        var p99: Double
        var droplets: Int
        var pollSeconds: Double
        var samples: Int
    }

    static func run(attacks: Int, droplets: Int) async throws -> Figures {
        let standIn = try await DigitalOceanStandIn.start()
        defer { standIn.process.signal(SIGTERM) }
        try await standIn.control(["droplets": (1...droplets).map { ["id": 1_000_000 + $0, "name": "droplet-\($0)", "status": "active"] },
                                   "cpu": ["1000001": 99]])
        let alerting = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("alerting") + ".yaml")
        try "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n".write(to: alerting, atomically: true, encoding: .utf8)
        let cluster = try await Cluster.start(environment: [
            "MINGUS_ALERTING_CONFIG": alerting.path, "DIGITALOCEAN_TOKEN": DigitalOceanStandIn.token, "MINGUS_DO_API_URL": standIn.base,
            "MINGUS_DO_POLL_SCHEDULE": "0 0 1 1 *",
        ], privateBroker: true)
        do {
            try cluster.startWorker("mingus-logs-worker")
            try cluster.startWorker("mingus-alerts-worker")
            let worker = try cluster.startWorker("mingus-security-worker")
            _ = try await eventually(timeout: .seconds(60)) {
                try await cluster.database.query("SELECT count(*) FROM mingus_periodic_schedules WHERE name = 'security.poll'")[0].decode(Int.self, at: 0) == 1
            }
            let key = try await cluster.key([.logsWrite, .securityRead]).key
            func send(_ lines: [String]) async throws {
                let body = lines.joined(separator: "\n")
                let answer = try await httpRequest(cluster.base + "/api/logs", method: "POST",
                                                   headers: ["Authorization": "Bearer \(key)", "Content-Type": "text/plain"], body: Data(body.utf8))
                guard answer.status == 202 else { throw WorkerProcessError(message: "POST /api/logs answered \(answer.status): \(answer.body)") }
            }
            // A steady stream of ordinary lines: 500 every 250 ms, until the attacks are over.
            let background = Task {
                var sent = 0
                let started = ContinuousClock.now
                while !Task.isCancelled {
                    try? await send((0..<500).map { "GET /api/items/\(sent + $0) 200 \(($0 * 7) % 300) ms user=u\($0 % 50)" })
                    sent += 500
                    try? await Task.sleep(for: .milliseconds(250))
                }
                return Double(sent) / (ContinuousClock.now - started).inSeconds
            }
            var sentAt: [String: Date] = [:]
            for n in 0..<attacks {
                let address = "198.18.\(n / 250).\(n % 250 + 1)"
                let lines = (0..<10).map { "sshd[\(n)]: Failed password for root from \(address) port \(40_000 + $0) ssh2" }
                sentAt[address] = Date()
                try await send(lines)
                try await Task.sleep(for: .milliseconds(200))
            }
            var done: [String: Date] = [:]
            let finished = try await eventually(timeout: .seconds(120)) {
                done = [:]
                for row in try await cluster.database.query("""
                    SELECT i.source_address, s.done_at FROM security_incidents i
                    JOIN security_incident_steps s ON s.incident_id = i.id AND s.position = 1 AND s.status = 'done'
                    """) {
                    done[try row.decode(String.self, at: 0)] = try row.decode(Date.self, at: 1)
                }
                return done.count >= attacks
            }
            background.cancel()
            let rate = await background.value
            guard finished else { throw WorkerProcessError(message: "\(done.count) of \(attacks) attacks blocked\n\(cluster.output)") }
            let latencies = sentAt.compactMap { address, at in done[address].map { $0.timeIntervalSince(at) * 1000 } }.sorted()
            func percentile(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }

            // One poll cycle over every droplet.
            let triggered = Date()
            try await cluster.database.execute("UPDATE mingus_periodic_schedules SET next_run_at = now() WHERE name = 'security.poll'")
            var polled: (Date, Int)?
            _ = try await eventually(timeout: .seconds(300)) {
                guard let row = try await cluster.database.query("""
                    SELECT last_success_at, samples FROM do_poll_health WHERE last_success_at > \(triggered)
                    """).first else { return false }
                polled = (try row.decode(Date.self, at: 0), try row.decode(Int.self, at: 1))
                return true
            }
            guard let polled else { throw WorkerProcessError(message: "the poll did not finish\n\(worker.output.suffix(3000))") }
            let commit = try await cluster.database.query("SELECT now()")[0].decode(Date.self, at: 0)
            let violations = try await standIn.violations()
            guard violations.isEmpty else { throw WorkerProcessError(message: "the stand-in saw contract violations: \(violations.prefix(5))") }
            try await cluster.stopCleanly()
            try await standIn.stop()
            return Figures(attacks: attacks, backgroundLinesPerSecond: rate, p50: percentile(0.5), p99: percentile(0.99), droplets: droplets,
                           pollSeconds: min(commit, Date()).timeIntervalSince(triggered), samples: polled.1)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
    }
}
