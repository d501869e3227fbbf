import CoreMetrics
import Crypto
public import Foundation
import Logging
import MingusAlerts
import MingusCore
import MingusHTTP
public import MingusPostgres
public import MingusRuntime
public import MingusSecurity

/// The privacy worker's handlers: deadline reminders turned into alerts (`alerts.ingest`),
/// export archives built, erasures carried out, large sets de-identified in chunks. Exports and erasures write through the side
/// pool in steps of their own and close the request in the job's transaction.
///
/// Metrics: `mingus_privacy_requests_completed_total` per request type (exports and erasures),
/// the histograms `mingus_privacy_export_duration_seconds`, `mingus_privacy_export_bytes` and
/// `mingus_privacy_erasure_duration_seconds`, and the gauges `mingus_privacy_requests_open` and
/// `mingus_privacy_requests_overdue`, set by the hourly cleanup.
public struct PrivacyWorker: Sendable {
    let database: PostgresClient
    let keys: KeyringCache
    let subjectKeys: SubjectKeys
    let exporter: Exporter
    /// How long a ready archive may be downloaded.
    let exportLifetime: TimeInterval
    let metrics = MetricHandles()
    let detector: ViolationDetector

    public init(database: PostgresClient, keys: KeyringCache, exporter: Exporter = Exporter(), exportLifetime: TimeInterval = 7 * 86_400,
                detector: ViolationDetector = ViolationDetector()) {
        self.database = database
        self.keys = keys
        self.subjectKeys = SubjectKeys(kek: keys.keyEncryptingKey, database: database)
        self.exporter = exporter
        self.exportLifetime = exportLifetime
        self.detector = detector
    }

    /// The handlers, each body checked against its schema.
    public func registry(schema: (String) throws -> JSONSchema) throws -> JobRegistry {
        var registry = JobRegistry()
        registry.register(PrivacyReminderJob.type, as: PrivacyReminderJob.self, schema: try schema(PrivacyReminderJob.type)) { job, context in
            try await remind(job, context)
        }
        registry.register(PrivacyExportJob.type, as: PrivacyExportJob.self, schema: try schema(PrivacyExportJob.type), batchable: false) { job, context in
            try await export(job, context)
        }
        registry.register(PrivacyEraseJob.type, as: PrivacyEraseJob.self, schema: try schema(PrivacyEraseJob.type), batchable: false) { job, context in
            try await erase(job, context)
        }
        registry.register(PrivacyCleanupJob.type, as: PrivacyCleanupJob.self, schema: try schema(PrivacyCleanupJob.type)) { _, context in
            try await cleanUp(context)
        }
        let chunkBlocks = ProcessInfo.processInfo.environment["MINGUS_HIPAA_DEIDENTIFY_CHUNK_BLOCKS"].flatMap(Int.init)
            .map { min(max($0, 1), 100) } ?? DeidentifyBlocks.blocksPerChunk
        let deidentify = DeidentifyRunner(keys: keys, blocksPerChunk: chunkBlocks)
        registry.register(HealthDeidentifyJob.type, as: HealthDeidentifyJob.self, schema: try schema(HealthDeidentifyJob.type), batchable: false) { job, context in
            try await deidentify.handle(job, context)
        }
        registry.register(HealthScanJob.type, as: HealthScanJob.self, schema: try schema(HealthScanJob.type), batchable: false) { _, context in
            let findings = try await detector.scan(context)
            context.logger.info("health access log scanned", metadata: ["mingus.findings": "\(findings)"])
        }
        return registry
    }

    /// Expires archives past their time and deletes chunks nobody can download any more: those
    /// of expired archives, and those a download that broke off left (an hour after it began, so
    /// a download still streaming keeps its chunks).
    func cleanUp(_ context: JobContext) async throws {
        let db = context.database
        let expired = try await db.execute("""
            UPDATE privacy_exports SET status = 'expired' WHERE status = 'ready' AND expires_at < now()
            """)
        let deleted = try await db.execute("""
            DELETE FROM privacy_export_chunks c USING privacy_exports e
            WHERE c.request_id = e.request_id
              AND (e.status = 'expired' OR (e.status = 'downloaded' AND e.downloaded_at < now() - interval '1 hour'))
            """)
        // De-identification jobs: results past their time, failed jobs' blocks, and uploads that
        // broke off without a job (a day after they began).
        let jobsExpired = try await db.execute("""
            UPDATE health_deidentify_jobs SET status = 'expired' WHERE status = 'completed' AND expires_at < now()
            """)
        try await db.execute("""
            DELETE FROM health_deidentify_blocks b USING health_deidentify_jobs j
            WHERE b.job_id = j.id AND j.status IN ('expired', 'failed')
            """)
        try await db.execute("""
            DELETE FROM health_deidentify_cells c USING health_deidentify_jobs j WHERE c.job_id = j.id AND j.status = 'expired'
            """)
        try await db.execute("DELETE FROM health_deidentify_jobs WHERE status = 'uploading' AND created_at < now() - interval '1 day'")
        let open = try await db.query("""
            SELECT count(*), count(*) FILTER (WHERE due_at < now()) FROM privacy_requests WHERE status NOT IN ('completed', 'rejected')
            """)[0]
        metrics.gauge("mingus_privacy_requests_open").record(try open.decode(Int64.self, at: 0))
        metrics.gauge("mingus_privacy_requests_overdue").record(try open.decode(Int64.self, at: 1))
        context.logger.info("export archives cleaned up", metadata: ["mingus.expired": "\(expired)", "mingus.chunks_deleted": "\(deleted)",
                                                                 "mingus.deidentify_expired": "\(jobsExpired)"])
    }

