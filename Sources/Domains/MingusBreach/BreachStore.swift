public import Foundation
public import MingusHTTP
public import MingusPostgres

/// Who an obligation notifies, as the rules name them: the people affected themselves, or
/// anyone else (authorities, regulators, card brands, the media).
public enum NotifyAudience {
    public static let individuals: Set<String> = ["individuals", "data_subjects"]
    public static func isIndividuals(_ notify: String) -> Bool { individuals.contains(notify) }
}

/// A breach as `GET /api/financial/breach/{id}` answers it.
public struct BreachView: Encodable, Sendable {
    public var id: String
    public var title: String
    public var description: String
    public var severity: String
    public var status: String
    public var discoveredAt: Date
    public var awareAt: Date
    public var dataCategories: [String]
    public var dataEncrypted: Bool
    public var keyCompromised: Bool
    public var recordsAffected: Int64
    public var personsAffected: Int64
    public var jurisdictions: [String]
    public var personsByJurisdiction: [String: Int64]
    public var entityRoles: [String]
    public var reportedBy: String
    public var reportedAt: Date
    @Nullable public var assessedAt: Date?
    @Nullable public var rulesVersion: String?
    public var statusChangedAt: Date
    /// Every individual-notice obligation is met (derived from evidence, never set).
    public var notificationSent: Bool
    /// Every obligation to notify anyone else is met (derived from evidence, never set).
    public var regulatoryReported: Bool
    /// Some open obligation is past its deadline.
    public var overdue: Bool
    public var facts: [Fact] = []
    public var obligations: [ObligationView] = []
    public var timeline: [TimelineEntry] = []
    /// Recipients uploaded, sent, failed and remaining, and the latest notification run.
    public var notifications = NotificationProgress.empty

    /// A recorded clock-starting event.
    public struct Fact: Encodable, Sendable {
        public var fact: String
        public var occurredAt: Date
        public var recordedBy: String
        public var recordedAt: Date
    }

    /// One line of the timeline.
    public struct TimelineEntry: Encodable, Sendable {
        public var at: Date
        public var actor: String
        public var kind: String
        public var message: String
    }
}

/// An obligation with its evidence.
public struct ObligationView: Encodable, Sendable {
    public var id: String
    public var regime: String
    public var regimeName: String
    public var notify: String
    public var rulesVersion: String
    public var reason: String
    public var clock: String
    @Nullable public var clockStartedAt: Date?
    @Nullable public var deadline: Date?
    @Nullable public var target: Date?
    public var period: String
    public var status: String
    public var communicated: Bool
    public var overdue: Bool
    @Nullable public var supersededBy: String?
    @Nullable public var metAt: Date?
    public var evidence: [Evidence] = []

    /// Proof that the obligation was met.
    public struct Evidence: Encodable, Sendable {
        public var id: String
        public var what: String
        public var sentTo: String
        public var sentAt: Date
        public var reference: String
        public var recordedBy: String
        public var recordedAt: Date
    }
}

/// A breach in a list: the summary without timeline and obligations.
public struct BreachSummary: Encodable, Sendable {
    public var id: String
    public var title: String
    public var severity: String
    public var status: String
    public var discoveredAt: Date
    public var reportedAt: Date
    public var personsAffected: Int64
    public var openObligations: Int
    @Nullable public var nextDeadline: Date?
    public var overdue: Bool
}

/// The statements behind the breach API's reads.
public struct BreachStore: Sendable {
    let database: PostgresClient

    public init(database: PostgresClient) {
        self.database = database
    }

    static func lowercase(_ id: UUID) -> String { id.uuidString.lowercased() }

