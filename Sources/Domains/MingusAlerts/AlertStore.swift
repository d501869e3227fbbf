public import Foundation
public import MingusHTTP
public import MingusPostgres

/// An alert as `alerts` holds it, with its deliveries once loaded.
public struct StoredAlert: Sendable, Encodable {
    /// Lower-case UUID, as every id the API gives.
    public var id: String
    public var status: String
    public var severity: String
    public var title: String
    public var description: String
    /// The alert's own labels (without `alertname`, `severity` and `source`).
    public var labels: [String: String]
    public var source: String
    @Nullable public var dedupKey: String?
    public var startsAt: Date
    @Nullable public var endsAt: Date?
    public var receivedCount: Int
    public var lastReceivedAt: Date
    @Nullable public var suppressedBy: String?
    public var deliveries: [StoredDelivery] = []
    /// For keyset paging only; not part of the answer.
    var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, status, severity, title, description, labels, source, dedupKey, startsAt, endsAt, receivedCount,
             lastReceivedAt, suppressedBy, deliveries
    }
}

/// One delivery of a notification to one channel target.
public struct StoredDelivery: Sendable, Encodable {
    public var id: String
    public var kind: String
    public var receiver: String
    public var target: String
    public var channel: String
    public var status: String
    public var attempts: Int
    @Nullable public var lastError: String?
    @Nullable public var providerId: String?
    @Nullable public var fallbackOf: String?
    public var createdAt: Date
    @Nullable public var finishedAt: Date?
    @Nullable public var latencyMs: Double?
}

/// A silence: alerts matching every matcher are muted between its start and end.
public struct StoredSilence: Sendable, Encodable {
    public var id: String
    public var matchers: [String]
    public var startsAt: Date
    public var endsAt: Date
    public var comment: String
    public var createdBy: String
    /// `active`, `pending` or `expired`.
    public var state: String
}

/// The statements of the alerts API on `alerts`, `alert_events`, `alert_deliveries` and
/// `alert_silences`.
public struct AlertStore: Sendable {
    let database: PostgresClient

    public init(database: PostgresClient) {
        self.database = database
    }

    static let alertColumns = """
        id, status, severity, title, description, labels::text, source, dedup_key, starts_at, ends_at, received_count, \
        last_received_at, suppressed_by, created_at
        """

    /// Alerts newest first, filtered by status and severity, after `before` (created at, id).
    public func list(status: String?, severity: String?, before: (Date, UUID)?, limit: Int) async throws -> [StoredAlert] {
        let rows = try await database.query("""
            SELECT \(unescaped: Self.alertColumns) FROM alerts
            WHERE (\(status)::text IS NULL OR status = \(status)::text) AND (\(severity)::text IS NULL OR severity = \(severity)::text)
              AND (\(before?.0)::timestamptz IS NULL OR (created_at, id) < (\(before?.0)::timestamptz, \(before?.1)::uuid))
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """)
        return try await withDeliveries(try rows.map(Self.alert))
    }

    /// What an id names: an alert (by its own id or the id a repeat of it was accepted with),
    /// or the outcome of an event that joined none (a `resolved` for an alert not firing).
    public enum Lookup: Sendable {
        case alert(StoredAlert)
        case event(outcome: String)
    }

    /// The alert or event with `id`, nil when there is none (yet).
    public func find(_ id: UUID) async throws -> Lookup? {
        let rows = try await database.query("""
            SELECT \(unescaped: Self.alertColumns) FROM alerts
            WHERE id = COALESCE((SELECT alert_id FROM alert_events WHERE id = \(id)::uuid), \(id)::uuid)
            """)
        if let row = rows.first { return .alert(try await withDeliveries([try Self.alert(row)])[0]) }
        let events = try await database.query("SELECT outcome FROM alert_events WHERE id = \(id)")
        return try events.first.map { .event(outcome: try $0.decode(String.self, at: 0)) }
    }

    static func alert(_ row: PostgresRow) throws -> StoredAlert {
        var labels = (try? JSONDecoder().decode([String: String].self, from: Data(try row.decode(String.self, at: 5).utf8))) ?? [:]
        for reserved in AlertJob.reservedLabels { labels[reserved] = nil }
        return StoredAlert(
            id: try row.decode(UUID.self, at: 0).uuidString.lowercased(), status: try row.decode(String.self, at: 1),
            severity: try row.decode(String.self, at: 2), title: try row.decode(String.self, at: 3),
            description: try row.decode(String.self, at: 4), labels: labels, source: try row.decode(String.self, at: 6),
            dedupKey: try row.decode(String?.self, at: 7), startsAt: try row.decode(Date.self, at: 8),
            endsAt: try row.decode(Date?.self, at: 9), receivedCount: try row.decode(Int.self, at: 10),
            lastReceivedAt: try row.decode(Date.self, at: 11), suppressedBy: try row.decode(String?.self, at: 12),
            createdAt: try row.decode(Date.self, at: 13))
    }

