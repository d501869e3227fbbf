public import Hummingbird
import HTTPTypes
public import MingusCore
import Logging

/// Which browser pages of other origins may call a server, and how (Cross-Origin Resource
/// Sharing). With no allowed origin CORS is off: no CORS header is ever sent.
public struct CORSPolicy: Sendable, Equatable {
    /// Exact origins, lowercased (`https://app.example.com`, `http://localhost:3000`).
    public var allowedOrigins: Set<String>
    /// What `Access-Control-Allow-Methods` lists on a preflight answer.
    public var allowedMethods: [String]
    /// What `Access-Control-Allow-Headers` lists on a preflight answer.
    public var allowedHeaders: [String]
    /// Whether listed origins get `Access-Control-Allow-Credentials: true`.
    public var allowCredentials: Bool
    /// Seconds a browser may cache a preflight answer (`Access-Control-Max-Age`).
    public var maxAge: Int

    /// A policy; origins are compared without regard to case.
    public init(allowedOrigins: [String], allowedMethods: [String] = ["GET", "POST", "PUT", "DELETE"],
                allowedHeaders: [String] = ["Authorization", "Content-Type", "Idempotency-Key"],
                allowCredentials: Bool = false, maxAge: Int = 600) {
        self.allowedOrigins = Set(allowedOrigins.map { $0.lowercased() })
        self.allowedMethods = allowedMethods
        self.allowedHeaders = allowedHeaders
        self.allowCredentials = allowCredentials
        self.maxAge = maxAge
    }

    /// The policy of the `MINGUS_CORS_*` variables.
    public init(configuration: MingusConfiguration) {
        self.init(allowedOrigins: configuration.corsAllowedOrigins, allowedMethods: configuration.corsAllowedMethods,
                  allowedHeaders: configuration.corsAllowedHeaders, allowCredentials: configuration.corsAllowCredentials,
                  maxAge: configuration.corsMaxAge)
    }

    /// CORS off: no origin allowed.
    public static let disabled = CORSPolicy(allowedOrigins: [])

    /// Whether any origin is allowed.
    public var isEnabled: Bool { !allowedOrigins.isEmpty }

    /// Whether a request's `Origin` value is one of the allowed origins.
    public func allows(_ origin: String) -> Bool {
        allowedOrigins.contains(origin.lowercased())
    }

    /// The headers of an answer to a request from an allowed `origin`.
    func responseHeaders(origin: String) -> HTTPFields {
        var headers: HTTPFields = [.accessControlAllowOrigin: origin]
        if allowCredentials { headers[.accessControlAllowCredentials] = "true" }
        return headers
    }

    /// The headers of a preflight answer to an allowed `origin`.
    func preflightHeaders(origin: String) -> HTTPFields {
        var headers = responseHeaders(origin: origin)
        headers[.accessControlAllowMethods] = allowedMethods.joined(separator: ", ")
        headers[.accessControlAllowHeaders] = allowedHeaders.joined(separator: ", ")
        headers[.accessControlMaxAge] = "\(maxAge)"
        headers[.vary] = "Origin"
        return headers
    }
}

/// Applies a ``CORSPolicy``; it belongs before authentication, since a browser's preflight
/// carries no credentials.
///
/// - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here
///   and goes no further (so it is neither authenticated nor audited): 204 with the allowed
///   origin, methods, headers, max age (and credentials when on) for a listed origin; 403 with
///   no CORS header for any other origin.
/// - Any other request goes on; when it comes from a listed origin its answer — errors such as
///   401 included — gets `Access-Control-Allow-Origin` (and credentials when on). Answers to
///   other origins get no CORS header, so the browser keeps them from the page.
/// - Every answer to a request with an `Origin` gets `Vary: Origin`, since it depends on it.
///
/// Add it only when the policy ``CORSPolicy/isEnabled``; CORS off means no middleware.
public struct CORSPolicyMiddleware<Context: RequestContext>: RouterMiddleware {
    public let policy: CORSPolicy

    /// A middleware applying `policy`.
    public init(policy: CORSPolicy) {
        self.policy = policy
    }

    /// Answers a preflight, or passes the request on and adds the CORS headers to its answer.
    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        let allowed = policy.allows(origin)
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            guard allowed else {
                return Response(status: .forbidden, headers: [.vary: "Origin"])
            }
            return Response(status: .noContent, headers: policy.preflightHeaders(origin: origin))
        }
        var headers = allowed ? policy.responseHeaders(origin: origin) : HTTPFields()
        headers.append(HTTPField(name: .vary, value: "Origin"))
        do {
            var response = try await next(request, context)
            response.headers.append(contentsOf: headers)
            return response
        } catch {
            throw HeadedError(original: error, headers: headers)
        }
    }
}

/// An error thrown past ``CORSPolicyMiddleware``, answered as it would have been with the CORS
/// headers added (an error Hummingbird cannot answer is a 500, as Hummingbird makes it).
struct HeadedError: HTTPResponseError {
    let original: any Error
    let headers: HTTPFields

    var status: HTTPResponse.Status {
        (original as? any HTTPResponseError)?.status ?? .internalServerError
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        guard let original = original as? any HTTPResponseError else {
            context.logger.debug("Unrecognised Error", metadata: ["error.type": "\(original)"])
            return Response(status: .internalServerError, headers: headers)
        }
        var response = try original.response(from: request, context: context)
        response.headers.append(contentsOf: headers)
        return response
    }
}
