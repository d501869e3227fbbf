public import Foundation
public import MingusPostgres
import MingusRuntime

/// Stores breaches and keeps their obligations in step with their facts, inside the caller's
/// transaction (the breach worker's job transaction).
///
/// Reassessment compares what the rules derive now with the live obligations: a new regime adds
/// an obligation, one that no longer applies is withdrawn, and a changed deadline is moved in
/// place while nobody has been told of it. Once a deadline was communicated (a reminder fired or
/// evidence was recorded), it is never moved: the obligation is superseded by a new one and the
/// timeline says why. Every change leaves a timeline row.
public struct BreachAssessor: Sendable {
    public let rules: BreachRules
    /// How long before a deadline reminders fire (the overdue reminder fires at the deadline).
    public let reminderLeadTimes: [Duration]

    public init(rules: BreachRules, reminderLeadTimes: [Duration] = [.seconds(48 * 3600), .seconds(24 * 3600), .seconds(4 * 3600)]) {
        self.rules = rules
        self.reminderLeadTimes = reminderLeadTimes.sorted(by: >)
    }

    /// What changed in one reassessment.
    public struct Outcome: Sendable, Equatable {
        public var added: [String] = []
        public var changed: [String] = []
        public var superseded: [String] = []
        public var withdrawn: [String] = []
        /// Obligations whose communicated deadline changed: the caller alerts about them.
        public var movedAfterCommunication: [(regime: String, from: Date, to: Date?)] = []

        public static func == (lhs: Outcome, rhs: Outcome) -> Bool {
            lhs.added == rhs.added && lhs.changed == rhs.changed && lhs.superseded == rhs.superseded && lhs.withdrawn == rhs.withdrawn
        }
    }

    /// Stores a reported breach (nothing when it is already stored) with its facts; its timeline
    /// rows go to `writes`. Returns false when it was already there.
    public func store(_ report: BreachReportJob, on db: PostgresConnection, writes: inout BreachWrites) async throws -> Bool {
        let reportedAt = APITimeParsing.parse(report.reportedAt) ?? Date()
        let inserted = try await db.execute("""
            INSERT INTO breaches (id, title, description, severity, discovered_at, aware_at, data_categories, data_encrypted,
                key_compromised, records_affected, persons_affected, jurisdictions, persons_by_jurisdiction, entity_roles,
                reported_by, reported_at)
            VALUES (\(report.breachId), \(report.title), \(report.description), \(report.severity.rawValue), \(report.discoveredAt),
                \(report.awareAt), \(report.dataCategories), \(report.dataEncrypted), \(report.keyCompromised), \(report.recordsAffected),
                \(report.personsAffected), \(report.jurisdictions), \(Self.json(report.personsByJurisdiction))::jsonb, \(report.entityRoles),
                \(report.reportedBy), \(reportedAt))
            ON CONFLICT (id) DO NOTHING
            """)
        guard inserted == 1 else { return false }
        writes.timeline(actor: report.reportedBy, kind: "reported",
                        "Reported with severity \(report.severity.rawValue); \(report.personsAffected) persons and \(report.recordsAffected) records affected")
        for fact in report.facts {
            try await record(fact, for: report.breachId, actor: report.reportedBy, on: db, writes: &writes)
        }
        return true
    }

