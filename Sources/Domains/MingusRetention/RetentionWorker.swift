public import Foundation
import Crypto
import CoreMetrics
import Logging
import MingusCore
import MingusPostgres
public import MingusRuntime
import MingusSecurity

/// `retention.sweep`: run (or resume) a sweep. Without `sweep_id` (the daily schedule), the
/// sweep is created from the job id, so a redelivered job resumes the same sweep.
public struct RetentionSweepJob: Codable, Sendable, Equatable {
    public static let type = "retention.sweep"
    public var sweepId: UUID?
}

/// `retention.redate`: a policy changed; re-date the rows it covers, in batches.
public struct RetentionRedateJob: Codable, Sendable, Equatable {
    public static let type = "retention.redate"
    public var dataType: String
    public var version: Int
}

/// The retention worker's handlers. Sweeps and re-dating work in short transactions of their
/// own on the side pool (never one long job transaction); the job's own transaction only records
/// that it ran.
///
/// Metrics, set as each sweep completes: `mingus_retention_rows_archived_total` and
/// `mingus_retention_rows_deleted_total` and the gauge `mingus_retention_rows_held` per data type,
/// `mingus_retention_sweep_duration_seconds` and `mingus_retention_last_success_timestamp_seconds`.
public struct RetentionWorker: Sendable {
    public let sweeper: RetentionSweeper
    let metrics = MetricHandles()

    public init(sweeper: RetentionSweeper) {
        self.sweeper = sweeper
    }

    public func registry(schema: (String) throws -> JSONSchema) throws -> JobRegistry {
        var registry = JobRegistry()
        registry.register(RetentionSweepJob.type, as: RetentionSweepJob.self, schema: try schema(RetentionSweepJob.type), batchable: false) { job, context in
            let id = job.sweepId ?? Self.sweepID(forJob: context.id)
            if job.sweepId == nil {
                try await sweeper.database.execute("""
                    INSERT INTO retention_sweeps (id, data_types, dry_run, requested_by) VALUES (\(id), NULL, false, 'schedule')
                    ON CONFLICT (id) DO NOTHING
                    """)
            }
            let started = ContinuousClock.now
            let results = try await sweeper.run(id)
            record(results, took: ContinuousClock.now - started)
            context.logger.info("retention sweep finished", metadata: [
                "mingus.sweep": "\(id)", "mingus.deleted": "\(results.values.reduce(0) { $0 + $1.deleted })",
                "mingus.archived": "\(results.values.reduce(0) { $0 + $1.archived })",
            ])
        }
        registry.register(RetentionRedateJob.type, as: RetentionRedateJob.self, schema: try schema(RetentionRedateJob.type), batchable: false) { job, context in
            let changed = try await redate(job)
            context.logger.info("retention dates moved", metadata: ["mingus.data_type": "\(job.dataType)", "mingus.rows": "\(changed)"])
        }
        return registry
    }

    private func record(_ results: [String: RetentionSweeper.Counts], took duration: Duration) {
        for (dataType, counts) in results {
            metrics.counter("mingus_retention_rows_archived_total", [("data_type", dataType)]).increment(by: counts.archived)
            metrics.counter("mingus_retention_rows_deleted_total", [("data_type", dataType)]).increment(by: counts.deleted)
            metrics.gauge("mingus_retention_rows_held", [("data_type", dataType)]).record(counts.held)
        }
        metrics.gauge("mingus_retention_sweep_duration_seconds").record(
            duration.inSeconds)
        metrics.gauge("mingus_retention_last_success_timestamp_seconds").record(Date().timeIntervalSince1970)
    }

