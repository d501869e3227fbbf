public import Hummingbird

/// Answers 405 with `Allow` when a known path is asked with a method it does not take (RFC 9110
/// 15.5.6), instead of the router's 404.
///
/// Add it to the router after every route: a router wraps its not-found answer in all of its
/// middleware but each route only in the middleware added before it, so this one sees exactly
/// the requests no route took.
public struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// A route's path split into segments (nil for a `{parameter}`), with the methods it takes.
    private let paths: [(segments: [Substring?], allow: String)]

    /// Takes the routes to answer for, usually `router.routes` once every route is added.
    public init(routes: [Router<Context>.RouteDescription]) {
        var methods: [String: Set<String>] = [:]
        for route in routes { methods[route.path.description, default: []].insert(route.method.rawValue) }
        paths = methods.map { path, methods in
            (path.split(separator: "/").map { $0.hasPrefix("{") ? nil : $0 }, methods.sorted().joined(separator: ", "))
        }
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let segments = request.uri.path.split(separator: "/")
            let matching = paths.filter { path in
                path.segments.count == segments.count && zip(path.segments, segments).allSatisfy { $0.0 == nil || $0.0 == $0.1 }
            }
            // The most specific, as the router matches: a literal segment wins over a `{parameter}`
            // at the first place two paths differ (`/silences` over `/{id}`).
            guard let known = matching.max(by: { lhs, rhs in
                lhs.segments.map { $0 != nil }.lexicographicallyPrecedes(rhs.segments.map { $0 != nil }) { !$0 && $1 }
            }) else { throw error }
            var refusal = APIError(.methodNotAllowed, code: "method_not_allowed", message: "this path does not take this method")
            refusal.headers[.allow] = known.allow
            throw refusal
        }
    }
}
