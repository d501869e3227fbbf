import Foundation
import Hummingbird
import Logging
import MingusAMQP
public import MingusCore
import MingusHTTP
import MingusPostgres
import MingusRuntime
import MingusSecurity
import MingusSecurityMonitoring
import NIOCore
import Prometheus
import ServiceLifecycle

/// Runs `mingus-gateway`: the HTTP API on `MINGUS_HTTP_HOST:MINGUS_HTTP_PORT` (port 0 picks a
/// free one and logs it as `mingus.http.port`), connected to PostgreSQL and RabbitMQ, drained on
/// SIGTERM or SIGINT. HTTPS only when `MINGUS_TLS_CERT_FILE` and `MINGUS_TLS_KEY_FILE` are set
/// (reloaded on SIGHUP); CORS for the origins of `MINGUS_CORS_ALLOWED_ORIGINS`; client addresses
/// behind the load balancers of `MINGUS_TRUSTED_PROXIES` read from `X-Forwarded-For`.
public enum GatewayServer {
    /// Runs until SIGTERM or SIGINT; a configuration or certificate that cannot be used is
    /// thrown before anything starts (a ``ConfigurationProblem``).
    public static func run(configuration: MingusConfiguration? = nil) async throws {
        let configuration = try configuration ?? MingusConfiguration()
        MingusLogging.bootstrap(level: configuration.logLevel)
        let logger = Logger(label: "mingus.gateway")
        let certificate = try ServerCertificate(configuration: configuration)
        let prometheus = PrometheusCollectorRegistry()
        let metrics = RuntimeMetrics(factory: PrometheusMetricsFactory(registry: prometheus))
        let database = PostgresClient(configuration: PostgresConfiguration(url: configuration.databaseURL, poolSize: 16), logger: logger)
        let broker = BrokerLink(
            brokers: try AMQPConfiguration.brokers(configuration.amqpURL, connectionName: "mingus-gateway"),
            topology: MingusTopology.declaring(GatewayApplication.domains.flatMap(\.queues)), logger: logger, metrics: metrics)
        let kek = try KeyEncryptingKey(contentsOf: URL(fileURLWithPath: configuration.financialKeyPath))
        let keys = KeyringCache(kek: kek, database: database)
        do {
            try await keys.reload()
        } catch {
            logger.warning("cannot load the data keys yet; payments and records answer 500 until they load",
                           metadata: ["mingus.error": "\(error)"])
        }
        let cors = CORSPolicy(configuration: configuration)
        let audit = AuditBatcher(database: database, component: "gateway", logger: logger)
        let services = GatewayServices(database: database, publisher: JobPublisher(broker: broker, metrics: metrics), keys: keys,
                                       idempotency: IdempotencyStore(database: database), audit: audit, logger: logger)
        let authFailures = try AuthFailureDetector.Policy(environment: ProcessInfo.processInfo.environment)
        let denyList = ClientDenyList(database: database, trustedProxies: ClientDenyList.trustedProxies(environment: ProcessInfo.processInfo.environment),
                                      logger: logger)
        let router = GatewayApplication.router(services: services, registry: prometheus, cors: cors,
                                               keyCacheLifetime: configuration.apiKeyCacheLifetime, denyList: denyList,
                                               authFailures: authFailures) {
            await readinessProblems(broker: broker, database: database)
        }
        let host = configuration.httpHost
        let scheme = certificate == nil ? "http" : "https"
        let application = Application(
            router: router,
            server: try httpServerBuilder(certificate: certificate),
            configuration: ApplicationConfiguration(address: .hostname(host, port: configuration.httpPort), serverName: "mingus-gateway"),
            onServerRunning: { channel in
                logger.info("gateway listening", metadata: [
                    "mingus.http.host": "\(host)", "mingus.http.port": "\(channel.localAddress?.port ?? 0)", "mingus.http.scheme": "\(scheme)",
                    "mingus.cors.origins": "\(cors.allowedOrigins.sorted().joined(separator: ","))",
                ])
            },
            logger: logger)
        // Connect in the background: readiness reports the broker until it answers.
        let connecting = Task { _ = try? await broker.connection() }
        defer { connecting.cancel() }
        let purger = IdempotencyKeyPurger(database: database, logger: logger)
        let queues = GatewayApplication.domains.flatMap(\.queues)
        let state = ClusterStateGauges(queues: Array(Set(queues.map(\.queue) + queues.map(\.deadLetterQueue))).sorted(),
                                       publisher: services.publisher, database: database,
                                       metrics: MetricHandles(factory: PrometheusMetricsFactory(registry: prometheus)), logger: logger)
        let reloader: [any Service] = certificate.map { [ServerCertificateReloader(certificate: $0, logger: logger)] } ?? []
        let heartbeat = ProcessHeartbeat(kind: "gateway", database: database, logger: logger) {
            await readinessProblems(broker: broker, database: database)
        }
        try await runUntilStopped([heartbeat, denyList, application, purger, state] + reloader, drainTimeout: configuration.drainTimeout,
                                  broker: broker, database: database, logger: logger)
    }
}
