public import Foundation
public import MingusPostgres

/// The alerts firing now, as the dashboard shows them: counts by severity and the latest ones.
public struct FiringAlerts: Encodable, Sendable, Equatable {
    /// Firing alerts of one severity.
    public struct Severity: Encodable, Sendable, Equatable {
        public var severity: String
        public var firing: Int64
    }

    /// One firing alert.
    public struct Alert: Encodable, Sendable, Equatable {
        public var id: String
        public var severity: String
        public var title: String
        public var source: String
        public var startsAt: Date
        public var receivedCount: Int
    }

    public var firing: Int64
    /// Every severity, `critical` first, zeros included.
    public var bySeverity: [Severity]
    /// The most recently started firing alerts, at most `limit`, most severe first among equals.
    public var latest: [Alert]
}

extension AlertStore {
    /// Firing alerts now (the partial index of firing alerts keeps this cheap).
    public func firing(limit: Int = 10) async throws -> FiringAlerts {
        let severities = ["critical", "high", "medium", "low", "info"]
        var counts: [String: Int64] = [:]
        for row in try await database.query("SELECT severity, count(*) FROM alerts WHERE status = 'firing' GROUP BY severity") {
            counts[try row.decode(String.self, at: 0)] = try row.decode(Int64.self, at: 1)
        }
        let latest = try await database.query("""
            SELECT id::text, severity, title, source, starts_at, received_count FROM alerts WHERE status = 'firing'
            ORDER BY starts_at DESC, array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], severity), id LIMIT \(limit)
            """).map { row in
            FiringAlerts.Alert(id: try row.decode(String.self, at: 0), severity: try row.decode(String.self, at: 1),
                               title: try row.decode(String.self, at: 2), source: try row.decode(String.self, at: 3),
                               startsAt: try row.decode(Date.self, at: 4), receivedCount: try row.decode(Int.self, at: 5))
        }
        return FiringAlerts(firing: counts.values.reduce(0, +), bySeverity: severities.map { .init(severity: $0, firing: counts[$0] ?? 0) },
                            latest: latest)
    }
}
