import Crypto
import Foundation
import MingusCompliance
import MingusPostgres
import MingusSecurity
import Testing
import TestSupport

/// A gateway and a security worker (which runs the compliance checks) on a database and a broker
/// virtual host of their own, with an API key holding both compliance roles and an audit
/// checkpoint key whose public half the worker trusts.
struct ComplianceCluster {
    let cluster: Cluster
    let key: String
    let signer: AuditSigner

    static func with(_ body: (ComplianceCluster) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("compliance"))
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let keyURL = folder.appendingPathComponent("audit-signing.key")
        let signer = try AuditSigner.createKey(at: keyURL)
        let cluster = try await Cluster.start(
            environment: ["MINGUS_AUDIT_SIGNING_KEY_PATH": keyURL.path, "MINGUS_COMPLIANCE_CHECK_SCHEDULE": "off"], privateBroker: true)
        let compliance: ComplianceCluster
        do {
            try cluster.startWorker("mingus-security-worker")
            let key = try await cluster.key([.complianceRead, .complianceWrite]).key
            compliance = ComplianceCluster(cluster: cluster, key: key, signer: signer)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
        do {
            try await body(compliance)
        } catch {
            try? await cluster.stopCleanly()
            throw error
        }
        try await cluster.stopCleanly()
    }

    var database: PostgresClient { cluster.database }

    @discardableResult
    func request(_ method: String, _ path: String, _ body: Any? = nil, key: String? = nil,
                 headers extra: [String: String] = [:]) async throws -> (status: Int, body: [String: Any], raw: String, headers: [AnyHashable: Any]) {
        var headers = ["Authorization": "Bearer \(key ?? self.key)", "Content-Type": "application/json"]
        headers.merge(extra) { $1 }
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) }
        let answer = try await httpRequest(cluster.base + path, method: method, headers: headers, body: data)
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? [:], answer.body, answer.headers)
    }

    func execute(_ sql: String) async throws {
        _ = try await database.execute(PostgresQuery(unsafeSQL: sql))
    }

    /// Runs `checks` through the API and waits for the run to finish; their results by name.
    @discardableResult
    func run(_ checks: [String]) async throws -> [String: [String: Any]] {
        let accepted = try await request("POST", "/api/financial/compliance/checks", ["checks": checks])
        try #require(accepted.status == 202, "\(accepted.raw)")
        let runID = try #require(accepted.body["run_id"] as? String)
        var status: [String: Any] = [:]
        let done = try await eventually(timeout: .seconds(60)) {
            status = try await request("GET", "/api/financial/compliance/status").body
            let run = status["last_run"] as? [String: Any]
            return run?["id"] as? String == runID && run?["finished_at"] is String
        }
        try #require(done, "run \(runID) did not finish\n\(cluster.output)")
        let all = try #require(status["checks"] as? [[String: Any]])
        var results: [String: [String: Any]] = [:]
        for check in all where checks.contains(check["name"] as? String ?? "") {
            if check["run_id"] as? String != runID {
                let stored = try await database.query(PostgresQuery(unsafeSQL: "SELECT run_id::text || ' ' || check_name || ' ' || passed::text FROM compliance_check_results ORDER BY checked_at"))
                    .map { try $0.decode(String.self, at: 0) }
                Issue.record("\(check["name"] ?? "") is from run \(check["run_id"] ?? "") instead of \(runID); results: \(stored)\n\(cluster.output)")
            }
            results[check["name"] as! String] = check
        }
        return results
    }

    /// Runs one check and returns its status (`passed` or `failed`) and result.
    func check(_ name: String) async throws -> (status: String, result: [String: Any]) {
        let result = try #require(try await run([name])[name])
        return (result["status"] as? String ?? "", result)
    }
}
