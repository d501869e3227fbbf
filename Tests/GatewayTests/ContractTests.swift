import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MingusAMQP
import MingusCore
import MingusGateway
import MingusHTTP
import MingusPostgres
import MingusRuntime
import MingusSecurity
import Prometheus
import TestSupport
import Testing

/// The routes the gateway serves and the operations `Contracts/openapi.yaml` describes are the
/// same set: a route served but not described, or described but not served, fails here.
@Suite("Gateway routes against the OpenAPI contract")
struct ContractTests {
    /// `METHOD /path/{param}` of every operation in the contract.
    static func describedOperations() throws -> Set<String> {
        let url = TestEnvironment.repositoryRoot.appendingPathComponent("Contracts/openapi.yaml")
        let document = try YAML.parse(try String(contentsOf: url, encoding: .utf8), file: "openapi.yaml")
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        var operations: Set<String> = []
        for path in try #require(document["paths"]?.mapping, "openapi.yaml has no paths") {
            for operation in try #require(path.value.mapping, "\(path.key) is not a mapping") where methods.contains(operation.key) {
                operations.insert("\(operation.key.uppercased()) \(path.key)")
            }
        }
        return operations
    }

    /// `METHOD /path/{param}` of every route the gateway's router holds.
    static func servedRoutes() throws -> Set<String> {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("contract"))
        defer { try? FileManager.default.removeItem(at: folder) }
        let kek = try KeyEncryptingKey.create(at: folder.appendingPathComponent("financial.key"))
        // Nothing here connects: the router is only built and listed.
        let logger = Logger(label: "contract-test")
        let database = PostgresClient(configuration: PostgresConfiguration(url: TestEnvironment.databaseURL, poolSize: 1))
        let broker = BrokerLink(
            configuration: try AMQPConfiguration(url: TestEnvironment.amqpURL), topology: MingusTopology.shared, logger: logger,
            metrics: RuntimeMetrics(factory: PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())))
        let services = GatewayServices(
            database: database, publisher: JobPublisher(broker: broker), keys: KeyringCache(kek: kek, database: database),
            idempotency: IdempotencyStore(database: database),
            audit: AuditBatcher(database: database, component: "gateway", logger: logger), logger: logger)
        let router = GatewayApplication.router(services: services, registry: PrometheusCollectorRegistry()) { [] }
        return Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
    }

    @Test("every route served is described in openapi.yaml, and every operation described is served")
    func routesMatchTheContract() throws {
        let described = try Self.describedOperations()
        let served = try Self.servedRoutes()
        #expect(!served.isEmpty)
        #expect(served.subtracting(described).sorted() == [], "served but not in Contracts/openapi.yaml")
        #expect(described.subtracting(served).sorted() == [], "in Contracts/openapi.yaml but not served")
    }
}
