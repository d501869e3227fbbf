import Foundation
public import Hummingbird
public import Logging
public import MingusPostgres
public import MingusPayments
public import MingusRuntime
import NIOCore
public import Prometheus

/// The request context of the gateway: the caller's identity once authenticated, and where the
/// request came from.
public struct GatewayContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the API access middleware for `/api/` routes.
    public var identity: APIKeyIdentity?
    /// The peer's IP address, for the audit trail.
    public let origin: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        identity = nil
        origin = source.channel.remoteAddress?.ipAddress ?? ""
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

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var error: [String: String] = ["code": code, "message": message]
        if let field { error["field"] = field }
        if let rule { error["rule"] = rule }
        let body = try JSONSerialization.data(withJSONObject: ["error": error], options: [.sortedKeys])
        var headers = self.headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Guards every `/api/` route: checks `Authorization: Bearer <api key>` (401 without a valid
/// key) and records the request in the audit trail — who, what, when, outcome, origin (PCI DSS
/// 10.2) — whether it was allowed, denied or failed.
struct APIAccessMiddleware: RouterMiddleware {
    typealias Context = GatewayContext
    let keys: APIKeyStore
    let database: PostgresClient
    let logger: Logger

    func handle(_ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/api/") else { return try await next(request, context) }
        var context = context
        do {
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
                  let identity = try await keys.verify(String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
            else {
                var error = APIError(.unauthorized, code: "unauthorized", message: "a valid API key is required: Authorization: Bearer <key>")
                error.headers[.wwwAuthenticate] = "Bearer"
                throw error
            }
            context.identity = identity
            let response = try await next(request, context)
            await record(request, context, status: response.status)
            return response
        } catch {
            await record(request, context, status: (error as? any HTTPResponseError)?.status ?? .internalServerError)
            throw error
        }
    }

    private func record(_ request: Request, _ context: GatewayContext, status: HTTPResponse.Status) async {
        let outcome: AuditEvent.Outcome = switch status.code {
        case 401, 403: .denied
        case ..<400: .success
        default: .failure
        }
        let event = AuditEvent(
            actor: context.identity?.actor ?? "anonymous", action: "http.\(request.method.rawValue.lowercased())",
            resource: request.uri.path, outcome: outcome, origin: context.origin, details: ["status": "\(status.code)"])
        do {
            try await database.withTransaction { db -> Void in
                _ = try await AuditTrail.append(event, component: "gateway", on: db)
            }
        } catch {
            logger.error("cannot write the audit event of a request", metadata: ["mingus.error": "\(error)", "mingus.http.path": "\(request.uri.path)"])
        }
    }
}

/// Builds the gateway's HTTP application: health routes, authentication, auditing, the API.
public enum GatewayApplication {
    /// The router with every route and middleware; tests and the executable share it.
    public static func router(
        database: PostgresClient, broker: BrokerLink, keys: KeyringCache, registry: PrometheusCollectorRegistry, logger: Logger,
        readiness: @escaping @Sendable () async -> [String]
    ) -> Router<GatewayContext> {
        let router = Router(context: GatewayContext.self)
        addHealthRoutes(to: router, registry: registry, problems: readiness)
        router.add(middleware: APIAccessMiddleware(keys: APIKeyStore(database: database), database: database, logger: logger))
        let publisher = JobPublisher(broker: broker)
        AuditSearch(database: database).addRoutes(to: router.group("api/financial/audit"))
        PaymentRoutes(database: database, keys: keys, publisher: publisher, idempotency: IdempotencyStore(database: database))
            .addRoutes(to: router.group("api/financial/payment"))
        RecordRoutes(database: database, keys: keys, publisher: publisher).addRoutes(to: router.group("api/financial/records"))
        AlertRoutes(database: database, publisher: publisher).addRoutes(to: router.group("api/alerts"))
        addMethodNotAllowed(to: router)
        return router
    }

    /// A known path asked with a method it does not take answers 405 with `Allow` listing the
    /// methods it does take (RFC 9110 15.5.6), not the router's 404. Call after every route is added.
    static func addMethodNotAllowed(to router: Router<GatewayContext>) {
        let methods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .options, .trace, HTTPRequest.Method("QUERY")!]
        for routes in Dictionary(grouping: router.routes, by: { $0.path.description }).values {
            let taken = Set(routes.map(\.method))
            let allow = taken.map(\.rawValue).sorted().joined(separator: ", ")
            for method in methods where !taken.contains(method) {
                router.on(routes[0].path, method: method) { _, _ -> Response in
                    var error = APIError(.methodNotAllowed, code: "method_not_allowed", message: "this path does not take this method")
                    error.headers[.allow] = allow
                    throw error
                }
            }
        }
    }
}

extension GatewayContext {
    /// The caller, who must hold `role`: 403 otherwise.
    func require(_ role: Role) throws -> APIKeyIdentity {
        guard let identity else {
            throw APIError(.unauthorized, code: "unauthorized", message: "a valid API key is required")
        }
        guard identity.has(role) else {
            throw APIError(.forbidden, code: "forbidden", message: "this API key lacks the role \(role.rawValue)")
        }
        return identity
    }
}
