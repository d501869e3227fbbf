import Foundation
import MingusAlerts
import MingusLogs
import MingusPayments
import MingusPostgres
public import MingusRuntime

/// The providers every export asks, in archive order: each domain's `subjectData`.
public enum SubjectDataRegistry {
    public static var providers: [any SubjectDataProvider] {
        DomainDescription.payments.subjectData + DomainDescription.alerts.subjectData + DomainDescription.logs.subjectData
            + DomainDescription.privacy.subjectData
    }
}

/// A provider over one table keyed by a bigint id, with the row built by the SQL.
private struct SimpleQuery {
    static func page(_ database: PostgresClient, _ query: PostgresQuery, limit: Int, columns: Int) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let rows = try await database.query(query)
        let values = try rows.map { row in try (0..<columns).map { try ExportValue.text(row, $0 + 1) } }
        return (values, rows.count == limit ? [String(try rows[rows.count - 1].decode(Int64.self, at: 0))] : nil)
    }
}

/// Consent given and withdrawn, with the source and policy version of each.
struct ConsentsProvider: SubjectDataProvider {
    var domain: String { "privacy" }
    var table: String { "consents" }
    var summary: String { "Every consent the subject gave or withdrew: purpose, source, the privacy policy version shown, when." }
    var columns: [String] { ["purpose", "state", "source", "policy_version", "occurred_at", "recorded_at"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let after = cursor.flatMap { Int64($0[0]) } ?? 0
        return try await SimpleQuery.page(context.database, """
            SELECT id, purpose, CASE WHEN granted THEN 'given' ELSE 'withdrawn' END, source, policy_version::text,
                   to_char(occurred_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)), to_char(recorded_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat))
            FROM privacy_consent_events WHERE subject_id = \(subject) AND id > \(after) ORDER BY id LIMIT \(limit)
            """, limit: limit, columns: columns.count)
    }
}

/// Cookie choices recorded with the subject's id.
struct CookieConsentsProvider: SubjectDataProvider {
    var domain: String { "privacy" }
    var table: String { "cookie_consents" }
    var summary: String { "Cookie choices made while signed in: visitor id, categories accepted, cookie policy version." }
    var columns: [String] { ["visitor_id", "categories", "policy_version", "source", "occurred_at"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let after = cursor.flatMap { Int64($0[0]) } ?? 0
        return try await SimpleQuery.page(context.database, """
            SELECT id, visitor_id, array_to_string(categories, ' '), policy_version::text, source, to_char(occurred_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat))
            FROM privacy_cookie_consents WHERE subject_id = \(subject) AND id > \(after) ORDER BY id LIMIT \(limit)
            """, limit: limit, columns: columns.count)
    }
}

/// The subject's own data-subject requests (their details only while the subject's key exists).
struct RequestsProvider: SubjectDataProvider {
    var domain: String { "privacy" }
    var table: String { "privacy_requests" }
    var summary: String { "The subject's data-subject requests: type, status, when received, due and completed." }
    var columns: [String] { ["request_id", "type", "status", "received_at", "due_at", "completed_at"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let after = cursor.flatMap { UUID(uuidString: $0[0]) }
        let rows = try await context.database.query("""
            SELECT id::text, type, status, to_char(received_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)), to_char(due_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)),
                   to_char(completed_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat))
            FROM privacy_requests WHERE subject_id = \(subject) AND (\(after)::uuid IS NULL OR id > \(after)) ORDER BY id LIMIT \(limit)
            """)
        return (try rows.map { row in try (0..<6).map { try ExportValue.text(row, $0) } }, rows.count == limit ? [try rows[rows.count - 1].decode(String.self, at: 0)] : nil)
    }
}

/// Processing restrictions an erasure left on data a law requires kept.
struct RestrictionsProvider: SubjectDataProvider {
    var domain: String { "privacy" }
    var table: String { "restrictions" }
    var summary: String { "Data kept after an erasure because a law requires it, with the legal basis; its processing is restricted." }
    var columns: [String] { ["data_type", "legal_basis", "restricted_at"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let after = cursor?[0] ?? ""
        let rows = try await context.database.query("""
            SELECT data_type, legal_basis, to_char(restricted_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)) FROM privacy_restrictions
            WHERE subject_id = \(subject) AND data_type > \(after) ORDER BY data_type LIMIT \(limit)
            """)
        return (try rows.map { row in try (0..<3).map { try ExportValue.text(row, $0) } }, rows.count == limit ? [try rows[rows.count - 1].decode(String.self, at: 0)] : nil)
    }
}

/// Audit events about the subject: those whose resource names them or whose details carry their
/// user id, and those about their requests.
struct AuditProvider: SubjectDataProvider {
    var domain: String { "audit" }
    var table: String { "audit_events" }
    var summary: String { "Audit trail events about the subject: records stored for them, their requests, their key." }
    var columns: [String] { ["occurred_at", "actor", "action", "resource", "outcome"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        var afterStream: String?, afterSeq: Int64?
        if let cursor, cursor.count == 2 { afterStream = cursor[0]; afterSeq = Int64(cursor[1]) }
        let rows = try await context.database.query("""
            SELECT to_char(occurred_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)), actor, action, resource, outcome, stream, seq FROM audit_events
            WHERE ((details ? 'user_id' AND details->>'user_id' = \(subject)) OR resource = 'subjects/' || \(subject)
                   OR resource = 'hipaa/subjects/' || \(subject)
                   OR resource IN (SELECT 'privacy/requests/' || id::text FROM privacy_requests WHERE subject_id = \(subject)))
              AND (\(afterStream)::text IS NULL OR (stream, seq) > (\(afterStream), \(afterSeq)))
            ORDER BY stream, seq LIMIT \(limit)
            """)
        let values = try rows.map { row in try (0..<5).map { try ExportValue.text(row, $0) } }
        let next = try rows.count == limit ? rows.last.map { [try $0.decode(String.self, at: 5), String(try $0.decode(Int64.self, at: 6))] } : nil
        return (values, next)
    }
}
