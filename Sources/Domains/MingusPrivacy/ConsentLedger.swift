public import Foundation
public import MingusPostgres

/// A subject's consent for one purpose as derived from the ledger: the latest entry decides.
public struct ConsentState: Codable, Sendable, Equatable {
    public var purpose: String
    /// `given`, `withdrawn`, or `none` when nothing was ever recorded.
    public var state: String
    public var source: String?
    public var policyVersion: Int?
    public var occurredAt: Date?
    /// Given under a privacy policy version older than a material change published since.
    public var needsRenewal: Bool
}

/// One entry of a subject's consent history.
public struct ConsentEvent: Codable, Sendable, Equatable {
    public var id: Int64
    public var purpose: String
    public var granted: Bool
    public var source: String
    public var policyVersion: Int
    public var occurredAt: Date
    public var recordedBy: String
    public var recordedAt: Date
}

/// The answer to "may subject S be processed for purpose P?".
public struct ConsentDecision: Sendable, Equatable, CustomStringConvertible {
    public var allowed: Bool
    /// `consent_given`, `no_consent`, `consent_withdrawn`, `renewal_needed`, `restricted`, `objected`,
    /// `not_consent_based` (the purpose has another legal basis), `unknown_purpose`.
    public var reason: String
    public var description: String { "\(allowed ? "allowed" : "refused"): \(reason)" }
}

/// The consent ledger (`privacy_consent_events`): append-only, the latest entry per subject and
/// purpose is the current state. Other domains ask ``mayProcess(_:for:on:)`` before processing
/// personal data for a purpose that needs consent.
public enum ConsentLedger {
    /// Whether `subject` may be processed for `purpose` now: never while a processing restriction
    /// stands (one an erasure left, or an upheld Art. 18 request) or after an upheld objection to
    /// the purpose (Art. 21); otherwise a consent-based purpose needs a consent given (latest
    /// entry) under the privacy policy's latest material version, and another legal basis needs
    /// no consent.
    public static func mayProcess(_ subject: String, for purpose: String, on database: PostgresClient) async throws -> ConsentDecision {
        try await database.withConnection { try await mayProcess(subject, for: purpose, on: $0) }
    }

    /// ``mayProcess(_:for:on:)`` inside the caller's transaction.
    public static func mayProcess(_ subject: String, for purpose: String, on db: PostgresConnection) async throws -> ConsentDecision {
        let rows = try await db.query("""
            SELECT p.legal_basis,
                   (SELECT e.granted FROM privacy_consent_events e WHERE e.subject_id = \(subject) AND e.purpose = p.purpose ORDER BY e.id DESC LIMIT 1),
                   (SELECT e.policy_version FROM privacy_consent_events e WHERE e.subject_id = \(subject) AND e.purpose = p.purpose ORDER BY e.id DESC LIMIT 1),
                   (SELECT max(version) FROM privacy_policies WHERE kind = 'privacy' AND material AND published_at IS NOT NULL),
                   EXISTS (SELECT 1 FROM privacy_restrictions WHERE subject_id = \(subject)),
                   EXISTS (SELECT 1 FROM privacy_objections o WHERE o.subject_id = \(subject) AND o.purpose = p.purpose)
            FROM privacy_purposes p WHERE p.purpose = \(purpose)
            """)
        guard let row = rows.first else { return ConsentDecision(allowed: false, reason: "unknown_purpose") }
        if try row.decode(Bool.self, at: 4) { return ConsentDecision(allowed: false, reason: "restricted") }
        if try row.decode(Bool.self, at: 5) { return ConsentDecision(allowed: false, reason: "objected") }
        guard try row.decode(String.self, at: 0) == "consent" else { return ConsentDecision(allowed: true, reason: "not_consent_based") }
        guard let granted = try row.decode(Bool?.self, at: 1) else { return ConsentDecision(allowed: false, reason: "no_consent") }
        guard granted else { return ConsentDecision(allowed: false, reason: "consent_withdrawn") }
        if let version = try row.decode(Int?.self, at: 2), let material = try row.decode(Int?.self, at: 3), version < material {
            return ConsentDecision(allowed: false, reason: "renewal_needed")
        }
        return ConsentDecision(allowed: true, reason: "consent_given")
    }

    /// Appends one entry; the purpose must exist (the caller checks it first for a clear error).
    public static func record(subject: String, purpose: String, granted: Bool, source: String, policyVersion: Int, occurredAt: Date,
                              actor: String, on db: PostgresConnection) async throws -> Int64 {
        try await db.query("""
            INSERT INTO privacy_consent_events (subject_id, purpose, granted, source, policy_version, occurred_at, recorded_by)
            VALUES (\(subject), \(purpose), \(granted), \(source), \(policyVersion), \(occurredAt), \(actor)) RETURNING id
            """)[0].decode(Int64.self, at: 0)
    }

    /// The current state of every purpose for `subject`.
    public static func current(_ subject: String, on db: PostgresConnection) async throws -> [ConsentState] {
        try await db.query("""
            SELECT p.purpose, e.granted, e.source, e.policy_version, e.occurred_at,
                   coalesce(e.granted AND e.policy_version < (SELECT max(version) FROM privacy_policies
                                                             WHERE kind = 'privacy' AND material AND published_at IS NOT NULL), false)
            FROM privacy_purposes p
            LEFT JOIN LATERAL (SELECT granted, source, policy_version, occurred_at FROM privacy_consent_events
                               WHERE subject_id = \(subject) AND purpose = p.purpose ORDER BY id DESC LIMIT 1) e ON true
            ORDER BY p.purpose
            """).map { row in
            let granted = try row.decode(Bool?.self, at: 1)
            return ConsentState(purpose: try row.decode(String.self, at: 0), state: granted.map { $0 ? "given" : "withdrawn" } ?? "none",
                                source: try row.decode(String?.self, at: 2), policyVersion: try row.decode(Int?.self, at: 3),
                                occurredAt: try row.decode(Date?.self, at: 4), needsRenewal: try row.decode(Bool.self, at: 5))
        }
    }

    /// A page of `subject`'s history, oldest first, after entry `after`.
    public static func history(_ subject: String, after: Int64, limit: Int, on db: PostgresConnection) async throws -> [ConsentEvent] {
        try await db.query("""
            SELECT id, purpose, granted, source, policy_version, occurred_at, recorded_by, recorded_at FROM privacy_consent_events
            WHERE subject_id = \(subject) AND id > \(after) ORDER BY id LIMIT \(limit)
            """).map { row in
            ConsentEvent(id: try row.decode(Int64.self, at: 0), purpose: try row.decode(String.self, at: 1), granted: try row.decode(Bool.self, at: 2),
                         source: try row.decode(String.self, at: 3), policyVersion: try row.decode(Int.self, at: 4),
                         occurredAt: try row.decode(Date.self, at: 5), recordedBy: try row.decode(String.self, at: 6),
                         recordedAt: try row.decode(Date.self, at: 7))
        }
    }
}
