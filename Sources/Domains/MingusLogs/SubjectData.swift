import Foundation
import MingusPostgres
import MingusRuntime

/// Log lines (as stored: redacted) that name the subject among their variables.
struct LogsProvider: SubjectDataProvider {
    var domain: String { "logs" }
    var table: String { "log_lines" }
    var summary: String { "Log lines, as stored (redacted), that name the subject among their variables." }
    var columns: [String] { ["at", "service", "level", "message"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        var afterMicros: Int64?, afterJob: String?, afterSeq: Int?
        if let cursor, cursor.count == 3 {
            afterMicros = Int64(cursor[0])
            afterJob = cursor[1]
            afterSeq = Int(cursor[2])
        }
        let rows = try await context.database.query("""
            SELECT to_char(at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)), service, level, message, (extract(epoch FROM at) * 1000000)::bigint, job_id, seq
            FROM log_lines WHERE variables @> ARRAY[\(subject)::text]
              AND (\(afterMicros)::bigint IS NULL
                   OR (at, job_id, seq) > (timestamptz 'epoch' + \(afterMicros)::bigint * interval '1 microsecond', \(afterJob)::text, \(afterSeq)::int))
            ORDER BY at, job_id, seq LIMIT \(limit)
            """)
        let values = try rows.map { row in try (0..<4).map { try ExportValue.text(row, $0) } }
        let next = try rows.count == limit ? rows.last.map { [String(try $0.decode(Int64.self, at: 4)), try $0.decode(String.self, at: 5), String(try $0.decode(Int.self, at: 6))] } : nil
        return (values, next)
    }
}

