public import Foundation
public import MingusPostgres

/// One recent change in the audit trail, as the dashboard's activity panel lists it.
public struct AuditActivity: Encodable, Sendable, Equatable {
    public var occurredAt: Date
    public var actor: String
    public var action: String
    public var resource: String
    public var outcome: String
}

extension AuditTrail {
    /// The `limit` newest events, read requests (`http.get`) left out: through the partial
    /// index `audit_events_activity` (0023), newest first without a scan.
    public static func recentActivity(limit: Int, on database: PostgresClient) async throws -> [AuditActivity] {
        try await database.query("""
            SELECT occurred_at, actor, action, resource, outcome FROM audit_events
            WHERE action <> 'http.get' ORDER BY occurred_at DESC LIMIT \(limit)
            """).map { row in
            AuditActivity(occurredAt: try row.decode(Date.self, at: 0), actor: try row.decode(String.self, at: 1),
                          action: try row.decode(String.self, at: 2), resource: try row.decode(String.self, at: 3),
                          outcome: try row.decode(String.self, at: 4))
        }
    }
}
