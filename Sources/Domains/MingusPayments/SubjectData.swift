import Foundation
import MingusPostgres
import MingusRuntime
import MingusSecurity

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
                   authorization_code, decline_code, metadata::text, to_char(created_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)),
                   to_char(authorized_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat))
            FROM payment_data WHERE metadata ? 'user_id' AND metadata->>'user_id' = \(subject)
              AND (\(after)::uuid IS NULL OR transaction_id > \(after)) ORDER BY transaction_id LIMIT \(limit)
            """)
        let values = try rows.map { row in
            [try ExportValue.text(row, 0), try ExportValue.text(row, 1), try ExportValue.text(row, 2), try ExportValue.integer(row, 3), try ExportValue.text(row, 4), try ExportValue.text(row, 5), try ExportValue.text(row, 6),
             try ExportValue.integer(row, 7), try ExportValue.integer(row, 8), try ExportValue.text(row, 9), try ExportValue.text(row, 10), .json(try row.decode(String.self, at: 11)),
             try ExportValue.text(row, 12), try ExportValue.text(row, 13)]
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
                   to_char(created_at AT TIME ZONE 'UTC', \(ExportValue.timeFormat)), to_char(retention_until AT TIME ZONE 'UTC', \(ExportValue.timeFormat)),
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
            values.append([.text(id), try ExportValue.text(row, 1), try ExportValue.text(row, 2), try ExportValue.text(row, 3), .json(String(decoding: content, as: UTF8.self)),
                           try ExportValue.text(row, 6), try ExportValue.text(row, 7)])
        }
        let next = try rows.count == limit ? rows.last.map { [String(try $0.decode(Int64.self, at: 8)), try $0.decode(String.self, at: 0)] } : nil
        return (values, next)
    }
}

