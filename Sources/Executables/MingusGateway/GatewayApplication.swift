public import Hummingbird
import Logging
public import MingusHTTP
import MingusPostgres
public import MingusRuntime
public import MingusSecurity
public import Prometheus
import MingusAlerts
import MingusPayments
import MingusBreach
import MingusRetention
import MingusLogs
import MingusPrivacy
public import MingusSecurityMonitoring
public import MingusCompliance
import MingusDashboard

/// Builds the gateway's HTTP application: health routes, CORS, authentication and auditing, the
/// audit search, and the routes of every domain in ``domains``.
public enum GatewayApplication {
    /// The domains the gateway serves. Adding a domain is adding it here.
    public static let domains: [DomainDescription] = [.payments, .alerts, .breach, .retention, .logs, .privacy, .securityMonitoring, .compliance, .dashboard]

    /// Every table the cluster owns, each column classified: the platform's and every domain's.
    public static var dataInventory: [InventoryTable] {
        DataTable.platform.map { InventoryTable(domain: "platform", table: $0) }
            + domains.flatMap { domain in domain.dataInventory.map { InventoryTable(domain: domain.name, table: $0) } }
    }

    /// Every role some route checks, `admin` included.
    public static var roles: [Role] { [.admin, .auditRead] + domains.flatMap(\.roles) }

    /// The router with every route and middleware; tests and the executable share it.
    ///
    /// Blocked client addresses (``ClientDenyList``) are refused before authentication. Requests
    /// refused with 401 are counted per client address (``AuthFailureDetector``, `authFailures`):
    /// repeated ones become `auth_failures` detections for the security worker.
    /// CORS (when `cors` allows an origin) comes before authentication: a browser's preflight
    /// carries no API key, so it is answered there and is not audited; and the CORS headers reach
    /// the 401 and 403 answers of listed origins too. The health routes have neither.
    public static func router(
        services: GatewayServices, registry: PrometheusCollectorRegistry, cors: CORSPolicy = .disabled,
        keyCacheLifetime: Duration = .seconds(5), denyList: ClientDenyList? = nil,
        authFailures: AuthFailureDetector.Policy = AuthFailureDetector.Policy(), readiness: @escaping @Sendable () async -> [String]
    ) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        addHealthRoutes(to: router, registry: registry, problems: readiness)
        if cors.isEnabled {
            router.add(middleware: CORSPolicyMiddleware(policy: cors))
        }
        if let denyList {
            router.add(middleware: ClientDenyMiddleware(list: denyList))
        }
        let detector = AuthFailureDetector(policy: authFailures, ignoring: denyList?.trustedProxies ?? [], publisher: services.publisher,
                                           logger: services.logger)
        router.add(middleware: APIAccessMiddleware(database: services.database, keyCacheLifetime: keyCacheLifetime, audit: services.audit,
                                                  logger: services.logger) { request, context in
            let forwarded = request.headers[.init("X-Forwarded-For")!]
            detector.failed(address: denyList?.clientAddress(peer: context.origin, forwardedFor: forwarded) ?? context.origin)
        })
        router.addRoutes(AuditRoutes(database: services.database).collection(), atPath: "/api/financial/audit")
        for domain in domains { domain.mount(router, services) }
        router.addRoutes(DataInventoryRoutes(tables: dataInventory, services).collection(), atPath: "/api/financial")
        router.add(middleware: MethodNotAllowedMiddleware(routes: router.routes))
        return router
    }
}
