import Foundation
public import MingusPostgres
public import MingusSecurity
import MingusPayments

/// A value of an exported row.
public enum ExportValue: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case bool(Bool)
    /// JSON kept as it is (a `jsonb` column).
    case json(String)
    case null

    /// As a JSON value.
    var jsonText: String {
        switch self {
        case .text(let text): return ExportValue.quote(text)
        case .integer(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .json(let text): return text
        case .null: return "null"
        }
    }

    /// As a CSV field (RFC 4180: quoted when it holds a comma, quote or line break).
    var csvText: String {
        let text: String
        switch self {
        case .text(let value), .json(let value): text = value
        case .integer(let value): text = String(value)
        case .bool(let value): text = value ? "true" : "false"
        case .null: return ""
        }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// What a provider needs to read a subject's data.
public struct ProviderContext: Sendable {
    public var database: PostgresClient
    public var keys: KeyringCache

    public init(database: PostgresClient, keys: KeyringCache) {
        self.database = database
        self.keys = keys
    }
}

/// One domain's provider of a data subject's data for access and portability exports: a table
/// of the archive, read in pages with a keyset cursor so memory stays bounded however much a
/// subject has.
public protocol SubjectDataProvider: Sendable {
    /// The domain that owns the data (`payments`).
    var domain: String { get }
    /// The archive's table name (`payments`), also the CSV file's name.
    var table: String { get }
    /// What the table holds, for the archive's schema.
    var summary: String { get }
    /// Column names, in row order.
    var columns: [String] { get }
    /// Up to `limit` rows of `subject` after `cursor` (nil: from the first), and the cursor of the
    /// last row returned (nil when there is no more).
    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?)
}

/// The providers every export asks, in archive order. A domain adds its provider here.
public enum SubjectDataRegistry {
    public static let providers: [any SubjectDataProvider] = [
        PaymentsProvider(), FinancialRecordsProvider(), ConsentsProvider(), CookieConsentsProvider(), RequestsProvider(),
        RestrictionsProvider(), AlertsProvider(), LogsProvider(), AuditProvider(),
    ]
}

private func text(_ row: PostgresRow, _ index: Int) throws -> ExportValue {
    try row.decode(String?.self, at: index).map(ExportValue.text) ?? .null
}

private func integer(_ row: PostgresRow, _ index: Int) throws -> ExportValue {
    try row.decode(Int64?.self, at: index).map(ExportValue.integer) ?? .null
}

/// Times as RFC 3339 text straight from PostgreSQL.
private let time = "YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\""

/// Payments whose `metadata.user_id` is the subject: masked card (last four), never the number,
/// the token or the fingerprint.
struct PaymentsProvider: SubjectDataProvider {
    var domain: String { "payments" }
    var table: String { "payments" }
    var summary: String { "Card payments made by the subject. The card appears masked (last four digits); the number is never exported." }
    var columns: [String] {
        ["transaction_id", "merchant_id", "status", "amount", "currency", "card_brand", "masked_pan", "expiry_month", "expiry_year",
         "authorization_code", "decline_code", "metadata", "created_at", "authorized_at"]
    }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let after = cursor.flatMap { UUID(uuidString: $0[0]) }
        let rows = try await context.database.query("""
            SELECT transaction_id::text, merchant_id, status, amount, currency, card_brand, masked_pan, expiry_month::bigint, expiry_year::bigint,
                   authorization_code, decline_code, metadata::text, to_char(created_at AT TIME ZONE 'UTC', \(time)),
                   to_char(authorized_at AT TIME ZONE 'UTC', \(time))
            FROM payment_data WHERE metadata ? 'user_id' AND metadata->>'user_id' = \(subject)
              AND (\(after)::uuid IS NULL OR transaction_id > \(after)) ORDER BY transaction_id LIMIT \(limit)
            """)
        let values = try rows.map { row in
            [try text(row, 0), try text(row, 1), try text(row, 2), try integer(row, 3), try text(row, 4), try text(row, 5), try text(row, 6),
             try integer(row, 7), try integer(row, 8), try text(row, 9), try text(row, 10), .json(try row.decode(String.self, at: 11)),
             try text(row, 12), try text(row, 13)]
        }
        let next = rows.count == limit ? [try rows[rows.count - 1].decode(String.self, at: 0)] : nil
        return (values, next)
    }
}