    /// Applies an update to a stored breach (locked for the rest of the transaction) and
    /// describes each change on the timeline. Returns nil when there is no such breach.
    public func apply(_ update: BreachUpdateJob, on db: PostgresConnection, writes: inout BreachWrites) async throws -> Bool {
        guard let before = try await facts(of: update.breachId, on: db, lock: true) else { return false }
        let changes = update.changes
        var said: [String] = []
        func note<T: Equatable>(_ name: String, _ old: T, _ new: T?, _ show: (T) -> String) {
            if let new, new != old { said.append("\(name) \(show(old)) → \(show(new))") }
        }
        let list: ([String]) -> String = { $0.isEmpty ? "none" : $0.joined(separator: ", ") }
        note("severity", before.severity, changes.severity) { $0.rawValue }
        note("discovered_at", before.discoveredAt, changes.discoveredAt, JobEnvelope.formatTime)
        note("aware_at", before.awareAt, changes.awareAt, JobEnvelope.formatTime)
        note("data_categories", before.categories.sorted(), changes.dataCategories?.sorted(), list)
        note("data_encrypted", before.dataEncrypted, changes.dataEncrypted) { "\($0)" }
        note("key_compromised", before.keyCompromised, changes.keyCompromised) { "\($0)" }
        note("persons_affected", before.personsAffected, changes.personsAffected) { "\($0)" }
        note("jurisdictions", before.jurisdictions, changes.jurisdictions, list)
        note("persons_by_jurisdiction", before.personsByJurisdiction, changes.personsByJurisdiction) { counts in
            list(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" })
        }
        note("entity_roles", before.roles.sorted(), changes.entityRoles?.sorted(), list)
        if !changes.isEmpty {
            try await db.execute("""
                UPDATE breaches SET
                    severity = COALESCE(\(changes.severity?.rawValue), severity),
                    description = COALESCE(\(changes.description), description),
                    discovered_at = COALESCE(\(changes.discoveredAt), discovered_at),
                    aware_at = COALESCE(\(changes.awareAt), aware_at),
                    data_categories = COALESCE(\(changes.dataCategories)::text[], data_categories),
                    data_encrypted = COALESCE(\(changes.dataEncrypted), data_encrypted),
                    key_compromised = COALESCE(\(changes.keyCompromised), key_compromised),
                    records_affected = COALESCE(\(changes.recordsAffected), records_affected),
                    persons_affected = COALESCE(\(changes.personsAffected), persons_affected),
                    jurisdictions = COALESCE(\(changes.jurisdictions)::text[], jurisdictions),
                    persons_by_jurisdiction = COALESCE(\(changes.personsByJurisdiction.map(Self.json))::jsonb, persons_by_jurisdiction),
                    entity_roles = COALESCE(\(changes.entityRoles)::text[], entity_roles),
                    updated_at = now()
                WHERE id = \(update.breachId)
                """)
            if changes.description != nil { said.append("description changed") }
            if let records = changes.recordsAffected { said.append("records_affected → \(records)") }
        }
        if !said.isEmpty {
            let why = update.note.map { " (\($0))" } ?? ""
            writes.timeline(actor: update.actor, kind: "changed", said.joined(separator: "; ") + why)
        }
        for fact in update.facts {
            try await record(fact, for: update.breachId, actor: update.actor, on: db, writes: &writes)
        }
        return true
    }

    /// Records a clock-starting fact (a new time replaces the old one; the timeline keeps both).
    func record(_ fact: BreachFactRecord, for breach: UUID, actor: String, on db: PostgresConnection, writes: inout BreachWrites) async throws {
        let rows = try await db.query("""
            INSERT INTO breach_facts (breach_id, fact, occurred_at, recorded_by) VALUES (\(breach), \(fact.fact), \(fact.occurredAt), \(actor))
            ON CONFLICT (breach_id, fact) DO UPDATE SET occurred_at = EXCLUDED.occurred_at, recorded_by = EXCLUDED.recorded_by,
                recorded_at = now()
            WHERE breach_facts.occurred_at IS DISTINCT FROM EXCLUDED.occurred_at
            RETURNING (xmax <> 0)
            """)
        guard let row = rows.first else { return }
        let replaced = try row.decode(Bool.self, at: 0)
        writes.timeline(actor: actor, kind: "fact", "\(fact.fact) \(replaced ? "now recorded" : "recorded") at \(JobEnvelope.formatTime(fact.occurredAt))")
    }

    /// The breach's facts as the rules see them; nil when there is no such breach.
    public func facts(of breach: UUID, on db: PostgresConnection, lock: Bool = false) async throws -> BreachFacts? {
        let rows = try await db.query("""
            SELECT severity, discovered_at, aware_at, data_categories, data_encrypted, key_compromised, persons_affected,
                   jurisdictions, persons_by_jurisdiction::text, entity_roles
            FROM breaches WHERE id = \(breach) \(unescaped: lock ? "FOR UPDATE" : "")
            """)
        guard let row = rows.first else { return nil }
        let counts = try JSONDecoder().decode([String: Int64].self, from: Data(try row.decode(String.self, at: 8).utf8))
        var facts = BreachFacts(
            severity: BreachSeverity(rawValue: try row.decode(String.self, at: 0)) ?? .critical,
            discoveredAt: try row.decode(Date.self, at: 1), awareAt: try row.decode(Date.self, at: 2),
            categories: Set(try row.decode([String].self, at: 3)), dataEncrypted: try row.decode(Bool.self, at: 4),
            keyCompromised: try row.decode(Bool.self, at: 5), personsAffected: try row.decode(Int64.self, at: 6),
            jurisdictions: try row.decode([String].self, at: 7), personsByJurisdiction: counts,
            roles: Set(try row.decode([String].self, at: 9)))
        for fact in try await db.query("SELECT fact, occurred_at FROM breach_facts WHERE breach_id = \(breach)") {
            facts.facts[try fact.decode(String.self, at: 0)] = try fact.decode(Date.self, at: 1)
        }
        return facts
    }

    /// A live obligation as stored.
    struct LiveObligation {
        var id: UUID
        var regime: String
        var status: String
        var deadline: Date?
        var target: Date?
        var communicated: Bool
    }

    /// Brings the breach's obligations in line with the rules, schedules the reminders of every
    /// open deadline, and stamps the assessment. `actor` is who caused it.
    public func reassess(_ breach: UUID, facts: BreachFacts, actor: String, on db: PostgresConnection, writes: inout BreachWrites,
                         now: Date = Date()) async throws -> Outcome {
        let drafts = rules.assess(facts)
        let live = try await db.query("""
            SELECT id, regime, status, deadline, target, communicated FROM breach_obligations
            WHERE breach_id = \(breach) AND status IN ('open', 'met') ORDER BY id FOR UPDATE
            """).map { row in
            LiveObligation(id: try row.decode(UUID.self, at: 0), regime: try row.decode(String.self, at: 1),
                           status: try row.decode(String.self, at: 2), deadline: try row.decode(Date?.self, at: 3),
                           target: try row.decode(Date?.self, at: 4), communicated: try row.decode(Bool.self, at: 5))
        }
        var outcome = Outcome()
        var byRegime = Dictionary(uniqueKeysWithValues: live.map { ($0.regime, $0) })
        for draft in drafts {
            guard let existing = byRegime.removeValue(forKey: draft.regime) else {
                let id = writes.add(draft)
                outcome.added.append(draft.regime)
                writes.timeline(actor: actor, kind: "obligation_added", "\(draft.regimeName): notify \(draft.notify) \(Self.due(draft)) (\(draft.reason))",
                                details: ["obligation_id": id.uuidString.lowercased(), "regime": draft.regime])
                scheduleReminders(obligation: id, deadline: draft.deadline, now: now, writes: &writes)
                continue
            }
            guard !Self.same(existing.deadline, draft.deadline) || !Self.same(existing.target, draft.target) else { continue }
            if existing.status == "met" {
                continue // Met is met: the evidence stands whatever the clock says now.
            }
            if existing.communicated, let old = existing.deadline ?? existing.target {
                // Out of the live set now (one live obligation per regime); linked to its successor
                // once that is stored.
                try await db.execute("""
                    UPDATE breach_obligations SET status = 'superseded', updated_at = clock_timestamp() WHERE id = \(existing.id)
                    """)
                let id = writes.add(draft, superseding: existing.id)
                outcome.superseded.append(draft.regime)
                outcome.movedAfterCommunication.append((draft.regime, old, draft.deadline ?? draft.target))
                writes.timeline(actor: actor, kind: "obligation_superseded",
                                "\(draft.regimeName): the facts now give \(Self.due(draft)) instead of \(JobEnvelope.formatTime(old)), which was already communicated; it stays on record and a new obligation replaces it (\(draft.reason))",
                                details: ["obligation_id": id.uuidString.lowercased(), "superseded": existing.id.uuidString.lowercased(),
                                          "regime": draft.regime])
                scheduleReminders(obligation: id, deadline: draft.deadline, now: now, writes: &writes)
            } else {
                try await db.execute("""
                    UPDATE breach_obligations SET deadline = \(draft.deadline), target = \(draft.target), clock = \(draft.clock),
                        clock_started_at = \(draft.clockStartedAt), reason = \(draft.reason), rules_version = \(rules.version),
                        updated_at = clock_timestamp()
                    WHERE id = \(existing.id)
                    """)
                outcome.changed.append(draft.regime)
                let old = (existing.deadline ?? existing.target).map(JobEnvelope.formatTime) ?? "no deadline yet"
                writes.timeline(actor: actor, kind: "obligation_changed", "\(draft.regimeName): \(Self.due(draft)) (was \(old); clock \(draft.clock))",
                                details: ["obligation_id": existing.id.uuidString.lowercased(), "regime": draft.regime])
                scheduleReminders(obligation: existing.id, deadline: draft.deadline, now: now, writes: &writes)
            }
        }
        for gone in byRegime.values.sorted(by: { $0.regime < $1.regime }) where gone.status == "open" {
            try await db.execute("""
                UPDATE breach_obligations SET status = 'withdrawn', updated_at = clock_timestamp() WHERE id = \(gone.id)
                """)
            outcome.withdrawn.append(gone.regime)
            writes.timeline(actor: actor, kind: "obligation_withdrawn",
                            "\(gone.regime): no longer required by the rules for the current facts\(gone.communicated ? " (it had been communicated)" : "")",
                            details: ["obligation_id": gone.id.uuidString.lowercased(), "regime": gone.regime])
        }
        try await db.execute("""
            UPDATE breaches SET assessed_at = COALESCE(assessed_at, clock_timestamp()), rules_version = \(rules.version) WHERE id = \(breach)
            """)
        return outcome
    }

    /// Schedules the reminders of a deadline: one per lead time still ahead, one now standing
    /// for those already past (when the deadline is still ahead), and the overdue one at the
    /// deadline. The job ids name the obligation, the deadline and the lead time, so scheduling
    /// again is harmless and a moved deadline gets reminders of its own.
    func scheduleReminders(obligation: UUID, deadline: Date?, now: Date, writes: inout BreachWrites) {
        guard let deadline else { return }
        var reminders: [(before: Int, at: Date)] = []
        var passed: Int?
        for lead in reminderLeadTimes {
            let seconds = Int(lead.components.seconds)
            let at = deadline.addingTimeInterval(-Double(seconds))
            if at > now { reminders.append((seconds, at)) } else { passed = seconds }
        }
        if let passed, deadline > now { reminders.append((passed, now)) }
        reminders.append((0, deadline))
        let encoder = JSONEncoder.mingus
        for reminder in reminders {
            let job = BreachReminderJob(obligationId: obligation, deadline: deadline, before: reminder.before)
            let id = "breach-reminder/\(obligation.uuidString.lowercased())/\(Int(deadline.timeIntervalSince1970))/\(reminder.before)"
            // A reminder body always encodes.
            let body = (try? encoder.encode(job)).map(Array.init) ?? []
            writes.reminders.append(Scheduler.OneOff(id: id, type: BreachReminderJob.type, body: body, at: reminder.at))
        }
    }


    static func json<T: Encodable>(_ value: T) -> String {
        (try? String(decoding: JSONEncoder().encode(value), as: UTF8.self)) ?? "{}"
    }

    static func same(_ a: Date?, _ b: Date?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case let (a?, b?): abs(a.timeIntervalSince(b)) < 0.001
        default: false
        }
    }

