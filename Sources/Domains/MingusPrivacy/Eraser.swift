public import Foundation
public import MingusPostgres
public import MingusSecurity

/// Carries out an erasure (Art. 17) one data type at a time. Each step commits with its row in
/// `privacy_erasure_steps`, so a run killed midway resumes after the last finished step and
/// never does one twice. Data a law requires kept is not erased: its processing is restricted
/// (`privacy_restrictions`) with the legal basis recorded (Art. 17(3)(b), Art. 18).
public struct Eraser: Sendable {
    public let database: PostgresClient
    public let subjectKeys: SubjectKeys

    public init(database: PostgresClient, subjectKeys: SubjectKeys) {
        self.database = database
        self.subjectKeys = subjectKeys
    }

    /// One step's outcome.
    public struct Step: Sendable, Equatable {
        public var dataType: String
        public var action: String
        public var rows: Int64
        public var legalBasis: String?

        public var summary: String { "\(action) \(rows)" + (legalBasis.map { " (\($0))" } ?? "") }
    }

    /// Standards under which financial records must be kept; others are deleted.
    static let retainedStandards: Set<String> = ["SOX", "HIPAA"]
    static let monitoringBasis = "legal obligation: security monitoring and audit records (PCI DSS 10.5.1, SOX 404), Art. 17(3)(b)"

