import Foundation
import Hummingbird
import MingusAlerts
import MingusPostgres
import MingusRuntime

/// `/api/alerts`: alert intake, history with every delivery, and silences.
///
/// `POST /api/alerts` checks the alert and publishes an `alerts.ingest` job (the same message
/// other workers publish); the alerts worker stores, deduplicates, routes and delivers it.
struct AlertRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher

    /// Enough for the longest description (16,384 characters) in multi-byte text and the labels.
    static let bodyLimit = 128 * 1024
    static let fields: Set<String> = ["status", "severity", "title", "description", "labels", "source", "dedup_key"]

    func addRoutes(to group: RouterGroup<GatewayContext>) {
        group.post { request, context -> Response in
            let identity = try context.require(.alertsWrite)
            return try await create(request, identity: identity)
        }
        group.get { request, context -> Response in
            _ = try context.require(.alertsRead)
            return try await list(request.uri.queryParameters)
        }
        group.post("silences") { request, context -> Response in
            let identity = try context.require(.alertsWrite)
            return try await createSilence(request, identity: identity)
        }
        group.get("silences") { request, context -> Response in
            _ = try context.require(.alertsRead)
            return try await listSilences(request.uri.queryParameters)
        }
        group.delete("silences/:id") { _, context -> Response in
            _ = try context.require(.alertsWrite)
            return try await expireSilence(try uuidParameter(context, "id"))
        }
        group.get(":id") { _, context -> Response in
            _ = try context.require(.alertsRead)
            return try await show(try uuidParameter(context, "id"))
        }
    }

    // MARK: - Intake

    private func create(_ request: Request, identity: APIKeyIdentity) async throws -> Response {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.fields)
        let statusText = try body.optionalString("status") ?? AlertStatus.firing.rawValue
        guard let status = AlertStatus(rawValue: statusText) else {
            throw invalidField("status", rule: "enum", "status must be firing or resolved")
        }
        let severityText = try body.string("severity")
        guard let severity = AlertSeverity(rawValue: severityText) else {
            throw invalidField("severity", rule: "enum",
                               "severity must be one of \(AlertSeverity.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var labels: [String: String] = [:]
        for (name, value) in try body.optionalObject("labels") ?? [:] {
            guard case .string(let text) = value else {
                throw APIError(.badRequest, code: "invalid_request", message: "label values must be strings",
                               field: "labels.\(name)", rule: "type")
            }
            labels[name] = text
        }
        let job = AlertJob(status: status, severity: severity, title: try body.string("title"),
                           description: try body.optionalString("description") ?? "", labels: labels,
                           source: try body.optionalString("source") ?? identity.actor, dedupKey: try body.optionalString("dedup_key"),
                           receivedAt: Date())
        if let violation = job.violation() { throw invalidField(violation.field, rule: violation.rule, violation.message) }
        let id = UUID().uuidString.lowercased()
        try await publisher.publish(type: AlertJob.type, id: id, body: job, traceID: nil)
        var headers = HTTPFields()
        headers[.location] = "/api/alerts/\(id)"
        return try jsonResponse(.accepted, ["id": id, "status": "accepted", "status_url": "/api/alerts/\(id)"], headers: headers)
    }

    // MARK: - History

    private func list(_ query: Parameters) async throws -> Response {
        let limit = try limitParameter(query)
        let status = query.get("status")
        if let status, AlertStatus(rawValue: status) == nil {
            throw APIError(.badRequest, code: "invalid_parameter", message: "status must be firing or resolved", field: "status", rule: "enum")
        }
        let severity = query.get("severity")
        if let severity, AlertSeverity(rawValue: severity) == nil {
            throw APIError(.badRequest, code: "invalid_parameter", message: "severity is not a known severity", field: "severity", rule: "enum")
        }
        var before: (Date, UUID)?
        if let cursor = query.get("cursor") {
            let parts = String(decoding: Data(base64Encoded: cursor) ?? Data(), as: UTF8.self).split(separator: "|")
            guard parts.count == 2, let micros = Int64(parts[0]), let id = UUID(uuidString: String(parts[1])) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "cursor is not one this API gave", field: "cursor", rule: "format")
            }
            before = (Date(timeIntervalSince1970: Double(micros) / 1e6), id)
        }
        let rows = try await database.query("""
            SELECT \(unescaped: Self.alertColumns) FROM alerts
            WHERE (\(status)::text IS NULL OR status = \(status)::text) AND (\(severity)::text IS NULL OR severity = \(severity)::text)
              AND (\(before?.0)::timestamptz IS NULL OR (created_at, id) < (\(before?.0)::timestamptz, \(before?.1)::uuid))
            ORDER BY created_at DESC, id DESC LIMIT \(limit + 1)
            """)
        var alerts: [[String: Any]] = []
        for row in rows.prefix(limit) { alerts.append(try Self.alert(row)) }
        let ids = try rows.prefix(limit).map { try $0.decode(UUID.self, at: 0) }
        let deliveries = try await self.deliveries(of: ids)
        for index in alerts.indices {
            alerts[index]["deliveries"] = deliveries[ids[index]] ?? []
        }
        var answer: [String: Any] = ["alerts": alerts]
        if rows.count > limit, let last = rows.prefix(limit).last {
            let created = try last.decode(Date.self, column: "created_at")
            let micros = Int64((created.timeIntervalSince1970 * 1e6).rounded())
            answer["next_cursor"] = Data("\(micros)|\(try last.decode(UUID.self, at: 0).uuidString.lowercased())".utf8).base64EncodedString()
        }
        return try jsonResponse(.ok, answer)
    }

    /// One alert by its id or by the id `POST /api/alerts` answered for a repeat of it.
    private func show(_ id: UUID) async throws -> Response {
        let rows = try await database.query("""
            SELECT \(unescaped: Self.alertColumns) FROM alerts
            WHERE id = COALESCE((SELECT alert_id FROM alert_events WHERE id = \(id)::uuid), \(id)::uuid)
            """)
        guard let row = rows.first else {
            let events = try await database.query("SELECT outcome FROM alert_events WHERE id = \(id)")
            if let outcome = try events.first?.decode(String.self, at: 0) {
                return try jsonResponse(.ok, ["id": id.uuidString.lowercased(), "outcome": outcome, "deliveries": [Any]()])
            }
            throw APIError(.notFound, code: "not_found",
                           message: "no alert with this id (an alert accepted a moment ago may still be queued)")
        }
        var alert = try Self.alert(row)
        let alertID = try row.decode(UUID.self, at: 0)
        alert["deliveries"] = try await deliveries(of: [alertID])[alertID] ?? []
        return try jsonResponse(.ok, alert)
    }

    static let alertColumns = """
        id, status, severity, title, description, labels::text, source, dedup_key, starts_at, ends_at, received_count, \
        last_received_at, suppressed_by, created_at
        """

    static func alert(_ row: PostgresRow) throws -> [String: Any] {
        var labels = (try JSONSerialization.jsonObject(with: Data(try row.decode(String.self, at: 5).utf8)) as? [String: Any]) ?? [:]
        for reserved in AlertJob.reservedLabels { labels[reserved] = nil }
        return [
            "id": try row.decode(UUID.self, at: 0).uuidString.lowercased(),
            "status": try row.decode(String.self, at: 1),
            "severity": try row.decode(String.self, at: 2),
            "title": try row.decode(String.self, at: 3),
            "description": try row.decode(String.self, at: 4),
            "labels": labels,
            "source": try row.decode(String.self, at: 6),
            "dedup_key": try row.decode(String?.self, at: 7) ?? NSNull(),
            "starts_at": timestamp(try row.decode(Date.self, at: 8)),
            "ends_at": try row.decode(Date?.self, at: 9).map(timestamp) ?? NSNull(),
            "received_count": try row.decode(Int.self, at: 10),
            "last_received_at": timestamp(try row.decode(Date.self, at: 11)),
            "suppressed_by": try row.decode(String?.self, at: 12) ?? NSNull(),
        ]
    }

    /// Each alert's deliveries, oldest first.
    private func deliveries(of alerts: [UUID]) async throws -> [UUID: [[String: Any]]] {
        guard !alerts.isEmpty else { return [:] }
        let rows = try await database.query("""
            SELECT a.id, d.id, d.kind, d.receiver, d.target, d.channel, d.status, d.attempts, d.last_error, d.provider_id,
                   d.fallback_of, d.created_at, d.finished_at,
                   (EXTRACT(EPOCH FROM d.finished_at - d.created_at) * 1000)::double precision
            FROM unnest(\(alerts)::uuid[]) AS a (id) JOIN alert_deliveries d ON d.alert_ids @> ARRAY[a.id]
            ORDER BY d.created_at, d.id
            """)
        var found: [UUID: [[String: Any]]] = [:]
        for row in rows {
            found[try row.decode(UUID.self, at: 0), default: []].append([
                "id": try row.decode(UUID.self, at: 1).uuidString.lowercased(),
                "kind": try row.decode(String.self, at: 2),
                "receiver": try row.decode(String.self, at: 3),
                "target": try row.decode(String.self, at: 4),
                "channel": try row.decode(String.self, at: 5),
                "status": try row.decode(String.self, at: 6),
                "attempts": try row.decode(Int.self, at: 7),
                "last_error": try row.decode(String?.self, at: 8) ?? NSNull(),
                "provider_id": try row.decode(String?.self, at: 9) ?? NSNull(),
                "fallback_of": try row.decode(UUID?.self, at: 10)?.uuidString.lowercased() ?? NSNull(),
                "created_at": timestamp(try row.decode(Date.self, at: 11)),
                "finished_at": try row.decode(Date?.self, at: 12).map(timestamp) ?? NSNull(),
                "latency_ms": try row.decode(Double?.self, at: 13) ?? NSNull(),
            ])
        }
        return found
    }

    // MARK: - Silences

    /// Alertmanager's matcher object: `name`, `value`, `isRegex` and `isEqual` (true when absent).
    private static func alertmanagerMatcher(_ fields: [String: JSONValue], field: String) throws -> LabelMatcher {
        if let unknown = fields.keys.sorted().first(where: { !["name", "value", "isRegex", "isEqual"].contains($0) }) {
            throw invalidField("\(field).\(unknown)", rule: "unknown", "\(unknown) is not a matcher field (name, value, isRegex, isEqual)")
        }
        guard case .string(let name)? = fields["name"] else {
            throw invalidField("\(field).name", rule: "required", "name must be a label name")
        }
        guard case .string(let value)? = fields["value"] else {
            throw invalidField("\(field).value", rule: "required", "value must be a string")
        }
        func flag(_ key: String, default fallback: Bool) throws -> Bool {
            switch fields[key] {
            case nil: return fallback
            case .bool(let flag)?: return flag
            default: throw invalidField("\(field).\(key)", rule: "type", "\(key) must be true or false")
            }
        }
        let op: LabelMatcher.Operator = switch (try flag("isRegex", default: false), try flag("isEqual", default: true)) {
        case (false, true): .equal
        case (false, false): .notEqual
        case (true, true): .matchesRegex
        case (true, false): .notMatchesRegex
        }
        return try LabelMatcher(name: name, op: op, value: value)
    }

    private func createSilence(_ request: Request, identity: APIKeyIdentity) async throws -> Response {
        let body = try await JSONRequestBody.read(request, limit: 16 * 1024, allowed: ["matchers", "starts_at", "ends_at", "comment"])
        guard case .array(let items)? = body.value("matchers"), !items.isEmpty, items.count <= 32 else {
            throw invalidField("matchers", rule: "required", "matchers must be a list of 1-32 matchers such as severity=\"critical\"")
        }
        var matchers: [String] = []
        for (index, item) in items.enumerated() {
            do {
                switch item {
                case .string(let text):
                    matchers.append(try LabelMatcher(parsing: text).description)
                case .object(let fields):
                    matchers.append(try Self.alertmanagerMatcher(fields, field: "matchers[\(index)]").description)
                default:
                    throw invalidField("matchers[\(index)]", rule: "type",
                                       "each matcher is a string such as team=\"db\" or an object {name, value, isRegex, isEqual}")
                }
            } catch let error as LabelMatcherError {
                throw invalidField("matchers[\(index)]", rule: "format", error.description)
            }
        }
        // Stored as text and jsonb, which cannot hold U+0000.
        if let index = matchers.firstIndex(where: { $0.contains("\0") }) {
            throw invalidField("matchers[\(index)]", rule: "format", "a matcher cannot contain U+0000")
        }
        let comment = try body.string("comment")
        guard (1...1000).contains(comment.unicodeScalars.count) else { throw invalidField("comment", rule: "length", "comment must be 1-1000 characters") }
        guard !comment.contains("\0") else { throw invalidField("comment", rule: "characters", "comment cannot contain U+0000") }
        let startsAt = try date(body, "starts_at") ?? Date()
        guard let endsAt = try date(body, "ends_at") else {
            throw APIError(.badRequest, code: "invalid_request", message: "ends_at is required", field: "ends_at", rule: "required")
        }
        guard endsAt > startsAt, endsAt > Date() else {
            throw invalidField("ends_at", rule: "range", "ends_at must be after starts_at and in the future")
        }
        let matchersJSON = String(decoding: try JSONSerialization.data(withJSONObject: matchers), as: UTF8.self)
        let rows = try await database.query("""
            INSERT INTO alert_silences (matchers, starts_at, ends_at, comment, created_by)
            VALUES (\(matchersJSON)::jsonb, \(startsAt), \(endsAt), \(comment), \(identity.actor)) RETURNING id
            """)
        let id = try rows[0].decode(UUID.self, at: 0).uuidString.lowercased()
        return try jsonResponse(.created, ["id": id, "matchers": matchers, "starts_at": timestamp(startsAt),
                                           "ends_at": timestamp(endsAt), "comment": comment, "created_by": identity.actor])
    }

    private func listSilences(_ query: Parameters) async throws -> Response {
        let all = query.get("state") == "all"
        let rows = try await database.query("""
            SELECT id, matchers::text, starts_at, ends_at, comment, created_by, expired_at,
                   CASE WHEN ends_at <= now() THEN 'expired' WHEN starts_at > now() THEN 'pending' ELSE 'active' END
            FROM alert_silences WHERE \(all)::boolean OR ends_at > now() ORDER BY starts_at DESC, id LIMIT 500
            """)
        let silences = try rows.map { row -> [String: Any] in
            [
                "id": try row.decode(UUID.self, at: 0).uuidString.lowercased(),
                "matchers": (try JSONSerialization.jsonObject(with: Data(try row.decode(String.self, at: 1).utf8))) as? [String] ?? [],
                "starts_at": timestamp(try row.decode(Date.self, at: 2)),
                "ends_at": timestamp(try row.decode(Date.self, at: 3)),
                "comment": try row.decode(String.self, at: 4),
                "created_by": try row.decode(String.self, at: 5),
                "state": try row.decode(String.self, at: 7),
            ]
        }
        return try jsonResponse(.ok, ["silences": silences])
    }

    /// Ends a silence now (it stays listed with `state=all`).
    private func expireSilence(_ id: UUID) async throws -> Response {
        let rows = try await database.query("""
            UPDATE alert_silences SET ends_at = GREATEST(starts_at + interval '1 microsecond', now()), expired_at = now()
            WHERE id = \(id) AND ends_at > now() RETURNING id
            """)
        guard !rows.isEmpty else {
            throw APIError(.notFound, code: "not_found", message: "no active or pending silence with this id")
        }
        return try jsonResponse(.ok, ["id": id.uuidString.lowercased(), "state": "expired"])
    }

    // MARK: - Parameters

    private func date(_ body: JSONRequestBody, _ name: String) throws -> Date? {
        guard let text = try body.optionalString(name) else { return nil }
        guard let date = rfc3339Date(text) else {
            throw invalidField(name, rule: "format", "\(name) must be an RFC 3339 time such as 2026-11-23T10:00:00Z")
        }
        return date
    }

    private func limitParameter(_ query: Parameters) throws -> Int {
        guard let text = query.get("limit") else { return 50 }
        guard let number = Int(text), (1...200).contains(number) else {
            throw APIError(.badRequest, code: "invalid_parameter", message: "limit must be 1-200", field: "limit", rule: "range")
        }
        return number
    }
}

private func uuidParameter(_ context: GatewayContext, _ name: String) throws -> UUID {
    guard let text = context.parameters.get(name), let id = UUID(uuidString: text) else {
        throw APIError(.badRequest, code: "invalid_parameter", message: "\(name) must be a UUID", field: name, rule: "format")
    }
    return id
}
