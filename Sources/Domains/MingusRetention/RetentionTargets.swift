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
    /// A further condition a due row must meet before a batch may claim it (alias `t`): rows that
    /// others still reference wait until those are gone, later in the same sweep.
    public var ready: String? = nil
    /// The archived JSON line of a row (alias `t`); the row itself unless it carries its children.
    public var archiveLine = "row_to_json(t)::text"
    /// Child rows deleted with their parent, as (table, column naming the parent's key); the
    /// archive line must carry them.
    public var children: [(table: String, column: String)] = []
    /// The column a hold by resource id matches; the key unless set.
    public var resourceColumn: String? = nil
    /// The actions a policy of this data type may choose.
    public var actions: [RetentionAction] = [.archiveThenDelete, .delete]

    /// Every data type a sweep covers, in sweep order.
    public static let all: [RetentionTarget] = [payment] + recordTypes.map(record) + [cardToken, alert, alertDelivery, idempotencyKey, logLine, dropletSample, healthRecord, auditEvent]

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

    /// Resolved alerts, archived with every event received for them; their routing group
    /// memberships go with them.
    public static let alert = RetentionTarget(
        dataType: "alert", table: "alerts", key: "id", keyType: "uuid",
        due: "t.status = 'resolved' AND t.ends_at < now() - $policy", subject: nil, created: "created_at", redate: nil,
        archiveLine: """
            (to_jsonb(t) || jsonb_build_object('events', COALESCE(
                (SELECT jsonb_agg(to_jsonb(e) ORDER BY e.received_at, e.id) FROM alert_events e WHERE e.alert_id = t.id), '[]')))::text
            """,
        children: [("alert_events", "alert_id"), ("alert_group_members", "alert_id")])

    /// Finished deliveries, archived with every attempt. A delivery a fallback replaced waits
    /// until its fallback is gone (the fallback names it).
    public static let alertDelivery = RetentionTarget(
        dataType: "alert_delivery", table: "alert_deliveries", key: "id", keyType: "uuid",
        due: "t.status <> 'pending' AND t.created_at < now() - $policy", subject: nil, created: "created_at", redate: nil,
        ready: "NOT EXISTS (SELECT 1 FROM alert_deliveries f WHERE f.fallback_of = t.id)",
        archiveLine: """
            (to_jsonb(t) || jsonb_build_object('attempts', COALESCE(
                (SELECT jsonb_agg(to_jsonb(a) ORDER BY a.attempt) FROM alert_delivery_attempts a WHERE a.delivery_id = t.id), '[]')))::text
            """,
        children: [("alert_delivery_attempts", "delivery_id")])

    /// The gateway's idempotency keys (also purged by the gateway every ten minutes once expired);
    /// keyed by row position, since their key has two columns.
    public static let idempotencyKey = RetentionTarget(
        dataType: "idempotency_key", table: "gateway_idempotency_keys", key: "ctid", keyType: "tid",
        due: "t.created_at < now() - $policy AND t.expires_at < now()", subject: nil, created: "created_at", redate: nil,
        resourceColumn: "idempotency_key", actions: [.delete])

    /// Log lines: whole day partitions (`log_lines_YYYYMMDD`) past the period are dropped, never
    /// rows deleted; a partition a hold on the data type's time range overlaps stays.
    public static let logLine = RetentionTarget(
        dataType: "log_line", table: "log_lines", key: "ctid", keyType: "tid",
        due: "t.at < date_trunc('day', now() - $policy)", subject: nil, created: "at", redate: nil,
        resourceColumn: "service", actions: [.delete])

    /// DigitalOcean droplet metric samples (`do_samples`), deleted once past the period.
    public static let dropletSample = RetentionTarget(
        dataType: "droplet_sample", table: "do_samples", key: "ctid", keyType: "tid",
        due: "t.at < now() - $policy", subject: nil, created: "at", redate: nil,
        resourceColumn: "droplet_id", actions: [.delete])

    /// The audit trail: archived per stream up to an entry a signed checkpoint names, then deleted
    /// below the stream's new base (``AuditRetention``). Holds by resource match the event's resource.
    public static let auditEvent = RetentionTarget(
        dataType: "audit_event", table: "audit_events", key: "seq", keyType: "bigint",
        due: "t.occurred_at < now() - $policy AND t.seq > COALESCE((SELECT b.base_seq FROM audit_stream_bases b WHERE b.stream = t.stream), 0)",
        subject: nil, created: "occurred_at", redate: nil, resourceColumn: "resource", actions: [.archiveThenDelete])

    /// Health records six years after they were recorded (HIPAA 164.316(b)(2)); a hold on the
    /// subject keeps them.
    public static let healthRecord = RetentionTarget(
        dataType: "health_record", table: "health_records", key: "id", keyType: "uuid",
        due: "t.recorded_at < now() - $policy", subject: "subject_id", created: "recorded_at", redate: nil)

    /// A value below every key of the key's type, where claims start.
    var lowestKey: String {
        switch keyType {
        case "uuid": "00000000-0000-0000-0000-000000000000"
        case "bigint": "-9223372036854775808"
        case "tid": "(0,0)"
        default: ""
        }
    }

    public static func named(_ dataType: String) -> RetentionTarget? {
        all.first { $0.dataType == dataType }
    }

    /// Rows no active legal hold covers (alias `t`).
    var notHeld: String {
        var scopes = ["(h.scope = 'resource' AND h.resource_id = t.\(resourceColumn ?? key)::text)",
                      "(h.scope = 'data_type' AND h.data_type = '\(dataType)' AND t.\(created) >= COALESCE(h.created_from, '-infinity') AND t.\(created) < COALESCE(h.created_to, 'infinity'))"]
        if let subject { scopes.append("(h.scope = 'subject' AND h.subject_id = t.\(subject))") }
        return "NOT EXISTS (SELECT 1 FROM retention_legal_holds h WHERE h.released_at IS NULL AND (\(scopes.joined(separator: " OR "))))"
    }
}
