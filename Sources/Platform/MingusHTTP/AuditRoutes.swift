import Foundation
public import Hummingbird
public import MingusPostgres
import MingusSecurity

/// `GET /api/financial/audit` (role `audit:read`): search the audit trail by actor, action,
/// resource and time range, newest first, with keyset paging (`cursor` from the previous page's
/// `next_cursor`).
public struct AuditRoutes: Sendable {
    let database: PostgresClient

    public init(database: PostgresClient) {
        self.database = database
    }

    struct Event: Encodable, Sendable {
        var stream: String
        var seq: Int64
        var occurredAt: Date
        var actor: String
        var action: String
        var resource: String
        var outcome: String
        var origin: String
        var details: [String: String]
    }

    struct Page: Encodable, Sendable {
        var events: [Event]
        @Nullable var nextCursor: String?
    }

    /// The routes, to mount at `/api/financial/audit`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        routes.group(requiring: .auditRead).get { request, _ in
            APIResponse(try await search(request.uri.queryParameters))
        }
        return routes
    }

    private func search(_ parameters: Parameters) async throws -> Page {
        /// The value as sent, empty included.
        func given(_ name: String) throws -> String? {
            guard let value = parameters.get(name) else { return nil }
            guard value.unicodeScalars.count <= 200 else {
                throw APIError.invalidParameter(name, rule: "max_length", "\(name) is longer than 200 characters")
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
            guard let date = APITime.parse(value) else {
                throw APIError.invalidParameter(name, rule: "format", "\(name) must be an RFC 3339 timestamp")
            }
            return date
        }
        var query = AuditQuery(actor: try text("actor"), action: try text("action"), resource: try text("resource"),
                               from: try time("from"), to: try time("to"))
        if let value = try given("limit") {
            guard let number = Int(value), (1...500).contains(number) else {
                throw APIError.invalidParameter("limit", rule: "range", "limit must be 1-500")
            }
            query.limit = number
        }
        if let cursor = try given("cursor") {
            let fields = try PageCursor.decode(cursor, fields: 3)
            guard let micros = Int64(fields[0]), let seq = Int64(fields[2]) else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            query.after = (micros, fields[1], seq)
        }
        // PostgreSQL text cannot hold U+0000, so no event has it: such a filter matches nothing.
        if [query.actor, query.action, query.resource].contains(where: { $0?.contains("\0") == true }) {
            return Page(events: [], nextCursor: nil)
        }
        let pageSize = query.limit
        query.limit += 1
        let found = try await AuditTrail.search(query, on: database)
        let page = found.prefix(pageSize)
        let next = found.count > pageSize ? page.last.map { PageCursor.encode(["\($0.occurredAtMicros)", $0.stream, "\($0.seq)"]) } : nil
        return Page(events: page.map { stored in
            Event(stream: stored.stream, seq: stored.seq, occurredAt: stored.occurredAt, actor: stored.event.actor,
                  action: stored.event.action, resource: stored.event.resource, outcome: stored.event.outcome.rawValue,
                  origin: stored.event.origin, details: stored.event.details)
        }, nextCursor: next)
    }
}