    /// `alerts` with each one's deliveries, oldest first.
    private func withDeliveries(_ alerts: [StoredAlert]) async throws -> [StoredAlert] {
        guard !alerts.isEmpty else { return alerts }
        let rows = try await database.query("""
            SELECT a.id, d.id, d.kind, d.receiver, d.target, d.channel, d.status, d.attempts, d.last_error, d.provider_id,
                   d.fallback_of, d.created_at, d.finished_at,
                   (EXTRACT(EPOCH FROM d.finished_at - d.created_at) * 1000)::double precision
            FROM unnest(\(alerts.map(\.id))::uuid[]) AS a (id) JOIN alert_deliveries d ON d.alert_ids @> ARRAY[a.id]
            ORDER BY d.created_at, d.id
            """)
        var found: [String: [StoredDelivery]] = [:]
        for row in rows {
            found[try row.decode(UUID.self, at: 0).uuidString.lowercased(), default: []].append(StoredDelivery(
                id: try row.decode(UUID.self, at: 1).uuidString.lowercased(), kind: try row.decode(String.self, at: 2),
                receiver: try row.decode(String.self, at: 3), target: try row.decode(String.self, at: 4),
                channel: try row.decode(String.self, at: 5), status: try row.decode(String.self, at: 6),
                attempts: try row.decode(Int.self, at: 7), lastError: try row.decode(String?.self, at: 8),
                providerId: try row.decode(String?.self, at: 9), fallbackOf: try row.decode(UUID?.self, at: 10)?.uuidString.lowercased(),
                createdAt: try row.decode(Date.self, at: 11), finishedAt: try row.decode(Date?.self, at: 12),
                latencyMs: try row.decode(Double?.self, at: 13)))
        }
        return alerts.map { alert in
            var alert = alert
            alert.deliveries = found[alert.id] ?? []
            return alert
        }
    }

    /// Stores a silence; returns its id.
    public func createSilence(matchers: [String], startsAt: Date, endsAt: Date, comment: String, createdBy: String) async throws -> UUID {
        let matchersJSON = String(decoding: try JSONEncoder().encode(matchers), as: UTF8.self)
        return try await database.query("""
            INSERT INTO alert_silences (matchers, starts_at, ends_at, comment, created_by)
            VALUES (\(matchersJSON)::jsonb, \(startsAt), \(endsAt), \(comment), \(createdBy)) RETURNING id
            """)[0].decode(UUID.self, at: 0)
    }

    /// Active and pending silences, or every one with `includingExpired`; at most 500.
    public func silences(includingExpired: Bool) async throws -> [StoredSilence] {
        try await database.query("""
            SELECT id, matchers::text, starts_at, ends_at, comment, created_by,
                   CASE WHEN ends_at <= now() THEN 'expired' WHEN starts_at > now() THEN 'pending' ELSE 'active' END
            FROM alert_silences WHERE \(includingExpired)::boolean OR ends_at > now() ORDER BY starts_at DESC, id LIMIT 500
            """).map { row in
            StoredSilence(
                id: try row.decode(UUID.self, at: 0).uuidString.lowercased(),
                matchers: (try? JSONDecoder().decode([String].self, from: Data(try row.decode(String.self, at: 1).utf8))) ?? [],
                startsAt: try row.decode(Date.self, at: 2), endsAt: try row.decode(Date.self, at: 3),
                comment: try row.decode(String.self, at: 4), createdBy: try row.decode(String.self, at: 5),
                state: try row.decode(String.self, at: 6))
        }
    }

    /// Ends an active or pending silence now; false when there is none with `id`.
    public func expireSilence(_ id: UUID) async throws -> Bool {
        try await !database.query("""
            UPDATE alert_silences SET ends_at = GREATEST(starts_at + interval '1 microsecond', now()), expired_at = now()
            WHERE id = \(id) AND ends_at > now() RETURNING id
            """).isEmpty
    }
}