    func remind(_ job: PrivacyReminderJob, _ context: JobContext) async throws {
        let db = context.database
        guard let row = try await db.query("""
            SELECT type, status, due_at FROM privacy_requests WHERE id = \(job.requestId) FOR NO KEY UPDATE
            """).first else { throw PermanentJobError("request \(job.requestId) does not exist") }
        let type = try row.decode(String.self, at: 0), status = try row.decode(String.self, at: 1), due = try row.decode(Date.self, at: 2)
        guard !["completed", "rejected"].contains(status), abs(due.timeIntervalSince(job.deadline)) < 0.001 else {
            context.logger.debug("reminder no longer applies", metadata: ["mingus.request": "\(job.requestId)", "mingus.status": "\(status)"])
            return
        }
        let overdue = job.before == 0
        let lead = job.before % 86_400 == 0 ? "\(job.before / 86_400) d" : job.before % 3600 == 0 ? "\(job.before / 3600) h" : "\(job.before) s"
        let severity: AlertSeverity = overdue ? .critical : job.before <= 86_400 ? .high : .medium
        let rid = job.requestId.uuidString.lowercased()
        let alert = AlertJob(
            status: .firing, severity: severity,
            title: overdue ? "Data-subject request overdue (\(type))" : "Data-subject request due within \(lead) (\(type))",
            description: "The \(type) request \(rid) is \(status) and due by \(JobEnvelope.formatTime(due)) (GDPR Art. 12(3)).",
            labels: ["request_id": rid, "request_type": type, "component": "privacy"], source: "privacy-worker",
            dedupKey: job.messageID, receivedAt: Date())
        try await context.emit(type: AlertJob.type, alert, id: UUID.derived(job.messageID).uuidString.lowercased())
        try await RequestStore.history(job.requestId, actor: "privacy-worker", status: status, kind: "reminder",
                                       note: overdue ? "overdue since \(JobEnvelope.formatTime(due)); alert sent (\(severity.rawValue))"
                                                     : "due by \(JobEnvelope.formatTime(due)), within \(lead); alert sent (\(severity.rawValue))", on: db)
    }

    /// Loads a request a job works on: it must exist, be of `types` and verified.
    private func request(_ id: UUID, types: [String], on db: PostgresConnection) async throws -> (subject: String, status: String)? {
        guard let row = try await db.query("""
            SELECT subject_id, type, status, verified_at IS NOT NULL FROM privacy_requests WHERE id = \(id) FOR NO KEY UPDATE
            """).first else { throw PermanentJobError("request \(id) does not exist") }
        guard types.contains(try row.decode(String.self, at: 1)) else { throw PermanentJobError("request \(id) is not of type \(types.joined(separator: " or "))") }
        guard try row.decode(Bool.self, at: 3) else { throw PermanentJobError("request \(id): the subject's identity is not verified") }
        let status = try row.decode(String.self, at: 2)
        return status == "in_progress" ? (try row.decode(String.self, at: 0), status) : nil
    }

