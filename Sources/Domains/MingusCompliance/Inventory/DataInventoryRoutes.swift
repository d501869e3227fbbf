public import Hummingbird
public import MingusHTTP
import MingusPostgres
public import MingusRuntime

/// `/api/financial/customer/data/inventory`, `/customer/protection/status` and
/// `/dashboard/customer-protection` (role `compliance:read`). The gateway gives it every domain's
/// declared tables.
public struct DataInventoryRoutes: Sendable {
    let tables: [InventoryTable]
    let database: PostgresClient

    public init(tables: [InventoryTable], _ gateway: GatewayServices) {
        self.tables = tables
        database = gateway.database
    }

    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let read = routes.group(requiring: .complianceRead)
        read.get("customer/data/inventory") { request, _ in
            let domain = request.uri.queryParameters["domain"].map(String.init)
            if let domain, !tables.contains(where: { $0.domain == domain }) {
                throw APIError.invalidParameter("domain", rule: "enum", "domain must be one of \(Set(tables.map(\.domain)).sorted().joined(separator: ", "))")
            }
            var minimum = DataClassification.public
            if let given = request.uri.queryParameters["min_classification"] {
                guard let level = DataClassification(rawValue: String(given)) else {
                    throw APIError.invalidParameter("min_classification", rule: "enum",
                                                    "min_classification must be one of \(DataClassification.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                minimum = level
            }
            return APIResponse(try await DataInventoryReport.build(tables, domain: domain, minimum: minimum, on: database))
        }
        read.get("customer/protection/status") { _, _ in APIResponse(try await ProtectionStatus.build(tables, on: database)) }
        read.get("dashboard/customer-protection") { _, _ in APIResponse(try await ProtectionStatus.build(tables, on: database)) }
        return routes
    }
}
