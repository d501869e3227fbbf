import Foundation
import MingusLogs
import MingusPostgres
import MingusSecurity
import MingusSecurityMonitoring
import Testing
import TestSupport

/// A gateway (trusting 127.0.0.1 as a proxy, so tests speak for other client addresses through
/// `X-Forwarded-For`), a logs, an alerts and a security worker, on a database and a broker
/// virtual host of their own, with an API key holding the logs and security roles.
struct SecurityCluster {
    let cluster: Cluster
    let key: String
    let security: WorkerProcess

    static func with(environment: [String: String] = [:], _ body: (SecurityCluster) async throws -> Void) async throws {
        // The alerts worker stores the alerts; it routes them nowhere.
        let config = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("alerting") + ".yaml")
        try "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n".write(to: config, atomically: true, encoding: .utf8)
        let cluster = try await Cluster.start(
            environment: environment.merging(["MINGUS_ALERTING_CONFIG": config.path, "MINGUS_TRUSTED_PROXIES": "127.0.0.1"]) { $1 },
            privateBroker: true)
        let security: SecurityCluster
        do {
            try cluster.startWorker("mingus-logs-worker")
            try cluster.startWorker("mingus-alerts-worker")
            let worker = try cluster.startWorker("mingus-security-worker")
            let key = try await cluster.key([.logsWrite, .logsRead, .securityWrite, .securityRead]).key
            security = SecurityCluster(cluster: cluster, key: key, security: worker)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
        do {
            try await body(security)
        } catch {
            try? await cluster.stopCleanly()
            throw error
        }
        try await cluster.stopCleanly()
    }

    var database: PostgresClient { cluster.database }

    @discardableResult
    func request(_ method: String, _ path: String, _ body: Any? = nil, key: String? = nil, from address: String? = nil,
                 type: String = "application/json", raw: [UInt8]? = nil) async throws -> (status: Int, body: [String: Any], raw: String) {
        var headers = ["Authorization": "Bearer \(key ?? self.key)", "Content-Type": type]
        if let address { headers["X-Forwarded-For"] = address }
        let data = try raw.map { Data($0) } ?? body.map { try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) }
        let answer = try await httpRequest(cluster.base + path, method: method, headers: headers, body: data)
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? [:], answer.body)
    }

    func count(_ sql: String) async throws -> Int64 {
        try await database.query(PostgresQuery(unsafeSQL: sql))[0].decode(Int64.self, at: 0)
    }

    /// Waits until `sql` counts `expected`; fails the test with the cluster's output otherwise.
    func waitFor(_ sql: String, _ expected: Int64 = 1, timeout: Duration = .seconds(60)) async throws {
        var last: Int64 = -1
        let held = try await eventually(timeout: timeout) {
            last = try await count(sql)
            return last == expected
        }
        try #require(held, "\(sql): \(last), expected \(expected)\n\(cluster.output)")
    }

    /// Log lines in NDJSON, as a shipper sends them.
    func sendLogs(_ service: String, _ messages: [String]) async throws {
        let lines = messages.map { message in
            String(decoding: try! JSONSerialization.data(withJSONObject: ["service": service, "level": "warn", "message": message], options: [.sortedKeys]),
                   as: UTF8.self)
        }
        let sent = try await request("POST", "/api/logs", type: "application/x-ndjson", raw: Array(lines.joined(separator: "\n").utf8))
        try #require(sent.status == 202, "\(sent.raw)")
    }
}