    static func due(_ draft: ObligationDraft) -> String {
        if let deadline = draft.deadline { return "by \(JobEnvelope.formatTime(deadline)) (\(draft.period))" }
        if let target = draft.target { return "\(draft.period), by \(JobEnvelope.formatTime(target))" }
        return "once \(draft.clock.replacingOccurrences(of: "fact:", with: "")) is recorded (\(draft.period))"
    }
}

/// What one job writes about one breach besides its own row, gathered while it runs and
/// written with one statement per table (``flush(on:rulesVersion:)``): timeline rows in order,
/// new obligations, and their reminders.
public struct BreachWrites: Sendable {
    public let breach: UUID
    private(set) var entries: [(actor: String, kind: String, message: String, details: String)] = []
    private(set) var obligations: [(id: UUID, draft: ObligationDraft, supersedes: UUID?)] = []
    var reminders: [Scheduler.OneOff] = []

    public init(breach: UUID) {
        self.breach = breach
    }

    /// Adds a timeline row.
    public mutating func timeline(actor: String, kind: String, _ message: String, details: [String: String] = [:]) {
        entries.append((actor, kind, message, BreachAssessor.json(details)))
    }

    /// Adds an obligation (superseding another, already out of the live set); returns its id.
    mutating func add(_ draft: ObligationDraft, superseding old: UUID? = nil) -> UUID {
        let id = UUID()
        obligations.append((id, draft, old))
        return id
    }

