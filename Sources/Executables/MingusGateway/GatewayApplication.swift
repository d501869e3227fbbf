public import Hummingbird
import Logging
public import MingusHTTP
import MingusPostgres
public import MingusRuntime
public import MingusSecurity
public import Prometheus
import MingusAlerts
import MingusPayments

/// Builds the gateway's HTTP application: health routes, authentication and auditing, the audit
/// search, and the routes of every domain in ``domains``.
public enum GatewayApplication {
    /// The domains the gateway serves. Adding a domain is adding it here.
    public static let domains: [DomainDescription] = [.payments, .alerts]

    /// Every role some route checks, `admin` included.
    public static var roles: [Role] { [.admin, .auditRead] + domains.flatMap(\.roles) }

    /// The router with every route and middleware; tests and the executable share it.
    public static func router(
        services: GatewayServices, registry: PrometheusCollectorRegistry,
        readiness: @escaping @Sendable () async -> [String]
    ) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        addHealthRoutes(to: router, registry: registry, problems: readiness)
        router.add(middleware: APIAccessMiddleware(database: services.database, logger: services.logger))
        router.addRoutes(AuditRoutes(database: services.database).collection(), atPath: "/api/financial/audit")
        for domain in domains { domain.mount(router, services) }
        return router
    }
}
