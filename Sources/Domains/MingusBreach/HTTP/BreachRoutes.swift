import Foundation
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
import MingusSecurity

/// `/api/financial/breach…`: breach reports, status changes, facts, obligations and evidence.
public struct BreachRoutes: Sendable {
    let gateway: GatewayServices

    public init(_ gateway: GatewayServices) {
        self.gateway = gateway
    }

    /// The routes, to mount at `/api/financial`.
    public func collection() -> RouteCollection<APIRequestContext> {
        RouteCollection(context: APIRequestContext.self)
    }
}
