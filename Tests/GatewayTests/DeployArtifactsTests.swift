import Foundation
import Logging
import MingusAMQP
import MingusCore
import MingusPayments
import MingusPostgres
import MingusRuntime
import MingusSecurity
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The metric names a PromQL expression reads: `mingus_…` identifiers, histogram series mapped to
/// their family (`_bucket`, `_sum`, `_count`).
func metricNames(inQuery expression: String) -> Set<String> {
    let pattern = try! Regex(#"mingus_[a-z0-9_]+"#)
    return Set(expression.matches(of: pattern).map { match in
        var name = String(expression[match.range])
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
        return name
    })
}

/// The metric families on a Prometheus text exposition (from its `# TYPE` lines).
func exposedFamilies(_ exposition: String) -> Set<String> {
    Set(exposition.split(separator: "\n").compactMap { line in
        line.hasPrefix("# TYPE ") ? line.split(separator: " ").dropFirst(2).first.map(String.init) : nil
    })
}

@Suite("Deploy artifacts against live processes")
struct DeployArtifactsTests {
    @Test("every metric the Grafana dashboard queries is on a live /metrics; every metric the alerting rules read is live or emitted by the code")
    func dashboardAndRulesNameLiveMetrics() async throws {
        // The droplet panels read the security worker's DigitalOcean metrics: it polls a stand-in.
        let standIn = try await DigitalOceanStandIn.start()
        defer { standIn.process.signal(SIGTERM) }
        try await standIn.control(["droplets": [["id": 201, "name": "web-1", "status": "active"]], "cpu": ["201": 35]])
        let cluster = try await Cluster.start(workers: 1, privateBroker: true)
        let security = try cluster.startWorker("mingus-security-worker", environment: [
            "DIGITALOCEAN_TOKEN": DigitalOceanStandIn.token, "MINGUS_DO_API_URL": standIn.base, "MINGUS_METRICS_PORT": "0"])
        let (_, key) = try await cluster.key([.paymentsWrite, .paymentsRead])
        // One payment (jobs processed, their duration, the wait before consumption) and one job
        // the worker can never apply (dead-lettered at once for its body).
        let id = try await cluster.pay(paymentBody(), key: key)
        _ = try await cluster.decided(id, key: key)
        let broker = try await AMQPConnection.connect(try AMQPConfiguration(url: try #require(cluster.environment["MINGUS_AMQP_URL"])),
                                                      logger: Logger(label: "test"))
        let envelope = JobEnvelope(id: UUID().uuidString.lowercased(), type: "payments.process", source: "/tests", body: Array("{}".utf8))
        try await broker.publish(envelope.message(), exchange: MingusTopology.jobsExchange, routingKey: "payments.process")
        await broker.close()

        let worker = try #require(cluster.workers.first)
        let workerPort = try #require(try await loggedPort(worker, message: "health and metrics server listening"))
        let securityPort = try #require(try await loggedPort(security, message: "health and metrics server listening"))
        // Poll now rather than at the next minute.
        let polled = try await eventually(timeout: .seconds(60)) {
            try await cluster.database.execute("UPDATE mingus_periodic_schedules SET next_run_at = now() WHERE name = 'security.poll'") == 1
        }
        try #require(polled, "no security.poll schedule\n\(cluster.output)")
        let root = TestEnvironment.repositoryRoot
        let dashboard = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: root.appendingPathComponent("Deploy/grafana/mingus-dashboard.json"))) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        var wanted: [String: Set<String>] = [:]
        for panel in panels {
            let targets = try #require(panel["targets"] as? [[String: Any]], "\(panel["title"] ?? "")")
            let names = targets.compactMap { $0["expr"] as? String }.map(metricNames(inQuery:)).reduce(Set(), { $0.union($1) })
            #expect(!names.isEmpty, "panel \(panel["title"] ?? "") reads no mingus metric")
            wanted[panel["title"] as? String ?? "?"] = names
        }

        var live: Set<String> = []
        let complete = try await eventually(timeout: .seconds(60)) {
            let gateway = try await httpRequest(cluster.base + "/metrics").body
            let payments = try await httpRequest("http://127.0.0.1:\(workerPort)/metrics").body
            let droplets = try await httpRequest("http://127.0.0.1:\(securityPort)/metrics").body
            live = exposedFamilies(gateway).union(exposedFamilies(payments)).union(exposedFamilies(droplets))
            return wanted.values.allSatisfy { $0.isSubset(of: live) }
        }
        for (panel, names) in wanted.sorted(by: { $0.key < $1.key }) {
            #expect(names.isSubset(of: live), "panel \(panel) reads \(names.subtracting(live).sorted()), not on /metrics")
        }
        #expect(complete)

        // The alerting rules may read counters that only appear on an event (a reconnect, a
        // refused publish): each must be live or a name the code emits.
        let rules = try String(contentsOf: root.appendingPathComponent("Deploy/prometheus/mingus-rules.yaml"), encoding: .utf8)
        let sources = try FileManager.default.subpathsOfDirectory(atPath: root.appendingPathComponent("Sources").path)
            .filter { $0.hasSuffix(".swift") }
            .map { try String(contentsOf: root.appendingPathComponent("Sources").appendingPathComponent($0), encoding: .utf8) }
            .joined()
        for name in metricNames(inQuery: rules).sorted() where !live.contains(name) {
            #expect(sources.contains("\"\(name)\""), "the rules read \(name), which no process exports")
        }
        try await cluster.stopCleanly()
        try await standIn.stop()
    }
}
