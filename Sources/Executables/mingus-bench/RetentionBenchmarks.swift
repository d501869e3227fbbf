import Foundation
import MingusPostgres
import MingusRetention
import MingusSecurity
import TestSupport

/// A retention sweep over 1,000,000 due payment rows while payments keep being inserted: the
/// sweep's rows archived and deleted per second, and the p99 of those inserts during the sweep
/// against the same load without one, in the same run (release processes, one retention worker).
enum RetentionBenchmarks {
    struct Figures {
        var rows: Int
        var rowsPerSecond: Double
        var archiveBytes: Int64
        var insertRate: Double
        var quiet: (p50: Double, p99: Double)
        var sweeping: (p50: Double, p99: Double, inserts: Int)
        /// WAL the database wrote from the sweep's start to its end, and the checkpoints that began meanwhile.
        var walBytes: Int64
        var checkpoints: Int64
    }

    static func run(rows: Int, insertRate: Double) async throws -> Figures {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("retention-bench"))
        let signingKey = folder.appendingPathComponent("audit-signing.key")
        try AuditSigner.createKey(at: signingKey)
        let cluster = try await Cluster.start(environment: [
            "MINGUS_ARCHIVE_DIR": folder.appendingPathComponent("archive").path, "MINGUS_AUDIT_SIGNING_KEY_PATH": signingKey.path,
            "MINGUS_RETENTION_SCHEDULE": "off",
        ], privateBroker: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            let worker = try cluster.startWorker("mingus-retention-worker")
            _ = try await eventually(timeout: .seconds(30)) { worker.output.contains("worker starting") }
            let key = try await cluster.key([.retentionWrite, .retentionRead]).key
            try await cluster.database.execute("""
                INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, card_brand, masked_pan, requested_by,
                                          created_at, retention_until, authorization_code)
                SELECT gen_random_uuid(), 'merchant-' || (n % 100), 'authorized', 100 + n % 10000, 'USD', 'visa', '************4242',
                       'bench', now() - interval '8 years', now() - interval '1 day', 'A' || n
                FROM generate_series(1, \(rows)) AS n
                """)
            try await cluster.database.execute("VACUUM ANALYZE payment_data")
            let inserter = PostgresClient(configuration: PostgresConfiguration(url: cluster.databaseURL, poolSize: 1))
            defer { Task { await inserter.shutdown() } }

            let quiet = try await insertLoad(inserter, rate: insertRate, seconds: 15) { false }
            let walBefore = try await walPosition(cluster.database)
            let start = Date()
            let answer = try await httpRequest(cluster.base + "/api/financial/retention/cleanup", method: "POST",
                                               headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                                               body: Data(#"{"data_types":["payment"]}"#.utf8))
            guard answer.status == 202,
                  let id = (try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])?["id"] as? String else {
                throw WorkerProcessError(message: "POST cleanup answered \(answer.status): \(answer.body)")
            }
            let finished = SweepState()
            let poller = Task {
                while true {
                    let status = try await cluster.database.query("SELECT status FROM retention_sweeps WHERE id = \(UUID(uuidString: id)!)")[0]
                        .decode(String.self, at: 0)
                    if status == "completed" || status == "failed" {
                        await finished.finish(Date(), status: status)
                        return
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let sweeping = try await insertLoad(inserter, rate: insertRate, seconds: 600) { await finished.end != nil }
            try await poller.value
            guard let end = await finished.end, await finished.status == "completed" else {
                throw WorkerProcessError(message: "the sweep did not complete: \(cluster.output.suffix(3000))")
            }
            let result = try await cluster.database.query("""
                SELECT deleted, bytes FROM retention_sweep_results WHERE sweep_id = \(UUID(uuidString: id)!) AND data_type = 'payment'
                """)[0]
            let deleted = try result.decode(Int64.self, at: 0)
            let walAfter = try await walPosition(cluster.database)
            try await cluster.stopCleanly()
            return Figures(rows: Int(deleted), rowsPerSecond: Double(deleted) / end.timeIntervalSince(start),
                           archiveBytes: try result.decode(Int64.self, at: 1), insertRate: insertRate,
                           quiet: (quiet.p50, quiet.p99), sweeping: (sweeping.p50, sweeping.p99, sweeping.count),
                           walBytes: walAfter.lsn - walBefore.lsn, checkpoints: walAfter.checkpoints - walBefore.checkpoints)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
    }

    /// The WAL insert position in bytes and the checkpoints begun so far.
    private static func walPosition(_ database: PostgresClient) async throws -> (lsn: Int64, checkpoints: Int64) {
        let row = try await database.query("""
            SELECT (pg_current_wal_lsn() - '0/0')::bigint, (checkpoints_timed + checkpoints_req)::bigint FROM pg_stat_bgwriter
            """)[0]
        return (try row.decode(Int64.self, at: 0), try row.decode(Int64.self, at: 1))
    }

    actor SweepState {
        var end: Date?
        var status = ""
        func finish(_ date: Date, status: String) {
            end = date
            self.status = status
        }
    }

    /// Single-row payment inserts (autocommit) at `rate` per second from one connection, until
    /// `seconds` pass or `stop` says so; latencies in milliseconds.
    private static func insertLoad(_ database: PostgresClient, rate: Double, seconds: Double,
                                   stop: () async -> Bool) async throws -> (p50: Double, p99: Double, count: Int) {
        var latencies: [Double] = []
        let clock = ContinuousClock()
        let begin = clock.now
        var index = 0
        while clock.now - begin < .seconds(seconds) {
            if await stop() { break }
            try await Task.sleep(until: begin + .milliseconds(Int(Double(index) * 1000 / rate)))
            let sent = clock.now
            try await database.execute("""
                INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, retention_until)
                VALUES (\(UUID()), 'merchant-live', 'authorized', 1250, 'USD', 'bench', now() + interval '7 years')
                """)
            let elapsed = clock.now - sent
            latencies.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
            index += 1
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies.isEmpty ? .nan : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        return (percentile(0.5), percentile(0.99), latencies.count)
    }
}
