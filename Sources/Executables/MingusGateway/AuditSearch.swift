import Foundation
import Hummingbird
import MingusPostgres

/// `GET /api/financial/audit`: search the audit trail by actor, action, resource and time range,
/// newest first, with keyset paging (`cursor` from the previous page's `next_cursor`).
struct AuditSearch: Sendable {
    let database: PostgresClient

    struct Event: Codable, Sendable {
        var stream: String
        var seq: Int64
        var occurredAt: String
        var actor: String
        var action: String
        var resource: String
        var outcome: String
        var origin: String
        var details: [String: String]

        enum CodingKeys: String, CodingKey {
            case stream, seq, occurredAt = "occurred_at", actor, action, resource, outcome, origin, details
        }
    }

    struct Page: ResponseEncodable, Sendable {
        var events: [Event]
        var nextCursor: String?

        enum CodingKeys: String, CodingKey {
            case events, nextCursor = "next_cursor"
        }

        /// `next_cursor` is null on the last page, not absent.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(events, forKey: .events)
            try container.encode(nextCursor, forKey: .nextCursor)
        }
    }

    func addRoutes(to group: RouterGroup<GatewayContext>) {
        group.get { request, context -> Page in
            _ = try context.require(.auditRead)
            return try await search(request.uri.queryParameters)
        }
    }

    private func search(_ query: Parameters) async throws -> Page {
        /// The value as sent, empty included.
        func given(_ name: String) throws -> String? {
            guard let value = query.get(name) else { return nil }
            guard value.unicodeScalars.count <= 200 else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "\(name) is longer than 200 characters", field: name, rule: "max_length")
            }
            return value
        }
        /// A filter: empty is no filter.
        func text(_ name: String) throws -> String? {
            guard let value = try given(name), !value.isEmpty else { return nil }
            return value
        }
        func time(_ name: String) throws -> Date? {
            guard let value = try given(name) else { return nil }
            guard let date = rfc3339Date(value) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "\(name) must be an RFC 3339 timestamp", field: name, rule: "format")
            }
            return date
        }
        let actor = try text("actor")
        let action = try text("action")
        let resource = try text("resource")
        let from = try time("from")
        let to = try time("to")
        var limit = 100
        if let value = try given("limit") {
            guard let number = Int(value), (1...500).contains(number) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "limit must be 1-500", field: "limit", rule: "range")
            }
            limit = number
        }
        var after: (at: Date, stream: String, seq: Int64)?
        if let cursor = try given("cursor") {
            guard let decoded = Data(base64Encoded: cursor).map({ String(decoding: $0, as: UTF8.self) }),
                  case let parts = decoded.split(separator: "|"), parts.count == 3,
                  let micros = Int64(parts[0]), let seq = Int64(parts[2]) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "cursor is not one this API gave", field: "cursor", rule: "format")
            }
            after = (Date(timeIntervalSince1970: Double(micros) / 1_000_000), String(parts[1]), seq)
        }

        // PostgreSQL text cannot hold U+0000, so no event has it: such a filter matches nothing.
        if [actor, action, resource].contains(where: { $0?.contains("\0") == true }) { return Page(events: [], nextCursor: nil) }

        let rows = try await database.query("""
            SELECT stream, seq, occurred_at, actor, action, resource, outcome, origin, details::text,
                   (extract(epoch FROM occurred_at) * 1000000)::bigint
            FROM audit_events
            WHERE (\(actor)::text IS NULL OR actor = \(actor))
              AND (\(action)::text IS NULL OR action = \(action))
              AND (\(resource)::text IS NULL OR resource = \(resource))
              AND (\(from)::timestamptz IS NULL OR occurred_at >= \(from))
              AND (\(to)::timestamptz IS NULL OR occurred_at < \(to))
              AND (\(after?.at)::timestamptz IS NULL OR (occurred_at, stream, seq) < (\(after?.at), \(after?.stream), \(after?.seq)))
            ORDER BY occurred_at DESC, stream DESC, seq DESC
            LIMIT \(limit + 1)
            """)
        var events: [Event] = []
        var last: (micros: Int64, stream: String, seq: Int64)?
        for row in rows.prefix(limit) {
            let details = (try? JSONSerialization.jsonObject(with: Data(try row.decode(String.self, at: 8).utf8)) as? [String: Any])?
                .compactMapValues { $0 as? String } ?? [:]
            let event = Event(
                stream: try row.decode(String.self, at: 0), seq: try row.decode(Int64.self, at: 1),
                occurredAt: timestamp(try row.decode(Date.self, at: 2)),
                actor: try row.decode(String.self, at: 3), action: try row.decode(String.self, at: 4),
                resource: try row.decode(String.self, at: 5), outcome: try row.decode(String.self, at: 6),
                origin: try row.decode(String.self, at: 7), details: details)
            events.append(event)
            last = (try row.decode(Int64.self, at: 9), event.stream, event.seq)
        }
        let next = rows.count > limit ? last.map { Data("\($0.micros)|\($0.stream)|\($0.seq)".utf8).base64EncodedString() } : nil
        return Page(events: events, nextCursor: next)
    }
}
