import AsyncHTTPClient
import Foundation
import MingusCompliance
import MingusCore
import MingusPostgres
import MingusSecurity
import NIOCore
import NIOHTTP1
import TestSupport

/// The compliance read endpoints under load, with a database holding `payments` payments: one
/// run of every automated check (timed), then each read endpoint by `concurrency` clients for
/// `requests` requests (p50, p99, requests/s). Reads are served from stored results, so their
/// cost should not grow with the payments.
enum ComplianceBenchmarks {
    struct Endpoint {
        var path: String
        var requests: Int
        var rate: Double
        var p50: Double
        var p99: Double
    }

    struct Figures {
        var payments: Int
        var checkRunSeconds: Double
        var endpoints: [Endpoint]
    }

    static let paths = [
        "/api/financial/dashboard/compliance-score", "/api/financial/dashboard/pci-dss", "/api/financial/dashboard/security-controls",
        "/api/financial/compliance/status", "/api/financial/pci/requirements", "/api/financial/pci/compliance",
        "/api/financial/security/controls", "/api/financial/compliance/report",
    ]

    static func run(payments: Int, requests: Int, concurrency: Int) async throws -> Figures {
        let cluster = try await Cluster.start(environment: ["MINGUS_COMPLIANCE_CHECK_SCHEDULE": "off"],
                                              privateBroker: true)
        do {
            try cluster.startWorker("mingus-security-worker")
            try await cluster.database.execute("""
                INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, card_brand, masked_pan, requested_by, created_at,
                                          authorized_at, metadata)
                SELECT gen_random_uuid(), 'bench-' || (i % 100), CASE WHEN i % 10 = 0 THEN 'declined' ELSE 'authorized' END, 1000 + i % 5000,
                       'USD', 'visa', '************1111', 'bench', now() - (i % 86400) * interval '1 second',
                       now() - (i % 86400) * interval '1 second', jsonb_build_object('order', 'o-' || i)
                FROM generate_series(1, \(payments)) AS i
                """)
            try await cluster.database.execute("ANALYZE payment_data")
            let key = try await cluster.key([.complianceRead, .complianceWrite]).key

            // One run of every check, from the request to its commit.
            let started = ContinuousClock.now
            let accepted = try await send(cluster, key: key, path: "/api/financial/compliance/checks", method: .POST, body: "{}")
            guard let runID = (try JSONSerialization.jsonObject(with: Data(accepted.utf8)) as? [String: Any])?["run_id"] as? String else {
                throw WorkerProcessError(message: "no run id in \(accepted)")
            }
            let finished = try await eventually(timeout: .seconds(600)) {
                try await cluster.database.query("""
                    SELECT count(*) FROM compliance_check_runs WHERE id = \(UUID(uuidString: runID)!) AND finished_at IS NOT NULL
                    """)[0].decode(Int.self, at: 0) == 1
            }
            guard finished else { throw WorkerProcessError(message: "the check run did not finish\n\(cluster.output)") }
            let checkRunSeconds = (ContinuousClock.now - started).inSeconds

            var endpoints: [Endpoint] = []
            for path in paths {
                _ = try await load(cluster, key: key, path: path, requests: min(500, requests), concurrency: concurrency)
                let (seconds, latencies) = try await load(cluster, key: key, path: path, requests: requests, concurrency: concurrency)
                func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
                endpoints.append(Endpoint(path: path, requests: requests, rate: Double(requests) / seconds, p50: percentile(0.5), p99: percentile(0.99)))
            }
            try await cluster.stop()
            return Figures(payments: payments, checkRunSeconds: checkRunSeconds, endpoints: endpoints)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
    }

    /// `requests` GETs of `path` by `concurrency` clients: the wall time and the sorted latencies (ms).
    static func load(_ cluster: Cluster, key: String, path: String, requests: Int, concurrency: Int) async throws -> (Double, [Double]) {
        let started = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for lane in 0..<concurrency {
                group.addTask {
                    var mine: [Double] = []
                    for _ in stride(from: lane, to: requests, by: concurrency) {
                        let sent = ContinuousClock.now
                        _ = try await send(cluster, key: key, path: path, method: .GET, body: nil)
                        mine.append((ContinuousClock.now - sent).inSeconds * 1000)
                    }
                    return mine
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all
        }
        return ((ContinuousClock.now - started).inSeconds, latencies.sorted())
    }

    static func send(_ cluster: Cluster, key: String, path: String, method: HTTPMethod, body: String?) async throws -> String {
        var request = HTTPClientRequest(url: cluster.base + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(key)")
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 16 * 1024 * 1024))
        guard (200..<300).contains(response.status.code) else {
            throw WorkerProcessError(message: "\(path) answered \(response.status.code): \(text.prefix(500))")
        }
        return text
    }
}
