/// A kind of data with a retention date, as a sweep sees it: where its rows are, which of them
/// are due, and how holds find them. Names are fixed in code (never from requests).
public struct RetentionTarget: Sendable {
    /// The policy's `data_type`.
    public var dataType: String
    public var table: String
    /// The single-column key, and its SQL type.
    public var key: String
    public var keyType: String
    /// The SQL condition (alias `t`, `$policy` the policy's interval) that makes a row due.
    public var due: String
    /// The column naming the row's subject (a user id), for holds by subject.
    public var subject: String?
    /// When the row was created, for holds by data type and time range.
    public var created: String
    /// What a policy change re-dates: `SET retention_until = <expression>` on the rows `due` covers
    /// without its date test; nil when the date is computed at sweep time.
    public var redate: (filter: String, column: String, from: String)?

    /// Every data type a sweep covers.
    public static let all: [RetentionTarget] = [payment] + recordTypes.map(record) + [cardToken]

    /// Decided card payments past their retention date (pending ones are never due).
    public static let payment = RetentionTarget(
        dataType: "payment", table: "payment_data", key: "transaction_id", keyType: "uuid",
        due: "t.retention_until < now() AND t.status <> 'pending'", subject: nil, created: "created_at",
        redate: ("t.status <> 'pending'", "retention_until", "created_at"))

    /// The financial record types, each with its own policy.
    public static let recordTypes = ["transaction", "statement", "tax_document", "loan", "investment", "account_profile", "health_expense"]

    static func record(_ type: String) -> RetentionTarget {
        RetentionTarget(
            dataType: type, table: "financial_records", key: "record_id", keyType: "uuid",
            due: "t.record_type = '\(type)' AND t.retention_until < now() AND NOT t.legal_hold", subject: "user_id", created: "created_at",
            redate: ("t.record_type = '\(type)'", "retention_until", "created_at"))
    }

    /// Vaulted cards that no payment references, older than the policy's period.
    public static let cardToken = RetentionTarget(
        dataType: "card_token", table: "card_tokens", key: "token", keyType: "text",
        due: "t.created_at < now() - $policy AND NOT EXISTS (SELECT 1 FROM payment_data p WHERE p.card_token = t.token)",
        subject: nil, created: "created_at", redate: nil)

    public static func named(_ dataType: String) -> RetentionTarget? {
        all.first { $0.dataType == dataType }
    }

    /// Rows no active legal hold covers (alias `t`).
    var notHeld: String {
        var scopes = ["(h.scope = 'resource' AND h.resource_id = t.\(key)::text)",
                      "(h.scope = 'data_type' AND h.data_type = '\(dataType)' AND t.\(created) >= COALESCE(h.created_from, '-infinity') AND t.\(created) < COALESCE(h.created_to, 'infinity'))"]
        if let subject { scopes.append("(h.scope = 'subject' AND h.subject_id = t.\(subject))") }
        return "NOT EXISTS (SELECT 1 FROM retention_legal_holds h WHERE h.released_at IS NULL AND (\(scopes.joined(separator: " OR "))))"
    }
}