    /// Runs every step not yet done for request `id`; returns every step's outcome.
    public func erase(_ id: UUID, subject: String, actor: String) async throws -> [Step] {
        var done = try await steps(id)
        func has(_ type: String) -> Bool { done.contains { $0.dataType == type } }
        let tag = "erased:\(id.uuidString.lowercased())"

        if !has("consents") {
            try await step(id, "consents", action: "anonymised") { db in
                _ = try await db.query("SELECT set_config('mingus.privacy_erasure', \(id.uuidString.lowercased()), true)")
                return Int64(try await db.execute("UPDATE privacy_consent_events SET subject_id = \(tag) WHERE subject_id = \(subject)"))
            }
        }
        if !has("cookie_consents") {
            try await step(id, "cookie_consents", action: "anonymised") { db in
                _ = try await db.query("SELECT set_config('mingus.privacy_erasure', \(id.uuidString.lowercased()), true)")
                return Int64(try await db.execute("""
                    UPDATE privacy_cookie_consents SET subject_id = NULL, visitor_id = \(tag) WHERE subject_id = \(subject)
                    """))
            }
        }
        // Financial records, per record type: deleted unless a law requires them kept.
        let types = try await database.query("""
            SELECT p.data_type, p.compliance_standard, p.legal_basis, count(r.record_id)
            FROM retention_policies p JOIN financial_records r ON r.record_type = p.data_type AND r.user_id = \(subject)
            GROUP BY p.data_type, p.compliance_standard, p.legal_basis ORDER BY p.data_type
            """).map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1), try $0.decode(String.self, at: 2)) }
        for (type, standard, basis) in types where !has("financial_records/\(type)") {
            if Self.retainedStandards.contains(standard) {
                let legal = "\(standard): \(basis)"
                try await step(id, "financial_records/\(type)", action: "restricted", legalBasis: legal) { db in
                    try await restrict(subject, "financial_records/\(type)", legal, id, on: db)
                    return try await db.query("SELECT count(*) FROM financial_records WHERE user_id = \(subject) AND record_type = \(type)")[0].decode(Int64.self, at: 0)
                }
            } else {
                try await step(id, "financial_records/\(type)", action: "deleted") { db in
                    Int64(try await db.execute("DELETE FROM financial_records WHERE user_id = \(subject) AND record_type = \(type)"))
                }
            }
        }
        if !has("payments") {
            let basis = try await database.query("SELECT compliance_standard || ': ' || legal_basis FROM retention_policies WHERE data_type = 'payment'")
                .first?.decode(String.self, at: 0) ?? "SOX: SEC 17 CFR 210.2-06"
            try await step(id, "payments", action: "restricted", legalBasis: basis) { db in
                let rows = try await db.query("""
                    SELECT count(*) FROM payment_data WHERE metadata ? 'user_id' AND metadata->>'user_id' = \(subject)
                    """)[0].decode(Int64.self, at: 0)
                if rows > 0 { try await restrict(subject, "payments", basis, id, on: db) }
                return rows
            }
        }
        // Health records, sealed under the subject's key: deleted here, and the key's erasure
        // below makes every copy elsewhere (archives, backups) unreadable.
        if !has("health_records") {
            try await step(id, "health_records", action: "deleted") { db in
                Int64(try await db.execute("DELETE FROM health_records WHERE subject_id = \(subject)"))
            }
        }
        // The subject's key: whatever was sealed under it (request details, health records) becomes unreadable.
        if !has("subject_key") {
            let sealed = try await database.query("""
                SELECT count(*) FROM privacy_requests WHERE subject_id = \(subject) AND details_sealed IS NOT NULL
                """)[0].decode(Int64.self, at: 0)
            try await subjectKeys.erase(subject, actor: actor, reason: "GDPR Art. 17 request \(id.uuidString.lowercased())")
            try await step(id, "subject_key", action: "crypto_erased") { _ in sealed }
        }
        // Security records that name the subject are kept (append-only, required) and restricted.
        for type in ["alerts", "audit_events"] where !has(type) {
            try await step(id, type, action: "restricted", legalBasis: Self.monitoringBasis) { db in
                let rows = type == "alerts"
                    ? try await db.query("""
                        SELECT count(*) FROM alerts WHERE labels @> jsonb_build_object('subject_id', \(subject)::text)
                           OR labels @> jsonb_build_object('user_id', \(subject)::text)
                        """)[0].decode(Int64.self, at: 0)
                    : try await db.query("""
                        SELECT count(*) FROM audit_events WHERE (details ? 'user_id' AND details->>'user_id' = \(subject)) OR resource = 'subjects/' || \(subject) OR resource = 'hipaa/subjects/' || \(subject)
                        """)[0].decode(Int64.self, at: 0)
                if rows > 0 { try await restrict(subject, type, Self.monitoringBasis, id, on: db) }
                return rows
            }
        }
        done = try await steps(id)
        return done
    }

    /// The steps done so far for request `id`, in order.
    public func steps(_ id: UUID) async throws -> [Step] {
        try await database.query("""
            SELECT data_type, action, rows, legal_basis FROM privacy_erasure_steps WHERE request_id = \(id) ORDER BY done_at, data_type
            """).map { Step(dataType: try $0.decode(String.self, at: 0), action: try $0.decode(String.self, at: 1),
                            rows: try $0.decode(Int64.self, at: 2), legalBasis: try $0.decode(String?.self, at: 3)) }
    }

    private func step(_ id: UUID, _ type: String, action: String, legalBasis: String? = nil,
                      _ work: @escaping @Sendable (PostgresConnection) async throws -> Int64) async throws {
        try await database.withTransaction { db in
            let rows = try await work(db)
            try await db.execute("""
                INSERT INTO privacy_erasure_steps (request_id, data_type, action, rows, legal_basis)
                VALUES (\(id), \(type), \(rows == 0 && action == "restricted" ? "none" : action), \(rows), \(legalBasis))
                """)
        }
    }

    private func restrict(_ subject: String, _ type: String, _ basis: String, _ id: UUID, on db: PostgresConnection) async throws {
        try await db.execute("""
            INSERT INTO privacy_restrictions (subject_id, data_type, legal_basis, request_id) VALUES (\(subject), \(type), \(basis), \(id))
            ON CONFLICT (subject_id, data_type) DO UPDATE SET legal_basis = EXCLUDED.legal_basis, request_id = EXCLUDED.request_id
            """)
    }
}
