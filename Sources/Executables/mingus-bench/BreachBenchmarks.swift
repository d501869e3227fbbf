import Foundation
import MingusBreach
import MingusCore
import MingusPostgres
import MingusSecurity
import TestSupport

/// End-to-end breach assessment figures: `POST /api/financial/breach/report` → the breach and its
/// obligations stored by the breach worker (release processes, one worker), a burst for the rate
/// and a paced run for the latency, measured from when the gateway accepted each report
/// (`reported_at`) to when the worker stamped it assessed (`assessed_at`, the commit's clock).
enum BreachBenchmarks {
    struct Figures {
        var reports: Int
        var reportsPerSecond: Double
        var obligationsPerReport: Double
        var paced: (reports: Int, rate: Double, p50: Double, p99: Double, max: Double)
    }

    static func run(reports count: Int, concurrency: Int, pacedRate: Double, pacedSeconds: Double) async throws -> Figures {
        let cluster = try await Cluster.start(privateBroker: true)
        do {
            let worker = try cluster.startWorker("mingus-breach-worker")
            _ = try await eventually(timeout: .seconds(30)) { worker.output.contains("worker starting") }
            let key = try await cluster.key([.breachWrite, .breachRead]).key
            // Warm-up: connections, prepared statements, first use of the rules.
            try await post(cluster, key: key, count: 50, concurrency: 8)
            try await waitForAssessed(cluster, count: 50)

            let start = Date()
            try await post(cluster, key: key, count: count, concurrency: concurrency)
            try await waitForAssessed(cluster, count: 50 + count)
            let burst = Date().timeIntervalSince(start)
            let obligations = try await cluster.database.query("SELECT count(*) FROM breach_obligations")[0].decode(Int64.self, at: 0)

            let pacedCount = Int(pacedRate * pacedSeconds)
            let pacedStart = Date()
            let clock = ContinuousClock.now
            for index in 0..<pacedCount {
                try await Task.sleep(until: clock + .milliseconds(Int(Double(index) * 1000 / pacedRate)))
                try await postOne(cluster, key: key, index: index)
            }
            try await waitForAssessed(cluster, count: 50 + count + pacedCount)
            let latencies = try await cluster.database.query("""
                SELECT extract(epoch FROM assessed_at - reported_at) * 1000 FROM breaches WHERE reported_at >= \(pacedStart)
                """).map { try $0.decode(Double.self, at: 0) }.sorted()
            func percentile(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
            try await cluster.stopCleanly()
            return Figures(reports: count, reportsPerSecond: Double(count) / burst,
                           obligationsPerReport: Double(obligations) / Double(50 + count),
                           paced: (pacedCount, pacedRate, percentile(0.5), percentile(0.99), latencies.last ?? .nan))
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
    }

    /// A breach that touches most regimes: EU and three US states, card, health and personal
    /// data, a controller that is also a merchant, covered entity and financial institution.
    static func report(_ index: Int) -> [String: Any] {
        let now = Date()
        let iso = Date.ISO8601FormatStyle()
        return [
            "title": "Benchmark breach \(index)", "severity": ["low", "medium", "high", "critical"][index % 4],
            "discovered_at": (now - 7200).formatted(iso), "aware_at": (now - 3600).formatted(iso),
            "data_categories": ["personal_data", "card_data", "health_data"], "data_encrypted": index % 3 == 0,
            "records_affected": 1000 + index, "persons_affected": 800 + index % 400,
            "jurisdictions": ["DE", "FR", "US-TX", "US-CO", "US-FL"], "persons_by_jurisdiction": ["US-TX": 300, "US-CO": 150],
            "entity_roles": ["controller", "merchant", "covered_entity", "financial_institution"],
        ]
    }

    private static func post(_ cluster: Cluster, key: String, count: Int, concurrency: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    for index in stride(from: lane, to: count, by: concurrency) { try await postOne(cluster, key: key, index: index) }
                }
            }
            try await group.waitForAll()
        }
    }

    private static func postOne(_ cluster: Cluster, key: String, index: Int) async throws {
        let answer = try await httpRequest(cluster.base + "/api/financial/breach/report", method: "POST",
                                           headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                                           body: try JSONSerialization.data(withJSONObject: report(index)))
        guard answer.status == 202 else { throw WorkerProcessError(message: "POST breach/report answered \(answer.status): \(answer.body)") }
    }

    private static func waitForAssessed(_ cluster: Cluster, count: Int) async throws {
        let done = try await eventually(timeout: .seconds(600)) {
            try await cluster.database.query("SELECT count(*) FROM breaches WHERE assessed_at IS NOT NULL")[0].decode(Int64.self, at: 0) >= count
        }
        guard done else { throw WorkerProcessError(message: "reports were not all assessed: \(cluster.output.suffix(3000))") }
    }
}
