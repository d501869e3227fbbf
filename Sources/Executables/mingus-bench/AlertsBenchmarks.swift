import Foundation
import MingusCore
import MingusSecurity
import MingusGateway
import MingusAlerts
import MingusPostgres
import TestSupport

/// End-to-end alert figures: `POST /api/alerts` → a delivery recorded on each of the nine
/// channels, against the local provider stand-ins (the HTTP contract server and a real SMTP
/// server with STARTTLS and AUTH), through release processes.
enum AlertsBenchmarks {
    struct Figures {
        var alerts: Int
        var alertsPerSecond: Double
        var deliveriesPerSecond: Double
        var slow: (alerts: Int, rate: Double, p50: Double, p99: Double, othersP50: Double, othersP99: Double)
    }

    static func run(alerts count: Int, concurrency: Int) async throws -> Figures {
        let sinks = try await ProviderSinks()
        do {
            let figures = try await measure(alerts: count, concurrency: concurrency, sinks: sinks)
            try await sinks.stop()
            return figures
        } catch {
            try? await sinks.stop()
            throw error
        }
    }

    private static func measure(alerts count: Int, concurrency: Int, sinks: ProviderSinks) async throws -> Figures {
        // One group per alert (grouped by every label, each alert its own title), sent at once,
        // rate limits lifted: the figure is the pipeline's, not the providers' limits.
        let config = """
            route:
              receiver: everyone
              group_by: ['...']
              group_wait: 0s
              group_interval: 1h
              repeat_interval: 4h
            receivers:
              - name: everyone
            \(sinks.allTargets(timeout: "30s"))
            """
        let throughput = try await withCluster(config: config, sinks: sinks) { cluster, key in
            let start = Date()
            try await post(cluster, key: key, count: count, concurrency: concurrency, prefix: "burst")
            try await waitForDeliveries(cluster, count: count * 9)
            return Date().timeIntervalSince(start)
        }

        // Latency with one sink (Teams) answering after 2 s, paced at 1.5 alerts/s.
        try await sinks.control("teams", ["delay": 2.0])
        let slowCount = 45
        let latencies = try await withCluster(config: config, sinks: sinks) { cluster, key in
            var sent: [String: Date] = [:]
            let start = ContinuousClock.now
            for index in 0..<slowCount {
                try await Task.sleep(until: start + .milliseconds(index * 667))
                let (id, at) = try await postOne(cluster, key: key, title: "paced \(index)")
                sent[id] = at
            }
            try await waitForDeliveries(cluster, count: slowCount * 9)
            var last: [String: Date] = [:]
            var lastOthers: [String: Date] = [:]
            var slowDelivered = 0
            for row in try await cluster.database.query("""
                SELECT unnest(alert_ids)::text, channel, finished_at FROM alert_deliveries WHERE status = 'delivered'
                """) {
                let id = try row.decode(String.self, at: 0)
                let finished = try row.decode(Date.self, at: 2)
                last[id] = max(last[id] ?? finished, finished)
                if try row.decode(String.self, at: 1) == "teams" {
                    slowDelivered += 1
                } else {
                    lastOthers[id] = max(lastOthers[id] ?? finished, finished)
                }
            }
            guard slowDelivered == slowCount else {
                throw WorkerProcessError(message: "\(slowDelivered) of \(slowCount) deliveries to the slow sink")
            }
            let all = sent.compactMap { id, at in last[id].map { $0.timeIntervalSince(at) * 1000 } }
            let others = sent.compactMap { id, at in lastOthers[id].map { $0.timeIntervalSince(at) * 1000 } }
            return (all.sorted(), others.sorted())
        }
        try await sinks.control("teams", ["delay": 0])
        func percentile(_ values: [Double], _ p: Double) -> Double {
            values.isEmpty ? .nan : values[min(values.count - 1, Int(Double(values.count) * p))]
        }
        return Figures(
            alerts: count, alertsPerSecond: Double(count) / throughput, deliveriesPerSecond: Double(count * 9) / throughput,
            slow: (slowCount, 1.5, percentile(latencies.0, 0.5), percentile(latencies.0, 0.99),
                   percentile(latencies.1, 0.5), percentile(latencies.1, 0.99)))
    }

    private static func withCluster<T>(config: String, sinks: ProviderSinks,
                                       _ body: (Cluster, String) async throws -> T) async throws -> T {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("alerting") + ".yaml")
        try config.write(to: file, atomically: true, encoding: .utf8)
        var environment = sinks.workerEnvironment
        environment["MINGUS_ALERTING_CONFIG"] = file.path
        let cluster = try await Cluster.start(environment: environment)
        let worker = try cluster.startWorker("mingus-alerts-worker")
        _ = try await eventually(timeout: .seconds(30)) { worker.output.contains("consuming") || !worker.output.isEmpty }
        try await Task.sleep(for: .seconds(1))
        let key = try await APIKeyStore(database: cluster.database).create(name: "bench", roles: [.alertsWrite, .alertsRead]).key
        do {
            let result = try await body(cluster, key)
            try await cluster.stop()
            return result
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
    }

    private static func post(_ cluster: Cluster, key: String, count: Int, concurrency: Int, prefix: String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    for index in stride(from: lane, to: count, by: concurrency) {
                        _ = try await postOne(cluster, key: key, title: "\(prefix) \(index)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private static func postOne(_ cluster: Cluster, key: String, title: String) async throws -> (String, Date) {
        let body = try JSONSerialization.data(withJSONObject: [
            "severity": "high", "title": title, "description": "benchmark alert", "source": "bench", "labels": ["service": "bench"],
        ])
        let at = Date()
        let answer = try await httpRequest(cluster.base + "/api/alerts", method: "POST",
                                           headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"], body: body)
        guard answer.status == 202,
              let id = (try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])?["id"] as? String else {
            throw WorkerProcessError(message: "POST /api/alerts answered \(answer.status): \(answer.body)")
        }
        return (id, at)
    }

    private static func waitForDeliveries(_ cluster: Cluster, count: Int) async throws {
        let done = try await eventually(timeout: .seconds(600)) {
            let rows = try await cluster.database.query("SELECT count(*) FROM alert_deliveries WHERE status = 'delivered'")
            return try rows[0].decode(Int64.self, at: 0) >= count
        }
        guard done else { throw WorkerProcessError(message: "deliveries did not finish: \(cluster.output.suffix(3000))") }
    }
}
