import Foundation
import CoreMetrics
import Logging
import MingusAlerts
import MingusCore
import MingusPostgres
public import MingusRuntime

/// The breach worker's handlers: reports stored and assessed, updates applied and reassessed,
/// reminders turned into alerts (`alerts.ingest`). Each runs in its job's transaction.
public struct BreachWorker: Sendable {
    public let assessor: BreachAssessor
    /// `mingus_breach_assessments_total{kind}`, `mingus_breach_obligations_added_total{regime}`,
    /// `mingus_breach_reminders_total{when}`: counted as handlers finish (a batch that rolls back
    /// and runs again counts again).
    let metrics = MetricHandles()

    public init(assessor: BreachAssessor) {
        self.assessor = assessor
    }

    /// The handlers, each body checked against its schema from `schemas`.
    public func registry(schema: (String) throws -> JSONSchema) throws -> JobRegistry {
        var registry = JobRegistry()
        registry.register(BreachReportJob.type, as: BreachReportJob.self, schema: try schema(BreachReportJob.type)) { report, context in
            try await handle(report, context)
        }
        registry.register(BreachUpdateJob.type, as: BreachUpdateJob.self, schema: try schema(BreachUpdateJob.type)) { update, context in
            try await handle(update, context)
        }
        registry.registerBatch(BreachReminderJob.type, as: BreachReminderJob.self, schema: try schema(BreachReminderJob.type)) { reminders in
            try await handle(reminders)
        }
        return registry
    }

    func handle(_ report: BreachReportJob, _ context: JobContext) async throws {
        let db = context.database
        var writes = BreachWrites(breach: report.breachId)
        guard try await assessor.store(report, on: db, writes: &writes) else {
            context.logger.info("breach already stored", metadata: ["mingus.breach": "\(report.breachId)"])
            return
        }
        let facts = BreachFacts(
            severity: report.severity, discoveredAt: report.discoveredAt, awareAt: report.awareAt, categories: Set(report.dataCategories),
            dataEncrypted: report.dataEncrypted, keyCompromised: report.keyCompromised, personsAffected: report.personsAffected,
            jurisdictions: report.jurisdictions, personsByJurisdiction: report.personsByJurisdiction, roles: Set(report.entityRoles),
            facts: Dictionary(report.facts.map { ($0.fact, $0.occurredAt) }) { _, last in last })
        let outcome = try await assessor.reassess(report.breachId, facts: facts, actor: "breach-worker", on: db, writes: &writes)
        writes.timeline(actor: "breach-worker", kind: "assessed",
                        "Assessed under rules \(assessor.rules.version): \(outcome.added.count) obligations (\(outcome.added.joined(separator: ", ")))")
        try await writes.flush(on: db, rulesVersion: assessor.rules.version)
        count(outcome, kind: "report")
    }

    func handle(_ update: BreachUpdateJob, _ context: JobContext) async throws {
        let db = context.database
        var writes = BreachWrites(breach: update.breachId)
        guard try await assessor.apply(update, on: db, writes: &writes), let facts = try await assessor.facts(of: update.breachId, on: db) else {
            throw PermanentJobError("breach \(update.breachId) does not exist")
        }
        let outcome = try await assessor.reassess(update.breachId, facts: facts, actor: update.actor, on: db, writes: &writes)
        let parts = [("added", outcome.added), ("changed", outcome.changed), ("superseded", outcome.superseded), ("withdrawn", outcome.withdrawn)]
            .filter { !$0.1.isEmpty }.map { "\($0.0) \($0.1.joined(separator: ", "))" }
        writes.timeline(actor: update.actor, kind: "reassessed",
                        "Reassessed under rules \(assessor.rules.version): " + (parts.isEmpty ? "no change to the obligations" : parts.joined(separator: "; ")))
        try await writes.flush(on: db, rulesVersion: assessor.rules.version)
        count(outcome, kind: "update")
        for moved in outcome.movedAfterCommunication {
            let alert = AlertJob(
                status: .firing, severity: .high, title: "Breach notification deadline changed after it was communicated",
                description: "\(moved.regime): was \(JobEnvelope.formatTime(moved.from)), now \(moved.to.map(JobEnvelope.formatTime) ?? "no deadline"). See the breach's timeline.",
                labels: ["breach_id": update.breachId.uuidString.lowercased(), "regime": moved.regime, "component": "breach"],
                source: "breach-worker", dedupKey: nil, receivedAt: Date())
            try await context.emit(type: AlertJob.type, alert)
        }
    }

