import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
public import MingusSecurity

extension Role {
    /// Sends alerts and creates or expires silences.
    public static let alertsWrite = Role("alerts:write")
    /// Reads alerts, their deliveries and silences.
    public static let alertsRead = Role("alerts:read")
}

/// `/api/alerts`: alert intake, history with every delivery, and silences.
///
/// `POST /api/alerts` checks the alert and publishes an `alerts.ingest` job (the same message
/// other workers publish); the alerts worker stores, deduplicates, routes and delivers it.
public struct AlertRoutes: Sendable {
    let store: AlertStore
    let publisher: JobPublisher

    /// Enough for the longest description (16,384 characters) in multi-byte text and the labels.
    static let bodyLimit = 128 * 1024
    static let fields: Set<String> = ["status", "severity", "title", "description", "labels", "source", "dedup_key"]

    public init(_ gateway: GatewayServices) {
        store = AlertStore(database: gateway.database)
        publisher = gateway.publisher
    }

    /// The routes, to mount at `/api/alerts`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .alertsWrite)
        write.post { request, context in try await create(request, caller: try context.caller()) }
        write.post("silences") { request, context in try await createSilence(request, caller: try context.caller()) }
        write.delete("silences/:id") { _, context in try await expireSilence(try context.uuidParameter("id")) }
        let read = routes.group(requiring: .alertsRead)
        read.get { request, _ in try await list(request.uri.queryParameters) }
        read.get("silences") { request, _ in
            APIResponse(SilenceList(silences: try await store.silences(includingExpired: request.uri.queryParameters.get("state") == "all")))
        }
        read.get(":id") { _, context in try await show(try context.uuidParameter("id")) }
        return routes
    }

    // MARK: - Answers

    struct Accepted: Encodable, Sendable {
        var id: String
        var status = "accepted"
        var statusUrl: String
    }

    struct AlertList: Encodable, Sendable {
        var alerts: [StoredAlert]
        var nextCursor: String?
    }

    /// An id whose event joined no alert.
    struct EventOutcome: Encodable, Sendable {
        var id: String
        var outcome: String
        var deliveries: [StoredDelivery] = []
    }

    struct SilenceList: Encodable, Sendable {
        var silences: [StoredSilence]
    }

    struct ExpiredSilence: Encodable, Sendable {
        var id: String
        var state = "expired"
    }

    // MARK: - Intake

    private func create(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<Accepted> {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.fields)
        let statusText = try body.optionalString("status") ?? AlertStatus.firing.rawValue
        guard let status = AlertStatus(rawValue: statusText) else {
            throw APIError.invalidField("status", rule: "enum", "status must be firing or resolved")
        }
        let severityText = try body.string("severity")
        guard let severity = AlertSeverity(rawValue: severityText) else {
            throw APIError.invalidField("severity", rule: "enum",
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
                           source: try body.optionalString("source") ?? caller.actor, dedupKey: try body.optionalString("dedup_key"),
                           receivedAt: Date())
        if let violation = job.violation() { throw APIError.invalidField(violation.field, rule: violation.rule, violation.message) }
        let id = UUID().uuidString.lowercased()
        try await publisher.publish(type: AlertJob.type, id: id, body: job, traceID: nil)
        return APIResponse(.accepted, Accepted(id: id, statusUrl: "/api/alerts/\(id)"), headers: [.location: "/api/alerts/\(id)"])
    }

    // MARK: - History

    private func list(_ query: Parameters) async throws -> APIResponse<AlertList> {
        let limit = try limitParameter(query)
        let status = query.get("status")
        if let status, AlertStatus(rawValue: status) == nil {
            throw APIError.invalidParameter("status", rule: "enum", "status must be firing or resolved")
        }
        let severity = query.get("severity")
        if let severity, AlertSeverity(rawValue: severity) == nil {
            throw APIError.invalidParameter("severity", rule: "enum", "severity is not a known severity")
        }
        var before: (Date, UUID)?
        if let cursor = query.get("cursor") {
            let fields = try PageCursor.decode(cursor, fields: 2)
            guard let micros = Int64(fields[0]), let id = UUID(uuidString: fields[1]) else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            before = (Date(timeIntervalSince1970: Double(micros) / 1e6), id)
        }
        let alerts = try await store.list(status: status, severity: severity, before: before, limit: limit + 1)
        let page = Array(alerts.prefix(limit))
        let next = alerts.count > limit ? page.last.map { PageCursor.encode(["\(PageCursor.micros($0.createdAt))", $0.id]) } : nil
        return APIResponse(AlertList(alerts: page, nextCursor: next))
    }

    /// One alert by its id or by the id `POST /api/alerts` answered for a repeat of it.
    private func show(_ id: UUID) async throws -> Response {
        switch try await store.find(id) {
        case .alert(let alert)?:
            return try APIResponse(alert).encodedResponse()
        case .event(let outcome)?:
            return try APIResponse(EventOutcome(id: id.uuidString.lowercased(), outcome: outcome)).encodedResponse()
        case nil:
            throw APIError.notFound("no alert with this id (an alert accepted a moment ago may still be queued)")
        }
    }

    // MARK: - Silences

    /// Alertmanager's matcher object: `name`, `value`, `isRegex` and `isEqual` (true when absent).
    private static func alertmanagerMatcher(_ fields: [String: JSONValue], field: String) throws -> LabelMatcher {
        if let unknown = fields.keys.sorted().first(where: { !["name", "value", "isRegex", "isEqual"].contains($0) }) {
            throw APIError.invalidField("\(field).\(unknown)", rule: "unknown", "\(unknown) is not a matcher field (name, value, isRegex, isEqual)")
        }
        guard case .string(let name)? = fields["name"] else {
            throw APIError.invalidField("\(field).name", rule: "required", "name must be a label name")
        }
        guard case .string(let value)? = fields["value"] else {
            throw APIError.invalidField("\(field).value", rule: "required", "value must be a string")
        }
        func flag(_ key: String, default fallback: Bool) throws -> Bool {
            switch fields[key] {
            case nil: return fallback
            case .bool(let flag)?: return flag
            default: throw APIError.invalidField("\(field).\(key)", rule: "type", "\(key) must be true or false")
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

    private func createSilence(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<StoredSilence> {
        let body = try await JSONRequestBody.read(request, limit: 16 * 1024, allowed: ["matchers", "starts_at", "ends_at", "comment"])
        guard case .array(let items)? = body.value("matchers"), !items.isEmpty, items.count <= 32 else {
            throw APIError.invalidField("matchers", rule: "required", "matchers must be a list of 1-32 matchers such as severity=\"critical\"")
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
                    throw APIError.invalidField("matchers[\(index)]", rule: "type",
                                                "each matcher is a string such as team=\"db\" or an object {name, value, isRegex, isEqual}")
                }
            } catch let error as LabelMatcherError {
                throw APIError.invalidField("matchers[\(index)]", rule: "format", error.description)
            }
        }
        // Stored as text and jsonb, which cannot hold U+0000.
        if let index = matchers.firstIndex(where: { $0.contains("\0") }) {
            throw APIError.invalidField("matchers[\(index)]", rule: "format", "a matcher cannot contain U+0000")
        }
        let comment = try body.string("comment")
        guard (1...1000).contains(comment.unicodeScalars.count) else {
            throw APIError.invalidField("comment", rule: "length", "comment must be 1-1000 characters")
        }
        guard !comment.contains("\0") else { throw APIError.invalidField("comment", rule: "characters", "comment cannot contain U+0000") }
        let startsAt = try date(body, "starts_at") ?? Date()
        guard let endsAt = try date(body, "ends_at") else {
            throw APIError(.badRequest, code: "invalid_request", message: "ends_at is required", field: "ends_at", rule: "required")
        }
        guard endsAt > startsAt, endsAt > Date() else {
            throw APIError.invalidField("ends_at", rule: "range", "ends_at must be after starts_at and in the future")
        }
        let id = try await store.createSilence(matchers: matchers, startsAt: startsAt, endsAt: endsAt, comment: comment,
                                               createdBy: caller.actor)
        return APIResponse(.created, StoredSilence(id: id.uuidString.lowercased(), matchers: matchers, startsAt: startsAt, endsAt: endsAt,
                                                   comment: comment, createdBy: caller.actor,
                                                   state: startsAt > Date() ? "pending" : "active"))
    }

    /// Ends a silence now (it stays listed with `state=all`).
    private func expireSilence(_ id: UUID) async throws -> APIResponse<ExpiredSilence> {
        guard try await store.expireSilence(id) else {
            throw APIError.notFound("no active or pending silence with this id")
        }
        return APIResponse(ExpiredSilence(id: id.uuidString.lowercased()))
    }

    // MARK: - Parameters

    private func date(_ body: JSONRequestBody, _ name: String) throws -> Date? {
        guard let text = try body.optionalString(name) else { return nil }
        guard let date = APITime.parse(text) else {
            throw APIError.invalidField(name, rule: "format", "\(name) must be an RFC 3339 time such as 2026-11-23T10:00:00Z")
        }
        return date
    }

    private func limitParameter(_ query: Parameters) throws -> Int {
        try PageCursor.limit(query, default: 50, max: 200)
    }
}