/// Financial records of the subject, contents decrypted.
struct FinancialRecordsProvider: SubjectDataProvider {
    var domain: String { "payments" }
    var table: String { "financial_records" }
    var summary: String { "Financial records about the subject, with their contents decrypted." }
    var columns: [String] { ["record_id", "record_type", "classification", "compliance_standard", "content", "created_at", "retention_until"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        // The keyset of the index financial_records (user_id, created_at, record_id).
        // Times go as whole microseconds since the epoch, so no rounding skips or repeats a row.
        var afterMicros: Int64?, afterID: UUID?
        if let cursor, cursor.count == 2 {
            afterMicros = Int64(cursor[0])
            afterID = UUID(uuidString: cursor[1])
        }
        let rows = try await context.database.query("""
            SELECT record_id::text, record_type, classification, compliance_standard, content_key_version, content_ciphertext,
                   to_char(created_at AT TIME ZONE 'UTC', \(time)), to_char(retention_until AT TIME ZONE 'UTC', \(time)),
                   (extract(epoch FROM created_at) * 1000000)::bigint
            FROM financial_records WHERE user_id = \(subject)
              AND (\(afterMicros)::bigint IS NULL
                   OR (created_at, record_id) > (timestamptz 'epoch' + \(afterMicros)::bigint * interval '1 microsecond', \(afterID)::uuid))
            ORDER BY created_at, record_id LIMIT \(limit)
            """)
        var values: [[ExportValue]] = []
        values.reserveCapacity(rows.count)
        var keyring = try await context.keys.current()
        for row in rows {
            let id = try row.decode(String.self, at: 0)
            let sealed = SealedValue(version: try row.decode(Int.self, at: 4), combined: try row.decode([UInt8].self, at: 5))
            if !keyring.versions(.records).contains(sealed.version) { keyring = try await context.keys.current(having: sealed.version, of: .records) }
            let content = try keyring.open(sealed, purpose: .records, context: RecordJob.storageContext(id))
            values.append([.text(id), try text(row, 1), try text(row, 2), try text(row, 3), .json(String(decoding: content, as: UTF8.self)),
                           try text(row, 6), try text(row, 7)])
        }
        let next = try rows.count == limit ? rows.last.map { [String(try $0.decode(Int64.self, at: 8)), try $0.decode(String.self, at: 0)] } : nil
        return (values, next)
    }
}

/// A provider over one table keyed by a bigint id, with the row built by the SQL.
private struct SimpleQuery {
    static func page(_ database: PostgresClient, _ query: PostgresQuery, limit: Int, columns: Int) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let rows = try await database.query(query)
        let values = try rows.map { row in try (0..<columns).map { try text(row, $0 + 1) } }
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
                   to_char(occurred_at AT TIME ZONE 'UTC', \(time)), to_char(recorded_at AT TIME ZONE 'UTC', \(time))
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
            SELECT id, visitor_id, array_to_string(categories, ' '), policy_version::text, source, to_char(occurred_at AT TIME ZONE 'UTC', \(time))
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
            SELECT id::text, type, status, to_char(received_at AT TIME ZONE 'UTC', \(time)), to_char(due_at AT TIME ZONE 'UTC', \(time)),
                   to_char(completed_at AT TIME ZONE 'UTC', \(time))
            FROM privacy_requests WHERE subject_id = \(subject) AND (\(after)::uuid IS NULL OR id > \(after)) ORDER BY id LIMIT \(limit)
            """)
        return (try rows.map { row in try (0..<6).map { try text(row, $0) } }, rows.count == limit ? [try rows[rows.count - 1].decode(String.self, at: 0)] : nil)
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
            SELECT data_type, legal_basis, to_char(restricted_at AT TIME ZONE 'UTC', \(time)) FROM privacy_restrictions
            WHERE subject_id = \(subject) AND data_type > \(after) ORDER BY data_type LIMIT \(limit)
            """)
        return (try rows.map { row in try (0..<3).map { try text(row, $0) } }, rows.count == limit ? [try rows[rows.count - 1].decode(String.self, at: 0)] : nil)
    }
}

/// Alerts whose labels name the subject (`subject_id` or `user_id`).
struct AlertsProvider: SubjectDataProvider {
    var domain: String { "alerts" }
    var table: String { "alerts" }
    var summary: String { "Alerts whose labels name the subject (subject_id or user_id)." }
    var columns: [String] { ["alert_id", "title", "severity", "status", "labels", "created_at"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        let after = cursor.flatMap { UUID(uuidString: $0[0]) }
        let rows = try await context.database.query("""
            SELECT id::text, title, severity, status, labels::text, to_char(created_at AT TIME ZONE 'UTC', \(time)) FROM alerts
            WHERE (labels @> jsonb_build_object('subject_id', \(subject)::text) OR labels @> jsonb_build_object('user_id', \(subject)::text))
              AND (\(after)::uuid IS NULL OR id > \(after)) ORDER BY id LIMIT \(limit)
            """)
        let values = try rows.map { row in [try text(row, 0), try text(row, 1), try text(row, 2), try text(row, 3), ExportValue.json(try row.decode(String.self, at: 4)), try text(row, 5)] }
        return (values, rows.count == limit ? [try rows[rows.count - 1].decode(String.self, at: 0)] : nil)
    }
}

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
            SELECT to_char(at AT TIME ZONE 'UTC', \(time)), service, level, message, (extract(epoch FROM at) * 1000000)::bigint, job_id, seq
            FROM log_lines WHERE variables @> ARRAY[\(subject)::text]
              AND (\(afterMicros)::bigint IS NULL
                   OR (at, job_id, seq) > (timestamptz 'epoch' + \(afterMicros)::bigint * interval '1 microsecond', \(afterJob)::text, \(afterSeq)::int))
            ORDER BY at, job_id, seq LIMIT \(limit)
            """)
        let values = try rows.map { row in try (0..<4).map { try text(row, $0) } }
        let next = try rows.count == limit ? rows.last.map { [String(try $0.decode(Int64.self, at: 4)), try $0.decode(String.self, at: 5), String(try $0.decode(Int.self, at: 6))] } : nil
        return (values, next)
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
            SELECT to_char(occurred_at AT TIME ZONE 'UTC', \(time)), actor, action, resource, outcome, stream, seq FROM audit_events
            WHERE ((details ? 'user_id' AND details->>'user_id' = \(subject)) OR resource = 'subjects/' || \(subject)
                   OR resource IN (SELECT 'privacy/requests/' || id::text FROM privacy_requests WHERE subject_id = \(subject)))
              AND (\(afterStream)::text IS NULL OR (stream, seq) > (\(afterStream), \(afterSeq)))
            ORDER BY stream, seq LIMIT \(limit)
            """)
        let values = try rows.map { row in try (0..<5).map { try text(row, $0) } }
        let next = try rows.count == limit ? rows.last.map { [try $0.decode(String.self, at: 5), String(try $0.decode(Int64.self, at: 6))] } : nil
        return (values, next)
    }
}