    /// Reminders due together (the scheduler fires them in the same pass) are handled together:
    /// their obligations locked in id order with one statement, then one alert each for those
    /// still open with the deadline the reminder is about.
    func handle(_ reminders: [BatchedJob<BreachReminderJob>]) async throws {
        guard let db = reminders.first?.context.database else { return }
        let rows = try await db.query("""
            SELECT o.id, o.status, o.deadline, o.regime, o.regime_name, o.notify, o.breach_id, b.title
            FROM breach_obligations o JOIN breaches b ON b.id = o.breach_id
            WHERE o.id = ANY(\(reminders.map(\.body.obligationId))::uuid[]) ORDER BY o.id FOR UPDATE OF o
            """)
        struct Obligation {
            var status: String, deadline: Date?, regime: String, regimeName: String, notify: String, breach: UUID, title: String
        }
        var obligations: [UUID: Obligation] = [:]
        for row in rows {
            obligations[try row.decode(UUID.self, at: 0)] = Obligation(
                status: try row.decode(String.self, at: 1), deadline: try row.decode(Date?.self, at: 2), regime: try row.decode(String.self, at: 3),
                regimeName: try row.decode(String.self, at: 4), notify: try row.decode(String.self, at: 5), breach: try row.decode(UUID.self, at: 6),
                title: try row.decode(String.self, at: 7))
        }
        var communicated: [UUID] = []
        var writes: [UUID: BreachWrites] = [:]
        for job in reminders {
            let reminder = job.body
            guard let obligation = obligations[reminder.obligationId] else {
                throw PermanentJobError("obligation \(reminder.obligationId) does not exist")
            }
            guard obligation.status == "open", let deadline = obligation.deadline, BreachAssessor.same(deadline, reminder.deadline) else {
                job.context.logger.debug("reminder no longer applies",
                                         metadata: ["mingus.obligation": "\(reminder.obligationId)", "mingus.status": "\(obligation.status)"])
                continue
            }
            let overdue = reminder.before == 0
            let lead = Self.describe(seconds: reminder.before)
            let severity: AlertSeverity = overdue || reminder.before <= 4 * 3600 ? .critical : reminder.before <= 24 * 3600 ? .high : .medium
            let oid = reminder.obligationId.uuidString.lowercased()
            let alert = AlertJob(
                status: .firing, severity: severity,
                title: overdue ? "Breach notification overdue: \(obligation.regimeName)" : "Breach notification due within \(lead): \(obligation.regimeName)",
                description: "Notify \(obligation.notify) about \"\(obligation.title)\" by \(JobEnvelope.formatTime(deadline)) (\(obligation.regime)). Record the evidence when it is sent.",
                labels: ["breach_id": obligation.breach.uuidString.lowercased(), "obligation_id": oid, "regime": obligation.regime, "component": "breach"],
                source: "breach-worker", dedupKey: "breach-reminder/\(oid)/\(Int(deadline.timeIntervalSince1970))/\(reminder.before)",
                receivedAt: Date())
            try await job.context.emit(type: AlertJob.type, alert)
            communicated.append(reminder.obligationId)
            metrics.counter("mingus_breach_reminders_total", [("when", overdue ? "overdue" : "before")]).increment()
            writes[obligation.breach, default: BreachWrites(breach: obligation.breach)].timeline(
                actor: "breach-worker", kind: "reminder",
                overdue ? "\(obligation.regimeName): overdue since \(JobEnvelope.formatTime(deadline)); alert sent (\(severity.rawValue))"
                        : "\(obligation.regimeName): due by \(JobEnvelope.formatTime(deadline)), within \(lead); alert sent (\(severity.rawValue))",
                details: ["obligation_id": oid, "before_seconds": "\(reminder.before)"])
        }
        guard !communicated.isEmpty else { return }
        try await db.execute("""
            UPDATE breach_obligations SET communicated = true, updated_at = clock_timestamp() WHERE id = ANY(\(communicated)::uuid[])
            """)
        try await BreachWrites.flush(Array(writes.values), on: db, rulesVersion: assessor.rules.version)
    }

