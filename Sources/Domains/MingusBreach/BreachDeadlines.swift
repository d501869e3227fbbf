public import Foundation
public import MingusHTTP
public import MingusPostgres

/// Open breaches and their notification deadlines, as the dashboard shows them.
public struct BreachDeadlines: Encodable, Sendable, Equatable {
    /// Open breaches of one severity.
    public struct Severity: Encodable, Sendable, Equatable {
        public var severity: String
        public var open: Int64
    }

    /// One open obligation with a deadline, soonest first.
    public struct Obligation: Encodable, Sendable, Equatable {
        public var breachId: String
        public var breachTitle: String
        public var severity: String
        public var regime: String
        public var regimeName: String
        public var notify: String
        public var deadline: Date
        public var overdue: Bool
    }

    /// Breaches not yet resolved, closed or found false positives.
    public var openBreaches: Int64
    /// Every severity, `critical` first, zeros included.
    public var bySeverity: [Severity]
    /// Open obligations (with or without a deadline).
    public var openObligations: Int64
    /// Open obligations whose deadline is within `due_within_hours` from now.
    public var dueSoon: Int64
    public var dueWithinHours: Int
    /// Open obligations whose deadline has passed.
    public var overdue: Int64
    /// The open obligations with the nearest deadlines (overdue ones first), at most `limit`.
    public var deadlines: [Obligation]
}

extension BreachStore {
    /// Breach counts and the nearest deadlines at `now`.
    public func deadlines(now: Date = Date(), dueWithinHours: Int = 72, limit: Int = 10) async throws -> BreachDeadlines {
        let severities = ["critical", "high", "medium", "low"]
        var open: [String: Int64] = [:]
        for row in try await database.query("""
            SELECT severity, count(*) FROM breaches WHERE status NOT IN ('resolved', 'closed', 'false_positive') GROUP BY severity
            """) {
            open[try row.decode(String.self, at: 0)] = try row.decode(Int64.self, at: 1)
        }
        let soon = now.addingTimeInterval(Double(dueWithinHours) * 3600)
        let counts = try await database.query("""
            SELECT count(*),
                   count(*) FILTER (WHERE deadline >= \(now)::timestamptz AND deadline < \(soon)::timestamptz),
                   count(*) FILTER (WHERE deadline < \(now)::timestamptz)
            FROM breach_obligations WHERE status = 'open'
            """)[0]
        let rows = try await database.query("""
            SELECT o.breach_id::text, b.title, b.severity, o.regime, o.regime_name, o.notify, o.deadline
            FROM breach_obligations o JOIN breaches b ON b.id = o.breach_id
            WHERE o.status = 'open' AND o.deadline IS NOT NULL
            ORDER BY o.deadline, o.id LIMIT \(limit)
            """)
        let deadlines = try rows.map { row in
            let deadline = try row.decode(Date.self, at: 6)
            return BreachDeadlines.Obligation(
                breachId: try row.decode(String.self, at: 0), breachTitle: try row.decode(String.self, at: 1),
                severity: try row.decode(String.self, at: 2), regime: try row.decode(String.self, at: 3),
                regimeName: try row.decode(String.self, at: 4), notify: try row.decode(String.self, at: 5),
                deadline: deadline, overdue: deadline < now)
        }
        return BreachDeadlines(
            openBreaches: open.values.reduce(0, +), bySeverity: severities.map { .init(severity: $0, open: open[$0] ?? 0) },
            openObligations: try counts.decode(Int64.self, at: 0), dueSoon: try counts.decode(Int64.self, at: 1),
            dueWithinHours: dueWithinHours, overdue: try counts.decode(Int64.self, at: 2), deadlines: deadlines)
    }
}
