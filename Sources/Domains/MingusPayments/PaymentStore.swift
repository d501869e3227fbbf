public import Foundation
public import MingusSecurity
import MingusRuntime
public import MingusPostgres

/// A payment as `payment_data` holds it (never the card number).
public struct StoredPayment: Sendable, Equatable {
    public var transactionID: String
    public var status: String
    public var merchantID: String
    public var amount: Int64
    public var currency: String
    public var cardType: String?
    public var maskedPAN: String?
    public var token: String?
    public var authorizationCode: String?
    public var declineCode: String?
    public var failureReason: String?
    public var createdAt: Date?
    public var updatedAt: Date?
    public var authorizedAt: Date?
    public var retentionUntil: Date?
}

/// A pending payment as the gateway records it once its job is confirmed.
public struct PendingPayment: Sendable {
    public var transactionID: String
    public var merchantID: String
    public var money: Money
    public var pan: PAN
    public var metadata: [String: String]?
    public var callbackURL: String?
    public var requestedBy: String
    public var requestedAt: Date
}

/// How a payment ended, as the worker records it.
public struct PaymentDecision: Sendable {
    public var status: String
    public var token: String?
    public var pan: PAN?
    public var expiry: CardExpiry?
    public var authorizationCode: String?
    public var declineCode: String?
    public var failureReason: String?
    public var processor: String
}

/// Every statement on `payment_data`.
public enum PaymentStore {
    /// Records payments as pending with one statement; a row already there (a retried request,
    /// or a payment the worker decided first) is kept.
    public static func insertPending(_ payments: [PendingPayment], on db: PostgresConnection) async throws {
        guard !payments.isEmpty else { return }
        // In transaction id order, as the worker writes its decisions: two batches that share
        // rows then wait on each other in one order, never in a deadlock.
        let payments = payments.sorted { $0.transactionID.lowercased() < $1.transactionID.lowercased() }
        let encoder = JSONEncoder.mingus
        let metadata = try payments.map { String(decoding: try encoder.encode($0.metadata ?? [:]), as: UTF8.self) }
        try await db.execute("""
            INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, card_brand, masked_pan,
                                      metadata, callback_url, requested_by, created_at)
            SELECT p.transaction_id, p.merchant_id, 'pending', p.amount, p.currency, p.card_brand, p.masked_pan, p.metadata,
                   p.callback_url, p.requested_by, p.created_at
            FROM unnest(\(payments.map(\.transactionID))::uuid[], \(payments.map(\.merchantID))::text[],
                        \(payments.map(\.money.amount))::bigint[], \(payments.map(\.money.currency.code))::text[],
                        \(payments.map(\.pan.brand.rawValue))::text[], \(payments.map(\.pan.masked))::text[], \(metadata)::jsonb[],
                        \(payments.map(\.callbackURL))::text[], \(payments.map(\.requestedBy))::text[],
                        \(payments.map(\.requestedAt))::timestamptz[])
                 AS p (transaction_id, merchant_id, amount, currency, card_brand, masked_pan, metadata, callback_url,
                       requested_by, created_at)
            ON CONFLICT (transaction_id) DO NOTHING
            """)
    }

