import Foundation
import Hummingbird
import Logging
import MingusAMQP
public import MingusCore
import MingusPostgres
import MingusRuntime
import NIOCore
import Prometheus
import ServiceLifecycle
import UnixSignals

/// Runs `mingus-gateway`: the HTTP API on `MINGUS_HTTP_HOST:MINGUS_HTTP_PORT` (port 0 picks a
/// free one and logs it as `mingus.http.port`), connected to PostgreSQL and RabbitMQ, drained on
/// SIGTERM or SIGINT.
public enum GatewayServer {
    public static func run(configuration: MingusConfiguration? = nil) async throws {
        let configuration = try configuration ?? MingusConfiguration()
        MingusLogging.bootstrap(level: configuration.logLevel)
        let logger = Logger(label: "mingus.gateway")
        let prometheus = PrometheusCollectorRegistry()
        let metrics = RuntimeMetrics(factory: PrometheusMetricsFactory(registry: prometheus))
        let database = PostgresClient(configuration: PostgresConfiguration(url: configuration.databaseURL, poolSize: 16), logger: logger)
        let broker = BrokerLink(
            configuration: try AMQPConfiguration(url: configuration.amqpURL, connectionName: "mingus-gateway"),
            topology: MingusTopology.all, logger: logger, metrics: metrics)
        let router = GatewayApplication.router(database: database, registry: prometheus, logger: logger) {
            var problems: [String] = []
            if await !broker.isConnected { problems.append("broker: not connected") }
            do { _ = try await database.query("SELECT 1") } catch { problems.append("database: \(error)") }
            return problems
        }
        let host = configuration.httpHost
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: configuration.httpPort), serverName: "mingus-gateway"),
            onServerRunning: { channel in
                logger.info("gateway listening", metadata: ["mingus.http.host": "\(host)", "mingus.http.port": "\(channel.localAddress?.port ?? 0)"])
            },
            logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.drainTimeout
        // Connect in the background: readiness reports the broker until it answers.
        let connecting = Task { _ = try? await broker.connection() }
        defer { connecting.cancel() }
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            await broker.close()
            await database.shutdown()
            throw error
        }
        await broker.close()
        await database.shutdown()
    }
}
