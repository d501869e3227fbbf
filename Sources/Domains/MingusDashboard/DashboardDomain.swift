import Foundation
import Hummingbird
import MingusHTTP
public import MingusRuntime
import MingusSecurity

extension DomainDescription {
    /// The web dashboard people sign in to (`/dashboard`, session cookies, TOTP) and its JSON
    /// endpoints under `/api/financial/dashboard`. Seals TOTP secrets with `dashboard-totp`.
    public static let dashboard = DomainDescription(
        name: "dashboard", roles: [], keyPurposes: [.dashboardTOTP], queues: [], dataInventory: DataTable.dashboard
    ) { router, gateway in
        let authenticator = DashboardAuthenticator(
            database: gateway.database, keys: gateway.keys, audit: gateway.audit,
            policy: DashboardPolicy(environment: ProcessInfo.processInfo.environment), logger: gateway.logger)
        let publisher = gateway.publisher
        DashboardRoutes(database: gateway.database, authenticator: authenticator) { await publisher.queueInfo($0) }.mount(on: router)
    }
}