    private func count(_ outcome: BreachAssessor.Outcome, kind: String) {
        metrics.counter("mingus_breach_assessments_total", [("kind", kind)]).increment()
        for regime in outcome.added + outcome.superseded {
            metrics.counter("mingus_breach_obligations_added_total", [("regime", regime)]).increment()
        }
    }

    /// `48 h`, `90 min`, `30 s`.
    static func describe(seconds: Int) -> String {
        if seconds % 3600 == 0 { return "\(seconds / 3600) h" }
        if seconds % 60 == 0 { return "\(seconds / 60) min" }
        return "\(seconds) s"
    }
}

extension WorkerDefinition {
    /// `mingus-breach-worker`: queue `mingus.breach`, metrics on 9104. The rules file is
    /// `MINGUS_BREACH_RULES` (default `breach-rules.yaml` beside the schemas' folder, in
    /// `Contracts/`); it must be valid to start. `MINGUS_BREACH_REMINDERS` lists how long before
    /// a deadline reminders fire (default `48h,24h,4h`; units `h`, `m`, `s`). Notification runs
    /// read the key-encrypting key (`MINGUS_FINANCIAL_KEY_PATH`), the letter templates and the
    /// SMTP settings listed at ``NotifierSettings``.
    public static let breach = WorkerDefinition(name: "breach", defaultMetricsPort: 9104, sideConnections: 4) { setup in
        let path = setup.environment["MINGUS_BREACH_RULES"].flatMap { $0.isEmpty ? nil : $0 }
            ?? setup.schemas.deletingLastPathComponent().appendingPathComponent("breach-rules.yaml").path
        let rules = try BreachRules.load(path: path)
        let text = setup.environment["MINGUS_BREACH_REMINDERS"].flatMap { $0.isEmpty ? nil : $0 } ?? "48h,24h,4h"
        guard let leads = BreachWorker.leadTimes(text) else {
            throw ConfigurationError(variable: "MINGUS_BREACH_REMINDERS", message: "must list durations such as 48h,24h,4h (h, m or s), got '\(text)'")
        }
        setup.logger.info("breach rules loaded", metadata: ["mingus.rules.version": "\(rules.version)", "mingus.rules.regimes": "\(rules.regimes.count)"])
        let worker = BreachWorker(assessor: BreachAssessor(rules: rules, reminderLeadTimes: leads))
        let notifier = try BreachNotifier.make(setup)
        return try WorkerParts.breach(worker, notifier: notifier, schema: setup.schema)
    }
}

extension BreachWorker {
    /// Parses `48h,24h,4h`; nil when an item is not a positive whole number of h, m or s.
    public static func leadTimes(_ text: String) -> [Duration]? {
        var leads: [Duration] = []
        for item in text.split(separator: ",") {
            let item = item.trimmingCharacters(in: .whitespaces)
            guard let unit = item.last, let value = Int(item.dropLast()), value > 0 else { return nil }
            switch unit {
            case "h": leads.append(.seconds(value * 3600))
            case "m": leads.append(.seconds(value * 60))
            case "s": leads.append(.seconds(value))
            default: return nil
            }
        }
        return leads.isEmpty ? nil : leads
    }
}
