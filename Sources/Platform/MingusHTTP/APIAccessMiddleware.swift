import Foundation
public import Hummingbird
public import Logging
public import MingusPostgres
import MingusSecurity

/// Guards every `/api/` route: checks `Authorization: Bearer <api key>` (401 without a valid
/// key) and records the request in the audit trail — who, what, when, outcome, origin (PCI DSS
/// 10.2) — whether it was allowed, denied or failed. The answer waits until its event has
/// committed; concurrent requests' events commit together (``AuditBatcher``).
public struct APIAccessMiddleware: RouterMiddleware {
    public typealias Context = APIRequestContext
    /// Told of every request refused with 401 (no valid API key); must not block.
    public typealias UnauthorizedHandler = @Sendable (Request, APIRequestContext) -> Void
    let keys: APIKeyCache
    let audit: AuditBatcher
    let logger: Logger
    let onUnauthorized: UnauthorizedHandler?

    /// Checks keys against `database` (trusting a verification for `keyCacheLifetime`) and
    /// appends each request's event through `audit`; `onUnauthorized` hears of each 401.
    public init(database: PostgresClient, keyCacheLifetime: Duration, audit: AuditBatcher, logger: Logger,
                onUnauthorized: UnauthorizedHandler? = nil) {
        keys = APIKeyCache(store: APIKeyStore(database: database), lifetime: keyCacheLifetime)
        self.audit = audit
        self.logger = logger
        self.onUnauthorized = onUnauthorized
    }

    public func handle(_ request: Request, context: APIRequestContext,
                       next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/api/") else { return try await next(request, context) }
        var context = context
        do {
            guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
                  let identity = try await keys.verify(String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces))
            else {
                var error = APIError(.unauthorized, code: "unauthorized", message: "a valid API key is required: Authorization: Bearer <key>")
                error.headers[.wwwAuthenticate] = "Bearer"
                onUnauthorized?(request, context)
                throw error
            }
            context.identity = identity
            let response = try await next(request, context)
            await record(request, context, status: response.status)
            return response
        } catch let error as PostgresError where error.isConnectionFailure {
            // The database went away (a restart, a failover): a retry soon succeeds, so say so.
            var unavailable = APIError(.serviceUnavailable, code: "unavailable", message: "the database is unavailable; retry later")
            unavailable.headers[.retryAfter] = "5"
            await record(request, context, status: unavailable.status)
            throw unavailable
        } catch {
            await record(request, context, status: (error as? any HTTPResponseError)?.status ?? .internalServerError)
            throw error
        }
    }

    private func record(_ request: Request, _ context: APIRequestContext, status: HTTPResponse.Status) async {
        let outcome: AuditEvent.Outcome = switch status.code {
        case 401, 403: .denied
        case ..<400: .success
        default: .failure
        }
        let event = AuditEvent(
            actor: context.identity?.actor ?? "anonymous", action: "http.\(request.method.rawValue.lowercased())",
            resource: request.uri.path, outcome: outcome, origin: context.origin, details: ["status": "\(status.code)"])
        do {
            try await audit.append(event)
        } catch {
            logger.error("cannot write the audit event of a request", metadata: ["mingus.error": "\(error)", "mingus.http.path": "\(request.uri.path)"])
        }
    }
}
