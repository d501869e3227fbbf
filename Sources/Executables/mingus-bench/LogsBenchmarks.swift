import Foundation
import MingusPostgres
import MingusLogs
import MingusSecurity
import TestSupport

/// Log lines end to end: `POST /api/logs` (text/plain bodies of 5,000 lines, 8 clients) to every
/// line redacted, mined, stored with COPY and counted, through a release gateway and one logs
/// worker; the lines/s the gateway answered and the lines/s stored, in the same run.
enum LogsBenchmarks {
    struct Figures {
        var lines: Int
        var acceptedPerSecond: Double
        var storedPerSecond: Double
        var templates: Int
    }

    /// `count` lines from 40 shapes with changing values, some with e-mail addresses to redact.
    static func lines(_ count: Int) -> [String] {
        let users = ["alice", "bob", "carol", "dave", "erin"]
        return (0..<count).map { i in
            let n = i % 40
            let value = (i &* 2_654_435_761) % 100_000
            switch n % 8 {
            case 0: return "<14>1 2026-11-26T12:00:00Z web-\(n) api 4\(n) - - GET /v1/accounts/\(value) 200 \(value % 900) ms shape\(n)"
            case 1: return "worker-\(n) job \(value) finished in \(value % 977) ms queue shape\(n)"
            case 2: return "user \(users[value % 5])@example.com signed in from 10.0.\(value % 255).\(value % 7) shape\(n)"
            case 3: return "ERROR payment \(value) declined code \(value % 60) for merchant m-\(value % 13) shape\(n)"
            case 4: return "cache miss key=acct:\(value) ttl=\(value % 300)s node shape\(n)"
            case 5: return "WARN slow query \(value % 5000) ms on table ledger_\(value % 4) shape\(n)"
            case 6: return "connection \(value) closed by peer after \(value % 120) s shape\(n)"
            default: return "export \(value) wrote \(value % 9999) rows to s3://bucket/\(value)/part-\(value % 8) shape\(n)"
            }
        }
    }

    static func run(lineCount: Int) async throws -> Figures {
        let cluster = try await Cluster.start(environment: ["MINGUS_LOGS_WARMUP_LINES": "0"], privateBroker: true)
        do {
            let worker = try cluster.startWorker("mingus-logs-worker")
            _ = try await eventually(timeout: .seconds(30)) { worker.output.contains("consuming") }
            let key = try await cluster.key([.logsWrite]).key
            let all = lines(lineCount)
            let bodies = stride(from: 0, to: all.count, by: 5_000).map {
                Data(all[$0..<min($0 + 5_000, all.count)].joined(separator: "\n").utf8)
            }
            let start = Date()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<8 {
                    group.addTask {
                        for body in stride(from: client, to: bodies.count, by: 8).map({ bodies[$0] }) {
                            let answer = try await httpRequest(cluster.base + "/api/logs", method: "POST",
                                                               headers: ["Authorization": "Bearer \(key)", "Content-Type": "text/plain"], body: body)
                            guard answer.status == 202 else { throw WorkerProcessError(message: "POST /api/logs answered \(answer.status): \(answer.body)") }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let accepted = Date()
            var stored = 0
            let done = try await eventually(timeout: .seconds(600)) {
                stored = try await cluster.database.query("SELECT count(*) FROM log_lines")[0].decode(Int.self, at: 0)
                return stored >= lineCount
            }
            guard done else { throw WorkerProcessError(message: "only \(stored) of \(lineCount) lines stored") }
            let end = Date()
            let templates = try await cluster.database.query("SELECT count(*) FROM log_templates WHERE merged_into IS NULL")[0].decode(Int.self, at: 0)
            try await cluster.stopCleanly()
            return Figures(lines: lineCount, acceptedPerSecond: Double(lineCount) / accepted.timeIntervalSince(start),
                           storedPerSecond: Double(lineCount) / end.timeIntervalSince(start), templates: templates)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
    }
}