    /// A sweep id derived from a job id (the first 16 bytes of its SHA-256, as a version 4 UUID).
    static func sweepID(forJob id: String) -> UUID {
        var bytes = Array(SHA256.hash(data: Array(id.utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    /// Sets each covered row's date from its creation and the policy's current period, 5,000 rows a
    /// transaction; returns how many rows moved. A newer version's job does the same work again.
    func redate(_ job: RetentionRedateJob) async throws -> Int {
        guard let target = RetentionTarget.named(job.dataType), let redate = target.redate else { return 0 }
        var total = 0
        while true {
            let moved = try await sweeper.database.execute("""
                WITH policy AS (SELECT retention FROM retention_policies WHERE data_type = \(job.dataType))
                UPDATE \(identifier: target.table) u SET \(unescaped: redate.column) = u.\(unescaped: redate.from) + (SELECT retention FROM policy)
                WHERE u.\(unescaped: target.key) IN (
                    SELECT t.\(unescaped: target.key) FROM \(identifier: target.table) t
                    WHERE \(unescaped: redate.filter)
                      AND t.\(unescaped: redate.column) IS DISTINCT FROM t.\(unescaped: redate.from) + (SELECT retention FROM policy)
                    LIMIT 5000 FOR UPDATE SKIP LOCKED)
                """)
            total += moved
            if moved < 5000 { return total }
        }
    }
}

extension WorkerDefinition {
    /// `mingus-retention-worker`: queue `mingus.retention`, metrics on 9105. Archives to
    /// `MINGUS_ARCHIVE_DIR` (default `.services/archive`), signs manifests with the audit checkpoint
    /// key (`MINGUS_AUDIT_SIGNING_KEY_PATH`, default `.services/keys/audit-signing.key`; `mingusctl
    /// audit keygen` makes it), and schedules the daily sweep with `MINGUS_RETENTION_SCHEDULE` (cron,
    /// default `0 3 * * *`; `off` schedules none).
    public static let retention = WorkerDefinition(name: "retention", defaultMetricsPort: 9105, sideConnections: 4) { setup in
        let environment = setup.environment
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let directory = URL(fileURLWithPath: value("MINGUS_ARCHIVE_DIR") ?? ".services/archive")
        let keyPath = value("MINGUS_AUDIT_SIGNING_KEY_PATH") ?? ".services/keys/audit-signing.key"
        let signer: AuditSigner
        do {
            signer = try AuditSigner(contentsOf: URL(fileURLWithPath: keyPath))
        } catch {
            throw ConfigurationError(variable: "MINGUS_AUDIT_SIGNING_KEY_PATH",
                                     message: "cannot read the signing key \(keyPath) (mingusctl audit keygen makes one): \(error)")
        }
        let batch = Int(value("MINGUS_RETENTION_BATCH_SIZE") ?? "5000") ?? 0
        guard (1...100_000).contains(batch) else {
            throw ConfigurationError(variable: "MINGUS_RETENTION_BATCH_SIZE", message: "must be a whole number 1-100000")
        }
        let rate = Int(value("MINGUS_RETENTION_MAX_ROWS_PER_SECOND") ?? "0") ?? -1
        guard rate >= 0 else {
            throw ConfigurationError(variable: "MINGUS_RETENTION_MAX_ROWS_PER_SECOND", message: "must be a whole number (0: no limit)")
        }
        let cron = value("MINGUS_RETENTION_SCHEDULE") ?? "0 3 * * *"
        if cron != "off" {
            guard (try? CronSchedule(cron)) != nil else {
                throw ConfigurationError(variable: "MINGUS_RETENTION_SCHEDULE", message: "'\(cron)' is not a cron expression")
            }
            try await setup.sideDatabase.withConnection { db in
                try await Scheduler.upsertPeriodic(on: db, name: "retention.daily", cron: cron, type: RetentionSweepJob.type)
            }
        }
        let sweeper = RetentionSweeper(database: setup.sideDatabase, archive: try DirectoryArchiveStore(directory: directory), signer: signer,
                                       batchSize: batch, maxRowsPerSecond: rate == 0 ? nil : rate, logger: setup.logger)
        return WorkerParts(registry: try RetentionWorker(sweeper: sweeper).registry(schema: setup.schema))
    }
}