    func export(_ job: PrivacyExportJob, _ context: JobContext) async throws {
        let db = context.database
        guard let (subject, _) = try await request(job.requestId, types: ["access", "portability"], on: db) else {
            context.logger.info("export already done", metadata: ["mingus.request": "\(job.requestId)"])
            return
        }
        try await database.execute("""
            INSERT INTO privacy_exports (request_id) VALUES (\(job.requestId))
            ON CONFLICT (request_id) DO UPDATE SET status = 'building', bytes = 0, chunks = 0
            """)
        let started = ContinuousClock.now
        let outcome = try await exporter.export(job.requestId, subject: subject, context: ProviderContext(database: database, keys: keys))
        let counts = String(decoding: try JSONEncoder().encode(outcome.counts), as: UTF8.self)
        let expires = Date().addingTimeInterval(exportLifetime)
        try await db.execute("""
            UPDATE privacy_exports SET status = 'ready', bytes = \(outcome.bytes), chunks = \(outcome.chunks), sha256 = \(outcome.sha256),
                counts = \(counts)::jsonb, ready_at = now(), expires_at = \(expires) WHERE request_id = \(job.requestId)
            """)
        var result = outcome.counts.mapValues { "\($0) rows" }
        result["archive_bytes"] = "\(outcome.bytes)"
        try await RequestStore.complete(job.requestId, status: "completed", result: result, actor: "privacy-worker",
                                        note: "archive ready (\(outcome.bytes) bytes, sealed at rest); download link expires \(JobEnvelope.formatTime(expires))", on: db)
        _ = try await AuditTrail.append(AuditEvent(actor: "privacy-worker", action: "privacy.export.ready", resource: "privacy/requests/\(job.requestId.uuidString.lowercased())",
                                                   outcome: .success, details: ["bytes": "\(outcome.bytes)", "sha256": outcome.sha256]),
                                        component: "privacy", on: db)
        let took = ContinuousClock.now - started
        metrics.counter("mingus_privacy_requests_completed_total", [("type", "export")]).increment()
        metrics.histogram("mingus_privacy_export_duration_seconds").record(took.inSeconds)
        metrics.histogram("mingus_privacy_export_bytes").record(outcome.bytes)
        context.logger.info("export ready", metadata: ["mingus.request": "\(job.requestId)", "mingus.bytes": "\(outcome.bytes)",
                                                        "mingus.duration": "\(ContinuousClock.now - started)"])
    }

    func erase(_ job: PrivacyEraseJob, _ context: JobContext) async throws {
        let db = context.database
        guard let (subject, _) = try await request(job.requestId, types: ["erasure"], on: db) else {
            context.logger.info("erasure already done", metadata: ["mingus.request": "\(job.requestId)"])
            return
        }
        let started = ContinuousClock.now
        let steps = try await Eraser(database: database, subjectKeys: subjectKeys).erase(job.requestId, subject: subject, actor: "privacy-worker")
        let took = ContinuousClock.now - started
        metrics.counter("mingus_privacy_requests_completed_total", [("type", "erasure")]).increment()
        metrics.histogram("mingus_privacy_erasure_duration_seconds").record(took.inSeconds)
        var result: [String: String] = [:]
        for step in steps { result[step.dataType] = step.summary }
        try await RequestStore.complete(job.requestId, status: "completed", result: result, actor: "privacy-worker",
                                        note: steps.map { "\($0.dataType): \($0.action) \($0.rows)" }.joined(separator: "; "), on: db)
        // Records that the erasure happened and what it did per data type, never the erased data.
        var details: [String: String] = [:]
        for step in steps { details[step.dataType] = "\(step.action) \(step.rows)" }
        _ = try await AuditTrail.append(AuditEvent(actor: "privacy-worker", action: "privacy.erasure.complete",
                                                   resource: "privacy/requests/\(job.requestId.uuidString.lowercased())", outcome: .success, details: details),
                                        component: "privacy", on: db)
    }
}

extension WorkerDefinition {
    /// `mingus-privacy-worker`: queue `mingus.privacy`, metrics on 9107; keeps the hourly
    /// `privacy.cleanup` schedule of export archives and the five-minute `privacy.hipaa.scan` of
    /// the health access log (``ViolationDetector``, `MINGUS_HIPAA_BULK_NORM`, `MINGUS_HIPAA_BUSINESS_HOURS`). Reads the key-encrypting
    /// key (`MINGUS_FINANCIAL_KEY_PATH`) for export archives, financial record contents and
    /// per-subject keys; `MINGUS_PRIVACY_EXPORT_DAYS` (default 7) is how long an archive may be
    /// downloaded.
    public static let privacy = WorkerDefinition(name: "privacy", defaultMetricsPort: 9107, sideConnections: 4) { setup in
        let kek = try KeyEncryptingKey(contentsOf: URL(fileURLWithPath: setup.configuration.financialKeyPath))
        let daysText = setup.environment["MINGUS_PRIVACY_EXPORT_DAYS"].flatMap { $0.isEmpty ? nil : $0 } ?? "7"
        guard let days = Int(daysText), (1...30).contains(days) else {
            throw ConfigurationError(variable: "MINGUS_PRIVACY_EXPORT_DAYS", message: "must be a whole number of days from 1 to 30, got '\(daysText)'")
        }
        let worker = PrivacyWorker(database: setup.sideDatabase, keys: KeyringCache(kek: kek, database: setup.sideDatabase),
                                   exportLifetime: TimeInterval(days * 86_400), detector: try ViolationDetector.fromEnvironment(setup.environment))
        try await setup.sideDatabase.withConnection { db in
            try await Scheduler.upsertPeriodic(on: db, name: "privacy.cleanup", cron: "17 * * * *", type: PrivacyCleanupJob.type)
            try await Scheduler.upsertPeriodic(on: db, name: "privacy.hipaa.scan", cron: "*/5 * * * *", type: HealthScanJob.type)
        }
        return WorkerParts(registry: try worker.registry(schema: setup.schema))
    }
}
