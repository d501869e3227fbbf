public import Foundation
import Logging
import MingusAlerts
import MingusCore
import MingusPostgres
public import MingusRuntime

/// The breach worker's handlers: reports stored and assessed, updates applied and reassessed,
/// reminders turned into alerts (`alerts.ingest`). Each runs in its job's transaction.
public struct BreachWorker: Sendable {
    public let assessor: BreachAssessor

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
        registry.register(BreachReminderJob.type, as: BreachReminderJob.self, schema: try schema(BreachReminderJob.type)) { reminder, context in
            try await handle(reminder, context)
        }
        return registry
    }

    func handle(_ report: BreachReportJob, _ context: JobContext) async throws {
        let db = context.database
        guard try await assessor.store(report, on: db) else {
            context.logger.info("breach already stored", metadata: ["mingus.breach": "\(report.breachId)"])
            return
        }
        guard let facts = try await assessor.facts(of: report.breachId, on: db) else { return }
        let outcome = try await assessor.reassess(report.breachId, facts: facts, actor: "breach-worker", on: db)
        try await assessor.timeline(report.breachId, actor: "breach-worker", kind: "assessed",
                                    "Assessed under rules \(assessor.rules.version): \(outcome.added.count) obligations (\(outcome.added.joined(separator: ", ")))",
                                    on: db)
    }

    func handle(_ update: BreachUpdateJob, _ context: JobContext) async throws {
        let db = context.database
        guard try await assessor.apply(update, on: db), let facts = try await assessor.facts(of: update.breachId, on: db) else {
            throw PermanentJobError("breach \(update.breachId) does not exist")
        }
        let outcome = try await assessor.reassess(update.breachId, facts: facts, actor: update.actor, on: db)
        let parts = [("added", outcome.added), ("changed", outcome.changed), ("superseded", outcome.superseded), ("withdrawn", outcome.withdrawn)]
            .filter { !$0.1.isEmpty }.map { "\($0.0) \($0.1.joined(separator: ", "))" }
        try await assessor.timeline(update.breachId, actor: update.actor, kind: "reassessed",
                                    "Reassessed under rules \(assessor.rules.version): " + (parts.isEmpty ? "no change to the obligations" : parts.joined(separator: "; ")),
                                    on: db)
        for moved in outcome.movedAfterCommunication {
            let alert = AlertJob(
                status: .firing, severity: .high, title: "Breach notification deadline changed after it was communicated",
                description: "\(moved.regime): was \(JobEnvelope.formatTime(moved.from)), now \(moved.to.map(JobEnvelope.formatTime) ?? "no deadline"). See the breach's timeline.",
                labels: ["breach_id": update.breachId.uuidString.lowercased(), "regime": moved.regime, "component": "breach"],
                source: "breach-worker", dedupKey: nil, receivedAt: Date())
            try await context.emit(type: AlertJob.type, alert)
        }
    }

    func handle(_ reminder: BreachReminderJob, _ context: JobContext) async throws {
        let db = context.database
        let rows = try await db.query("""
            SELECT o.status, o.deadline, o.regime, o.regime_name, o.notify, o.breach_id, b.title, b.severity
            FROM breach_obligations o JOIN breaches b ON b.id = o.breach_id
            WHERE o.id = \(reminder.obligationId) FOR UPDATE OF o
            """)
        guard let row = rows.first else { throw PermanentJobError("obligation \(reminder.obligationId) does not exist") }
        let status = try row.decode(String.self, at: 0)
        let deadline = try row.decode(Date?.self, at: 1)
        guard status == "open", let deadline, BreachAssessor.same(deadline, reminder.deadline) else {
            context.logger.debug("reminder no longer applies", metadata: ["mingus.obligation": "\(reminder.obligationId)", "mingus.status": "\(status)"])
            return
        }
        let regime = try row.decode(String.self, at: 2)
        let regimeName = try row.decode(String.self, at: 3)
        let notify = try row.decode(String.self, at: 4)
        let breach = try row.decode(UUID.self, at: 5)
        let title = try row.decode(String.self, at: 6)
        let overdue = reminder.before == 0
        let lead = Self.describe(seconds: reminder.before)
        let severity: AlertSeverity = overdue || reminder.before <= 4 * 3600 ? .critical : reminder.before <= 24 * 3600 ? .high : .medium
        let headline = overdue ? "Breach notification overdue: \(regimeName)" : "Breach notification due within \(lead): \(regimeName)"
        let alert = AlertJob(
            status: .firing, severity: severity, title: headline,
            description: "Notify \(notify) about \"\(title)\" by \(JobEnvelope.formatTime(deadline)) (\(regime)). Record the evidence when it is sent.",
            labels: ["breach_id": breach.uuidString.lowercased(), "obligation_id": reminder.obligationId.uuidString.lowercased(),
                     "regime": regime, "component": "breach"],
            source: "breach-worker",
            dedupKey: "breach-reminder/\(reminder.obligationId.uuidString.lowercased())/\(Int(deadline.timeIntervalSince1970))/\(reminder.before)",
            receivedAt: Date())
        try await context.emit(type: AlertJob.type, alert)
        try await db.execute("""
            UPDATE breach_obligations SET communicated = true, updated_at = clock_timestamp() WHERE id = \(reminder.obligationId)
            """)
        try await assessor.timeline(breach, actor: "breach-worker", kind: "reminder",
                                    overdue ? "\(regimeName): overdue since \(JobEnvelope.formatTime(deadline)); alert sent (\(severity.rawValue))"
                                            : "\(regimeName): due by \(JobEnvelope.formatTime(deadline)), within \(lead); alert sent (\(severity.rawValue))",
                                    on: db, details: ["obligation_id": reminder.obligationId.uuidString.lowercased(), "before_seconds": "\(reminder.before)"])
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