    /// The breach with its facts, obligations (with evidence) and timeline; nil when none is stored.
    public func breach(_ id: UUID) async throws -> BreachView? {
        let rows = try await database.query("""
            SELECT id, title, description, severity, status, discovered_at, aware_at, data_categories, data_encrypted, key_compromised,
                   records_affected, persons_affected, jurisdictions, persons_by_jurisdiction::text, entity_roles, reported_by, reported_at,
                   assessed_at, rules_version, status_changed_at
            FROM breaches WHERE id = \(id)
            """)
        guard let row = rows.first else { return nil }
        let obligations = try await obligations(of: id)
        let live = obligations.filter { $0.status == "open" || $0.status == "met" }
        let individual = live.filter { NotifyAudience.isIndividuals($0.notify) }
        let others = live.filter { !NotifyAudience.isIndividuals($0.notify) }
        var view = BreachView(
            id: Self.lowercase(try row.decode(UUID.self, at: 0)), title: try row.decode(String.self, at: 1),
            description: try row.decode(String.self, at: 2), severity: try row.decode(String.self, at: 3),
            status: try row.decode(String.self, at: 4), discoveredAt: try row.decode(Date.self, at: 5), awareAt: try row.decode(Date.self, at: 6),
            dataCategories: try row.decode([String].self, at: 7), dataEncrypted: try row.decode(Bool.self, at: 8),
            keyCompromised: try row.decode(Bool.self, at: 9), recordsAffected: try row.decode(Int64.self, at: 10),
            personsAffected: try row.decode(Int64.self, at: 11), jurisdictions: try row.decode([String].self, at: 12),
            personsByJurisdiction: (try? JSONDecoder().decode([String: Int64].self, from: Data(try row.decode(String.self, at: 13).utf8))) ?? [:],
            entityRoles: try row.decode([String].self, at: 14), reportedBy: try row.decode(String.self, at: 15),
            reportedAt: try row.decode(Date.self, at: 16), assessedAt: try row.decode(Date?.self, at: 17),
            rulesVersion: try row.decode(String?.self, at: 18), statusChangedAt: try row.decode(Date.self, at: 19),
            notificationSent: !individual.isEmpty && individual.allSatisfy { $0.status == "met" },
            regulatoryReported: !others.isEmpty && others.allSatisfy { $0.status == "met" },
            overdue: live.contains { $0.overdue })
        view.obligations = obligations
        view.facts = try await database.query("""
            SELECT fact, occurred_at, recorded_by, recorded_at FROM breach_facts WHERE breach_id = \(id) ORDER BY occurred_at, fact
            """).map { row in
            BreachView.Fact(fact: try row.decode(String.self, at: 0), occurredAt: try row.decode(Date.self, at: 1),
                            recordedBy: try row.decode(String.self, at: 2), recordedAt: try row.decode(Date.self, at: 3))
        }
        view.timeline = try await database.query("""
            SELECT at, actor, kind, message FROM breach_timeline WHERE breach_id = \(id) ORDER BY id
            """).map { row in
            BreachView.TimelineEntry(at: try row.decode(Date.self, at: 0), actor: try row.decode(String.self, at: 1),
                                     kind: try row.decode(String.self, at: 2), message: try row.decode(String.self, at: 3))
        }
        return view
    }

    /// The breach's obligations, live ones first, each with its evidence.
    public func obligations(of breach: UUID) async throws -> [ObligationView] {
        var obligations = try await database.query("""
            SELECT id, regime, regime_name, notify, rules_version, reason, clock, clock_started_at, deadline, target, period, status,
                   communicated, superseded_by, met_at, status = 'open' AND deadline < now()
            FROM breach_obligations WHERE breach_id = \(breach)
            ORDER BY status NOT IN ('open', 'met'), deadline NULLS LAST, target NULLS LAST, regime, created_at
            """).map { row in
            ObligationView(
                id: Self.lowercase(try row.decode(UUID.self, at: 0)), regime: try row.decode(String.self, at: 1),
                regimeName: try row.decode(String.self, at: 2), notify: try row.decode(String.self, at: 3),
                rulesVersion: try row.decode(String.self, at: 4), reason: try row.decode(String.self, at: 5),
                clock: try row.decode(String.self, at: 6), clockStartedAt: try row.decode(Date?.self, at: 7),
                deadline: try row.decode(Date?.self, at: 8), target: try row.decode(Date?.self, at: 9), period: try row.decode(String.self, at: 10),
                status: try row.decode(String.self, at: 11), communicated: try row.decode(Bool.self, at: 12),
                overdue: try row.decode(Bool?.self, at: 15) ?? false,
                supersededBy: try row.decode(UUID?.self, at: 13).map(Self.lowercase), metAt: try row.decode(Date?.self, at: 14))
        }
        let evidence = try await database.query("""
            SELECT id, obligation_id, what, sent_to, sent_at, reference, recorded_by, recorded_at
            FROM breach_evidence WHERE breach_id = \(breach) ORDER BY recorded_at, id
            """)
        for row in evidence {
            let obligation = Self.lowercase(try row.decode(UUID.self, at: 1))
            guard let index = obligations.firstIndex(where: { $0.id == obligation }) else { continue }
            obligations[index].evidence.append(ObligationView.Evidence(
                id: Self.lowercase(try row.decode(UUID.self, at: 0)), what: try row.decode(String.self, at: 2),
                sentTo: try row.decode(String.self, at: 3), sentAt: try row.decode(Date.self, at: 4), reference: try row.decode(String.self, at: 5),
                recordedBy: try row.decode(String.self, at: 6), recordedAt: try row.decode(Date.self, at: 7)))
        }
        return obligations
    }