    /// Writes everything gathered, in the caller's transaction.
    public func flush(on db: PostgresConnection, rulesVersion: String) async throws {
        try await Self.flush([self], on: db, rulesVersion: rulesVersion)
    }

    /// Writes what several jobs gathered (about any breaches) with one statement per table.
    public static func flush(_ all: [BreachWrites], on db: PostgresConnection, rulesVersion: String) async throws {
        let obligations = all.flatMap { writes in writes.obligations.map { (breach: writes.breach, $0.id, $0.draft, $0.supersedes) } }
        if !obligations.isEmpty {
            let drafts = obligations.map(\.2)
            try await db.execute("""
                INSERT INTO breach_obligations (id, breach_id, regime, regime_name, notify, rules_version, reason, clock, clock_started_at,
                    deadline, target, period)
                SELECT o.id, o.breach_id, o.regime, o.regime_name, o.notify, \(rulesVersion), o.reason, o.clock, o.clock_started_at,
                       o.deadline, o.target, o.period
                FROM unnest(\(obligations.map(\.1))::uuid[], \(obligations.map(\.breach))::uuid[], \(drafts.map(\.regime))::text[],
                            \(drafts.map(\.regimeName))::text[], \(drafts.map(\.notify))::text[], \(drafts.map(\.reason))::text[],
                            \(drafts.map(\.clock))::text[], \(drafts.map(\.clockStartedAt))::timestamptz[], \(drafts.map(\.deadline))::timestamptz[],
                            \(drafts.map(\.target))::timestamptz[], \(drafts.map(\.period))::text[])
                     AS o (id, breach_id, regime, regime_name, notify, reason, clock, clock_started_at, deadline, target, period)
                """)
            let successions = obligations.filter { $0.3 != nil }
            if !successions.isEmpty {
                try await db.execute("""
                    UPDATE breach_obligations o SET superseded_by = s.new FROM unnest(\(successions.map { $0.3! })::uuid[],
                        \(successions.map(\.1))::uuid[]) AS s (old, new)
                    WHERE o.id = s.old
                    """)
            }
        }
        try await Scheduler.schedule(on: db, all.flatMap(\.reminders))
        let entries = all.flatMap { writes in writes.entries.map { (breach: writes.breach, $0) } }
        if !entries.isEmpty {
            try await db.execute("""
                INSERT INTO breach_timeline (breach_id, actor, kind, message, details)
                SELECT e.breach_id, e.actor, e.kind, e.message, e.details::jsonb
                FROM unnest(\(entries.map(\.breach))::uuid[], \(entries.map(\.1.actor))::text[], \(entries.map(\.1.kind))::text[],
                            \(entries.map(\.1.message))::text[], \(entries.map(\.1.details))::text[])
                     WITH ORDINALITY AS e (breach_id, actor, kind, message, details, n)
                ORDER BY e.n
                """)
        }
    }
}

/// RFC 3339 times with fractions of a second, as the gateway writes `reported_at`.
enum APITimeParsing {
    static func parse(_ text: String) -> Date? {
        try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