    /// Records how each job's payment ended, with the retention date of the `payment` policy, in
    /// one statement, and returns the transaction ids it changed: a payment already decided (by an earlier job with the same id) is left
    /// as it is and not returned.
    public static func recordDecisions(_ decided: [(decision: PaymentDecision, job: PaymentJob)],
                                       on db: PostgresConnection) async throws -> Set<String> {
        guard !decided.isEmpty else { return [] }
        // In transaction id order, as the gateway writes pending rows (see insertPending).
        let decided = decided.sorted { $0.job.transactionId.lowercased() < $1.job.transactionId.lowercased() }
        let jobs = decided.map(\.job)
        let decisions = decided.map(\.decision)
        let encoder = JSONEncoder.mingus
        let metadata = try jobs.map { String(decoding: try encoder.encode($0.metadata ?? [:]), as: UTF8.self) }
        let updated = try await db.query("""
            INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, card_token, card_brand, masked_pan,
                                      expiry_month, expiry_year, authorization_code, decline_code, failure_reason, processor,
                                      metadata, callback_url, requested_by, created_at, authorized_at, retention_until)
            SELECT d.transaction_id, d.merchant_id, d.status, d.amount, d.currency, d.card_token, d.card_brand, d.masked_pan,
                   d.expiry_month, d.expiry_year, d.authorization_code, d.decline_code, d.failure_reason, d.processor,
                   d.metadata, d.callback_url, d.requested_by, d.created_at,
                   CASE WHEN d.authorization_code IS NOT NULL THEN now() END, now() + p.retention
            FROM unnest(\(jobs.map(\.transactionId))::uuid[], \(jobs.map(\.merchantId))::text[], \(decisions.map(\.status))::text[],
                        \(jobs.map(\.amount))::bigint[], \(jobs.map(\.currency))::text[], \(decisions.map(\.token))::text[],
                        \(decisions.map { $0.pan?.brand.rawValue })::text[], \(decisions.map { $0.pan?.masked })::text[],
                        \(decisions.map { $0.expiry?.month })::smallint[], \(decisions.map { $0.expiry?.year })::smallint[],
                        \(decisions.map(\.authorizationCode))::text[], \(decisions.map(\.declineCode))::text[],
                        \(decisions.map(\.failureReason))::text[], \(decisions.map(\.processor))::text[], \(metadata)::jsonb[],
                        \(jobs.map(\.callbackUrl))::text[], \(jobs.map(\.requestedBy))::text[], \(jobs.map(\.requestedAt))::timestamptz[])
                 AS d (transaction_id, merchant_id, status, amount, currency, card_token, card_brand, masked_pan, expiry_month,
                       expiry_year, authorization_code, decline_code, failure_reason, processor, metadata, callback_url,
                       requested_by, created_at)
            CROSS JOIN retention_policies p WHERE p.data_type = 'payment'
            ON CONFLICT (transaction_id) DO UPDATE SET
                status = EXCLUDED.status, card_token = EXCLUDED.card_token, card_brand = EXCLUDED.card_brand,
                masked_pan = EXCLUDED.masked_pan, expiry_month = EXCLUDED.expiry_month, expiry_year = EXCLUDED.expiry_year,
                authorization_code = EXCLUDED.authorization_code, decline_code = EXCLUDED.decline_code,
                failure_reason = EXCLUDED.failure_reason, processor = EXCLUDED.processor,
                authorized_at = EXCLUDED.authorized_at, retention_until = EXCLUDED.retention_until, updated_at = now()
            WHERE payment_data.status = 'pending'
            RETURNING transaction_id::text
            """)
        return Set(try updated.map { try $0.decode(String.self, at: 0) })
    }

    /// The payment with `transactionID`, nil when there is none.
    public static func find(_ transactionID: UUID, on database: PostgresClient) async throws -> StoredPayment? {
        guard let row = try await database.query("""
            SELECT transaction_id::text, status, merchant_id, amount, currency, card_brand, masked_pan, card_token,
                   authorization_code, decline_code, failure_reason, created_at, updated_at, authorized_at, retention_until
            FROM payment_data WHERE transaction_id = \(transactionID.uuidString.lowercased())::uuid
            """).first else { return nil }
        return StoredPayment(
            transactionID: try row.decode(String.self, at: 0), status: try row.decode(String.self, at: 1),
            merchantID: try row.decode(String.self, at: 2), amount: try row.decode(Int64.self, at: 3),
            currency: try row.decode(String.self, at: 4), cardType: try row.decode(String?.self, at: 5),
            maskedPAN: try row.decode(String?.self, at: 6), token: try row.decode(String?.self, at: 7),
            authorizationCode: try row.decode(String?.self, at: 8), declineCode: try row.decode(String?.self, at: 9),
            failureReason: try row.decode(String?.self, at: 10), createdAt: try row.decode(Date?.self, at: 11),
            updatedAt: try row.decode(Date?.self, at: 12), authorizedAt: try row.decode(Date?.self, at: 13),
            retentionUntil: try row.decode(Date?.self, at: 14))
    }
}

