import Foundation
import Logging
import MingusAMQP
public import MingusCore
import MingusHTTP
import MingusPostgres
import Prometheus
import CoreMetrics
public import ServiceLifecycle

/// Runs a worker process: everything a worker executable needs besides its handlers.
///
/// Reads ``MingusConfiguration`` from the environment, sets up JSON logging and Prometheus
/// metrics, connects to PostgreSQL and RabbitMQ (declaring the shared topology and the worker's
/// queues), then runs the health server, the outbox relay, the scheduler and the job consumer in
/// one `ServiceGroup` that drains on SIGTERM or SIGINT within `MINGUS_DRAIN_TIMEOUT`. With
/// `MINGUS_TLS_CERT_FILE` and `MINGUS_TLS_KEY_FILE` the health server answers HTTPS only and the
/// group also reloads the certificate on SIGHUP; files that cannot be used are thrown (a
/// ``ConfigurationProblem``) before anything starts.
public enum WorkerRuntime {
    /// A queue consumed besides the worker's own, with its own lanes (for example one per
    /// alert channel, so that a slow provider holds only its own queue's lanes).
    public struct ExtraQueue: Sendable {
        public var queues: WorkerQueues
        /// Jobs of this queue running at once, each in its own transaction.
        public var concurrency: Int

        public init(_ queues: WorkerQueues, concurrency: Int) {
            self.queues = queues
            self.concurrency = concurrency
        }
    }

    /// Runs the worker named `name` (its queue is `mingus.<name>`) until it is told to stop.
    /// `defaultMetricsPort` applies when `MINGUS_METRICS_PORT` is unset. `extraQueues` are
    /// declared and consumed with the same registry; `services` run in the same service group.
    public static func run(
        name: String,
        defaultMetricsPort: Int,
        registry: JobRegistry,
        configuration: MingusConfiguration? = nil,
        extraQueues: [ExtraQueue] = [],
        services: [any Service] = []
    ) async throws {
        let configuration = try configuration ?? MingusConfiguration()
        MingusLogging.bootstrap(level: configuration.logLevel)
        var logger = Logger(label: "mingus.\(name)-worker")
        logger[metadataKey: "mingus.worker"] = "\(name)"
        let certificate = try ServerCertificate(configuration: configuration)

        let prometheus = PrometheusCollectorRegistry()
        // Handlers may record their own metrics through the global factory.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))
        let metrics = RuntimeMetrics(factory: PrometheusMetricsFactory(registry: prometheus))
        let queues = WorkerQueues(name: name)
        let database = PostgresClient(
            configuration: PostgresConfiguration(
                url: configuration.databaseURL,
                poolSize: configuration.workerConcurrency + extraQueues.reduce(0) { $0 + $1.concurrency } + 4),
            logger: logger)
        var topology = MingusTopology.shared
        let own = MingusTopology.worker(queues)
        topology.queues += own.queues
        topology.bindings += own.bindings
        for extra in extraQueues {
            let part = MingusTopology.worker(extra.queues)
            topology.queues += part.queues
            topology.bindings += part.bindings
        }
        let broker = BrokerLink(
            configuration: try AMQPConfiguration(url: configuration.amqpURL, connectionName: "mingus-\(name)-worker"),
            topology: topology, logger: logger, metrics: metrics)
        let source = "/mingus/\(name)-worker"
        let outbox = Outbox(database: database, broker: broker, source: source, logger: logger, metrics: metrics)
        let scheduler = Scheduler(database: database, outbox: outbox, logger: logger, metrics: metrics)
        let consumer = JobConsumer(
            configuration: .init(queues: queues, concurrency: configuration.workerConcurrency,
                                 batchSize: configuration.workerBatchSize,
                                 retry: RetryPolicy(maxAttempts: configuration.maxAttempts), source: source),
            registry: registry, database: database, broker: broker, outbox: outbox, logger: logger, metrics: metrics)
        let extraConsumers = extraQueues.map { extra in
            JobConsumer(
                configuration: .init(queues: extra.queues, concurrency: extra.concurrency, batchSize: 1,
                                     retry: RetryPolicy(maxAttempts: configuration.maxAttempts), source: source),
                registry: registry, database: database, broker: broker, outbox: outbox, logger: logger, metrics: metrics)
        }
        let health = try HealthServer(
            host: configuration.httpHost, port: configuration.metricsPort ?? defaultMetricsPort, registry: prometheus,
            broker: broker, database: database, certificate: certificate, logger: logger)
        let reloader: [any Service] = certificate.map { [ServerCertificateReloader(certificate: $0, logger: logger)] } ?? []

        logger.info("worker starting", metadata: ["mingus.queue": "\(queues.queue)", "mingus.types": "\(registry.types)"])
        defer { logger.info("worker stopped") }
        try await runUntilStopped([health, outbox, scheduler, consumer] + extraConsumers + reloader + services, drainTimeout: configuration.drainTimeout,
                                  broker: broker, database: database, logger: logger)
    }
}
