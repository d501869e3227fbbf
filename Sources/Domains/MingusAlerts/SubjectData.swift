import Foundation
import MingusPostgres
import MingusRuntime

/// Alerts whose labels name the subject (`subject_id` or `user_id`).
struct AlertsProvider: SubjectDataProvider {
    var domain: String { "alerts" }
    var table: String { "alerts" }
    var summary: String { "Alerts whose labels name the subject (subject_id or user_id)." }
    var columns: [String] { ["alert_id", "title", "severity", "status", "labels", "created_at"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let after = cursor.flatMap { UUID(uuidString: $0[0]) }
        let rows = try await context.database.query("""
            SELECT id::text, title, severity, status, labels::text, to_char(created_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)) FROM alerts
            WHERE (labels @> jsonb_build_object('subject_id', \(subject)::text) OR labels @> jsonb_build_object('user_id', \(subject)::text))
              AND (\(after)::uuid IS NULL OR id > \(after)) ORDER BY id LIMIT \(limit)
            """)
        let values = try rows.map { row in [try ExportValue.text(row, 0), try ExportValue.text(row, 1), try ExportValue.text(row, 2), try ExportValue.text(row, 3), ExportValue.json(try row.decode(String.self, at: 4)), try ExportValue.text(row, 5)] }
        return (values, rows.count == limit ? [try rows[rows.count - 1].decode(String.self, at: 0)] : nil)
    }
}

