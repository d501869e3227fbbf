import Foundation
import MingusCore
import MingusPayments
import MingusPostgres
import MingusPrivacy
import MingusSecurity
import TestSupport

/// A data subject with `rows` payments and `rows` financial records (half SOX statements, kept
/// and restricted by the erasure; half account profiles, deleted): the access export (the
/// archive streamed into sealed chunks) and the erasure, each timed from the verification that
/// starts it to the request's completion, with the privacy worker's peak RSS (VmHWM) over both.
enum PrivacyBenchmarks {
    struct Figures {
        var rows: Int
        var exportSeconds: Double
        var archiveBytes: Int64
        var eraseSeconds: Double
        var workerPeakRSS: Int
        var workerIdleRSS: Int
        /// What the erasure did, per data type.
        var erasure: [String]
    }

    static func run(rows: Int) async throws -> Figures {
        let cluster = try await Cluster.start(privateBroker: true, keyPurposes: [.privacyExport, .privacyLink])
        do {
            let worker = try cluster.startWorker("mingus-privacy-worker")
            _ = try await eventually(timeout: .seconds(30)) { worker.output.contains("worker starting") }
            let key = try await cluster.key([.privacyWrite, .privacyRead]).key
            let subject = "bench-subject"
            try await cluster.database.execute("""
                INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, card_brand, masked_pan, requested_by,
                                          metadata, authorization_code, created_at, authorized_at)
                SELECT gen_random_uuid(), 'merchant-' || (n % 100), 'authorized', 100 + n % 10000, 'EUR', 'visa', '************4242',
                       'bench', jsonb_build_object('user_id', \(subject)::text, 'order', 'order-' || n), 'A' || n, now(), now()
                FROM generate_series(1, \(rows)) AS n
                """)
            // Another subject's rows around them, as in production.
            try await cluster.database.execute("""
                INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, card_brand, masked_pan, requested_by, metadata)
                SELECT gen_random_uuid(), 'merchant-1', 'authorized', 100, 'EUR', 'visa', '************1111', 'bench',
                       jsonb_build_object('user_id', 'someone-else') FROM generate_series(1, \(rows))
                """)
            let keyring = try await cluster.keyring()
            var written = 0
            while written < rows {
                let count = min(5000, rows - written)
                var ids: [UUID] = [], sealed: [[UInt8]] = []
                for n in 0..<count {
                    let id = UUID()
                    ids.append(id)
                    let content = Array(#"{"note":"statement line \#(written + n)","amount_minor":\#(written + n)}"#.utf8)
                    sealed.append(try keyring.seal(content, purpose: .records, context: RecordJob.storageContext(id.uuidString.lowercased())).combined)
                }
                let version = try keyring.currentVersion(.records)
                try await cluster.database.execute("""
                    INSERT INTO financial_records (record_id, user_id, record_type, classification, compliance_standard, content_ciphertext,
                                                   content_key_version, requested_by, retention_until)
                    SELECT r.id, \(subject), p.data_type, 'confidential', p.compliance_standard, r.content, \(version), 'bench',
                           now() + p.retention
                    FROM unnest(\(ids)::uuid[], \(sealed)::bytea[]) WITH ORDINALITY AS r (id, content, n)
                    JOIN retention_policies p ON p.data_type = CASE WHEN r.n % 2 = 0 THEN 'statement' ELSE 'account_profile' END
                    """)
                written += count
            }
            try await cluster.database.execute("VACUUM ANALYZE payment_data")
            try await cluster.database.execute("VACUUM ANALYZE financial_records")
            let idle = RuntimeBenchmarks.rss(worker.pid)

            func call(_ method: String, _ path: String, _ body: String) async throws -> [String: Any] {
                let answer = try await httpRequest(cluster.base + path, method: method,
                                                   headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"], body: Data(body.utf8))
                guard (200..<300).contains(answer.status),
                      let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] else {
                    throw WorkerProcessError(message: "\(method) \(path) answered \(answer.status): \(answer.body)")
                }
                return object
            }
            func timed(_ type: String) async throws -> Double {
                let filed = try await call("POST", "/api/gdpr/requests", #"{"subject_id":"\#(subject)","type":"\#(type)"}"#)
                guard let id = filed["id"] as? String else { throw WorkerProcessError(message: "no request id") }
                let start = ContinuousClock.now
                _ = try await call("POST", "/api/gdpr/requests/\(id)/verify", #"{"method":"account_login"}"#)
                let done = try await eventually(timeout: .seconds(600)) {
                    try await cluster.database.query("SELECT status FROM privacy_requests WHERE id = \(UUID(uuidString: id)!)")[0]
                        .decode(String.self, at: 0) == "completed"
                }
                guard done else { throw WorkerProcessError(message: "the \(type) request did not complete: \(cluster.output.suffix(3000))") }
                return (ContinuousClock.now - start).inSeconds
            }
            let exportSeconds = try await timed("access")
            let bytes = try await cluster.database.query("SELECT max(bytes) FROM privacy_exports")[0].decode(Int64.self, at: 0)
            let eraseSeconds = try await timed("erasure")
            let peak = peakRSS(worker.pid)
            let steps = try await cluster.database.query("SELECT data_type, action, rows FROM privacy_erasure_steps ORDER BY data_type").map {
                "\(try $0.decode(String.self, at: 0)) \(try $0.decode(String.self, at: 1)) \(try $0.decode(Int64.self, at: 2))"
            }
            try await cluster.stopCleanly()
            return Figures(rows: rows, exportSeconds: exportSeconds, archiveBytes: bytes, eraseSeconds: eraseSeconds, workerPeakRSS: peak,
                           workerIdleRSS: idle, erasure: steps)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
    }

    /// The peak resident set size of a process in bytes (VmHWM).
    static func peakRSS(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }
}