    /// Filters of the breach list; nil fields do not filter.
    public struct Filter: Sendable {
        public var status: String?
        public var severity: String?
        public var regime: String?
        public var overdue: Bool?
        public var from: Date?
        public var to: Date?
        /// Keyset: breaches reported before this (reported at, id).
        public var before: (Date, UUID)?
        public var limit: Int
    }

    /// Breaches newest first (by when they were reported).
    public func list(_ filter: Filter) async throws -> [BreachSummary] {
        let rows = try await database.query("""
            SELECT b.id, b.title, b.severity, b.status, b.discovered_at, b.reported_at, b.persons_affected,
                   (SELECT count(*) FROM breach_obligations o WHERE o.breach_id = b.id AND o.status = 'open'),
                   (SELECT min(deadline) FROM breach_obligations o WHERE o.breach_id = b.id AND o.status = 'open'),
                   EXISTS (SELECT 1 FROM breach_obligations o WHERE o.breach_id = b.id AND o.status = 'open' AND o.deadline < now())
            FROM breaches b
            WHERE (\(filter.status)::text IS NULL OR b.status = \(filter.status)::text)
              AND (\(filter.severity)::text IS NULL OR b.severity = \(filter.severity)::text)
              AND (\(filter.regime)::text IS NULL OR EXISTS (SELECT 1 FROM breach_obligations o
                       WHERE o.breach_id = b.id AND o.regime = \(filter.regime)::text AND o.status IN ('open', 'met')))
              AND (\(filter.overdue)::boolean IS NULL OR \(filter.overdue)::boolean = EXISTS (SELECT 1 FROM breach_obligations o
                       WHERE o.breach_id = b.id AND o.status = 'open' AND o.deadline < now()))
              AND (\(filter.from)::timestamptz IS NULL OR b.reported_at >= \(filter.from)::timestamptz)
              AND (\(filter.to)::timestamptz IS NULL OR b.reported_at < \(filter.to)::timestamptz)
              AND (\(filter.before?.0)::timestamptz IS NULL OR (b.reported_at, b.id) < (\(filter.before?.0)::timestamptz, \(filter.before?.1)::uuid))
            ORDER BY b.reported_at DESC, b.id DESC LIMIT \(filter.limit)
            """)
        return try rows.map { row in
            BreachSummary(
                id: Self.lowercase(try row.decode(UUID.self, at: 0)), title: try row.decode(String.self, at: 1),
                severity: try row.decode(String.self, at: 2), status: try row.decode(String.self, at: 3),
                discoveredAt: try row.decode(Date.self, at: 4), reportedAt: try row.decode(Date.self, at: 5),
                personsAffected: try row.decode(Int64.self, at: 6), openObligations: Int(try row.decode(Int64.self, at: 7)),
                nextDeadline: try row.decode(Date?.self, at: 8), overdue: try row.decode(Bool.self, at: 9))
        }
    }
}

/// Open breach obligations with a deadline: due within the next 24 hours, and past it.
public struct ObligationDeadlines: Sendable {
    public var dueWithinDay: Int
    public var overdue: Int

    /// The figures as of now.
    public static func read(on database: PostgresClient) async throws -> ObligationDeadlines {
        let row = try await database.query("""
            SELECT count(*) FILTER (WHERE deadline >= now() AND deadline < now() + interval '24 hours'),
                   count(*) FILTER (WHERE deadline < now())
            FROM breach_obligations WHERE status = 'open' AND deadline IS NOT NULL
            """)[0]
        return ObligationDeadlines(dueWithinDay: try row.decode(Int.self, at: 0), overdue: try row.decode(Int.self, at: 1))
    }
}
