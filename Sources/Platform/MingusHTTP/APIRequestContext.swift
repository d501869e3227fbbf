public import Foundation
public import HTTPTypes
public import Hummingbird
public import MingusSecurity
import NIOCore

/// The request context of every API route: the caller's identity once authenticated, where the
/// request came from, and the API's one JSON encoder for answers.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by ``APIAccessMiddleware`` for `/api/` routes.
    public var identity: APIKeyIdentity?
    /// The peer's IP address, for the audit trail.
    public let origin: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        identity = nil
        origin = source.channel.remoteAddress?.ipAddress ?? ""
    }

    /// Every `Codable` answer goes through ``JSONEncoder/api``.
    public var responseEncoder: JSONEncoder { JSONEncoder.api }

    /// The authenticated caller. Routes behind ``RequireRole`` always have one.
    public func caller() throws -> APIKeyIdentity {
        guard let identity else {
            throw APIError(.unauthorized, code: "unauthorized", message: "a valid API key is required")
        }
        return identity
    }

    /// A path parameter that must be a UUID: 400 naming it otherwise.
    public func uuidParameter(_ name: String) throws -> UUID {
        guard let text = parameters.get(name), let id = UUID(uuidString: text) else {
            throw APIError(.badRequest, code: "invalid_parameter", message: "\(name) must be a UUID", field: name, rule: "format")
        }
        return id
    }
}

/// An error answered as JSON: `{"error": {"code", "message", "field"?, "rule"?}}`. Messages never
/// carry request values.
public struct APIError: HTTPResponseError {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var field: String?
    public var rule: String?
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil, rule: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.rule = rule
    }

    /// The body's shape.
    struct Body: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
            var field: String?
            var rule: String?
        }
        var error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder.api.encode(Body(error: .init(code: code, message: message, field: field, rule: rule)))
        var headers = self.headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// A 422 naming the field and the broken rule.
    public static func invalidField(_ field: String, rule: String, _ message: String) -> APIError {
        APIError(.unprocessableContent, code: "invalid_field", message: message, field: field, rule: rule)
    }

    /// A 400 for a query or path parameter, naming it and the broken rule.
    public static func invalidParameter(_ name: String, rule: String, _ message: String) -> APIError {
        APIError(.badRequest, code: "invalid_parameter", message: message, field: name, rule: rule)
    }

    /// A 404 with `message`.
    public static func notFound(_ message: String) -> APIError {
        APIError(.notFound, code: "not_found", message: message)
    }
}

/// Lets a route group's requests through only when the caller holds `role` (403 naming it), so
/// a domain checks its role once per group rather than in every handler.
public struct RequireRole: RouterMiddleware {
    public typealias Context = APIRequestContext
    public let role: Role

    public init(_ role: Role) {
        self.role = role
    }

    public func handle(_ request: Request, context: APIRequestContext,
                       next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        guard try context.caller().has(role) else {
            throw APIError(.forbidden, code: "forbidden", message: "this API key lacks the role \(role.rawValue)")
        }
        return try await next(request, context)
    }
}

extension RouterMethods where Context == APIRequestContext {
    /// A group of routes under `path` that all need `role`.
    public func group(_ path: RouterPath = "", requiring role: Role) -> RouterGroup<APIRequestContext> {
        group(path).add(middleware: RequireRole(role))
    }
}
