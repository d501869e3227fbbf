public import Crypto
public import Foundation
import Logging
import MingusCore
import MingusHTTP
public import MingusPostgres
public import MingusRuntime
import MingusSecurity

/// `compliance.check`: runs the automated compliance checks (all, or the named ones), stores
/// each result with its evidence, and the day's score snapshot
/// (`Contracts/schemas/compliance.check.v1.json`). Scheduled (`compliance.checks`, hourly by
/// default) or requested through `POST /api/financial/compliance/checks`.
public struct ComplianceCheckJob: Codable, Sendable, Equatable {
    public static let type = "compliance.check"

    /// The run's id (derived from the job's id when absent, as for scheduled runs).
    public var runId: UUID?
    /// The checks to run; all when absent.
    public var checks: [String]?
    /// Who asked (`apikey:<name>`); `scheduler` when absent.
    public var requestedBy: String?

    public init(runId: UUID? = nil, checks: [String]? = nil, requestedBy: String? = nil) {
        self.runId = runId
        self.checks = checks
        self.requestedBy = requestedBy
    }
}

/// Runs the checks and stores what they found.
public struct ComplianceCheckRunner: Sendable {
    public let settings: ComplianceSettings
    public let pool: PostgresClient
    public let auditKeys: [Curve25519.Signing.PublicKey]

    public init(settings: ComplianceSettings, pool: PostgresClient, auditKeys: [Curve25519.Signing.PublicKey]) {
        self.settings = settings
        self.pool = pool
        self.auditKeys = auditKeys
    }

    /// Runs `job`'s checks in the job's transaction: one result row each (a check that throws is
    /// stored as failed with the error, so a broken check never reads as passed), then the run's
    /// counts and the day's snapshot.
    public func run(_ job: ComplianceCheckJob, context: JobContext) async throws {
        let runID = job.runId ?? UUID.derived("compliance.check/\(context.id)")
        let names = job.checks ?? ComplianceChecks.all.map(\.name)
        let checks = try names.map { name in
            guard let check = ComplianceChecks.check(name) else { throw PermanentJobError("there is no compliance check named '\(name)'") }
            return check
        }
        let db = context.database
        try await ComplianceStore.beginRun(runID, requestedBy: job.requestedBy ?? "scheduler", on: db)
        let environment = CheckEnvironment(database: db, pool: pool, settings: settings, auditKeys: auditKeys)
        let cache = ScanCache()
        var failed = 0
        for check in checks {
            let started = ContinuousClock.now
            var outcome: CheckOutcome
            do {
                // A savepoint, so that a check whose statement fails leaves the transaction usable.
                try await db.execute("SAVEPOINT compliance_check")
                outcome = try await check.run(environment, cache)
                try await db.execute("RELEASE SAVEPOINT compliance_check")
            } catch {
                try await db.execute("ROLLBACK TO SAVEPOINT compliance_check")
                context.logger.warning("a compliance check could not run", metadata: [
                    "mingus.compliance.check": "\(check.name)", "mingus.error": "\(String(reflecting: error))",
                ])
                outcome = CheckOutcome(passed: false, summary: "the check could not run: \(error)", evidence: ["error": .string("\(error)")])
            }
            if !outcome.passed { failed += 1 }
            let now = Date()
            try await ComplianceStore.record(
                run: runID, check: check.name, outcome: outcome, checkedAt: now,
                validUntil: now.addingTimeInterval(settings.evidenceMaxAge.inSeconds),
                durationMs: Int64((ContinuousClock.now - started).inMilliseconds), on: db)
        }
        try await ComplianceStore.finishRun(runID, checks: checks.count, failed: failed, on: db)
        let evidence = try await ComplianceStore.evidence(on: db)
        try await ComplianceStore.saveSnapshot(ComplianceComputation.score(evidence), on: db)
        context.logger.info("compliance checks ran", metadata: [
            "mingus.compliance.run": "\(runID.uuidString.lowercased())", "mingus.compliance.checks": "\(checks.count)",
            "mingus.compliance.failed": "\(failed)",
        ])
    }

    /// The handler, its body checked against its schema.
    public func registry(schema: (String) throws -> JSONSchema) throws -> JobRegistry {
        var registry = JobRegistry()
        registry.register(ComplianceCheckJob.type, as: ComplianceCheckJob.self, schema: try schema(ComplianceCheckJob.type),
                          batchable: false) { job, context in
            try await run(job, context: context)
        }
        return registry
    }
}

extension WorkerDefinition {
    /// This worker, also running the compliance checks: it consumes `mingus.compliance` (one job
    /// at a time) besides its own queue and keeps the `compliance.checks` schedule.
    ///
    /// Reads `MINGUS_COMPLIANCE_CHECK_SCHEDULE` (cron, default `7 * * * *`, `off` for none), the
    /// limits of ``ComplianceSettings``, and the audit checkpoint public key
    /// (`MINGUS_AUDIT_SIGNING_KEY_PATH` + `.pub`, default `.services/keys/audit-signing.key.pub`;
    /// without it, checkpoints are counted but not trusted).
    public func runningComplianceChecks() -> WorkerDefinition {
        let inner = self
        return WorkerDefinition(name: name, defaultMetricsPort: defaultMetricsPort, sideConnections: sideConnections + 1) { setup in
            var parts = try await inner.build(setup)
            let environment = setup.environment
            let settings: ComplianceSettings
            do {
                settings = try ComplianceSettings(environment: environment)
            } catch let error as ComplianceConfigurationError {
                throw ConfigurationError(variable: error.variable, message: error.message)
            }
            let schedule = environment["MINGUS_COMPLIANCE_CHECK_SCHEDULE"].flatMap { $0.isEmpty ? nil : $0 } ?? "7 * * * *"
            if schedule != "off", (try? CronSchedule(schedule)) == nil {
                throw ConfigurationError(variable: "MINGUS_COMPLIANCE_CHECK_SCHEDULE", message: "'\(schedule)' is not a cron expression")
            }
            let keyPath = (environment["MINGUS_AUDIT_SIGNING_KEY_PATH"].flatMap { $0.isEmpty ? nil : $0 } ?? ".services/keys/audit-signing.key") + ".pub"
            var keys: [Curve25519.Signing.PublicKey] = []
            if FileManager.default.fileExists(atPath: keyPath) {
                keys.append(try AuditSigner.publicKey(contentsOf: URL(fileURLWithPath: keyPath)))
            } else {
                setup.logger.info("no audit checkpoint public key: checkpoints are counted, not verified", metadata: ["mingus.file": "\(keyPath)"])
            }
            let runner = ComplianceCheckRunner(settings: settings, pool: setup.sideDatabase, auditKeys: keys)
            try parts.registry.merge(try runner.registry(schema: setup.schema))
            parts.extraQueues.append(WorkerRuntime.ExtraQueue(ComplianceDomain.queues, concurrency: 1))
            try await setup.sideDatabase.withTransaction { db in
                if schedule == "off" {
                    try await db.execute("UPDATE mingus_periodic_schedules SET enabled = false WHERE name = 'compliance.checks'")
                } else {
                    try await Scheduler.upsertPeriodic(on: db, name: "compliance.checks", cron: schedule, type: ComplianceCheckJob.type)
                }
            }
            return parts
        }
    }
}