/// A financial record as `financial_records` holds it: content still sealed.
public struct StoredRecord: Sendable {
    public var recordID: String
    public var recordType: String
    public var classification: String
    public var complianceStandard: String
    public var retentionUntil: Date
    public var content: SealedValue
    public var createdAt: Date
    /// `created_at` in microseconds since 1970, exactly as stored (for keyset cursors).
    public var createdAtMicros: Int64
}

/// Every statement on `financial_records`.
public enum RecordStore {
    /// Stores a record sealed as `content` with its type's policy (retention date, standard);
    /// returns the compliance standard, or nil when the record was already stored.
    public static func insert(_ job: RecordJob, content: SealedValue, on db: PostgresConnection) async throws -> String? {
        let inserted = try await db.query("""
            INSERT INTO financial_records (record_id, user_id, record_type, classification, compliance_standard,
                                           content_ciphertext, content_key_version, requested_by, created_at, retention_until)
            SELECT \(job.recordId)::uuid, \(job.userId)::text, p.data_type, \(job.classification.rawValue)::text,
                   p.compliance_standard, \(content.combined)::bytea, \(content.version)::int, \(job.requestedBy)::text,
                   \(job.requestedAt)::timestamptz, \(job.requestedAt)::timestamptz + p.retention
            FROM retention_policies p WHERE p.data_type = \(job.recordType.rawValue)
            ON CONFLICT (record_id) DO NOTHING
            RETURNING compliance_standard
            """)
        return try inserted.first?.decode(String.self, at: 0)
    }

    /// A user's records, oldest first, after the record (`micros`, `id`) of a previous page.
    public static func list(user: String, after: (micros: Int64, id: String)?, limit: Int,
                            on database: PostgresClient) async throws -> [StoredRecord] {
        try await database.query("""
            SELECT record_id::text, record_type, classification, compliance_standard, retention_until, content_ciphertext,
                   content_key_version, created_at, (extract(epoch FROM created_at) * 1000000)::bigint
            FROM financial_records
            WHERE user_id = \(user)
              AND (\(after?.micros)::bigint IS NULL
                   OR ((extract(epoch FROM created_at) * 1000000)::bigint, record_id) > (\(after?.micros)::bigint, \(after?.id)::uuid))
            ORDER BY created_at, record_id
            LIMIT \(limit)
            """).map { row in
            StoredRecord(
                recordID: try row.decode(String.self, at: 0), recordType: try row.decode(String.self, at: 1),
                classification: try row.decode(String.self, at: 2), complianceStandard: try row.decode(String.self, at: 3),
                retentionUntil: try row.decode(Date.self, at: 4),
                content: SealedValue(version: try row.decode(Int.self, at: 6), combined: try row.decode([UInt8].self, at: 5)),
                createdAt: try row.decode(Date.self, at: 7), createdAtMicros: try row.decode(Int64.self, at: 8))
        }
    }

    /// Moves up to `limit` records sealed with an older `records` key to the newest one.
    public static func rewrap(limit: Int, keyring: Keyring, on db: PostgresConnection) async throws -> Int {
        let version = try keyring.currentVersion(.records)
        let rows = try await db.query("""
            SELECT record_id::text, content_ciphertext, content_key_version FROM financial_records
            WHERE content_key_version < \(version) ORDER BY record_id LIMIT \(limit) FOR UPDATE SKIP LOCKED
            """)
        for row in rows {
            let id = try row.decode(String.self, at: 0)
            let old = SealedValue(version: try row.decode(Int.self, at: 2), combined: try row.decode([UInt8].self, at: 1))
            let context = RecordJob.storageContext(id)
            let sealed = try keyring.seal(try keyring.open(old, purpose: .records, context: context), purpose: .records, context: context)
            try await db.execute("""
                UPDATE financial_records SET content_ciphertext = \(sealed.combined), content_key_version = \(sealed.version)
                WHERE record_id = \(id)::uuid
                """)
        }
        return rows.count
    }
}
