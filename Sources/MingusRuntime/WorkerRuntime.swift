import Foundation
import Logging
import MingusAMQP
public import MingusCore
import MingusPostgres
import Prometheus

/// Runs a worker process: everything a worker executable needs besides its handlers.
///
/// Reads ``MingusConfiguration`` from the environment, sets up JSON logging and Prometheus
/// metrics, connects to PostgreSQL and RabbitMQ (declaring the shared topology and the worker's
/// queues), then runs the health server, the outbox relay, the scheduler and the job consumer in
/// one `ServiceGroup` that drains on SIGTERM or SIGINT within `MINGUS_DRAIN_TIMEOUT`.
public enum WorkerRuntime {
    /// Runs the worker named `name` (its queue is `mingus.<name>`) until it is told to stop.
    /// `defaultMetricsPort` applies when `MINGUS_METRICS_PORT` is unset.
    public static func run(
        name: String,
        defaultMetricsPort: Int,
        registry: JobRegistry,
        configuration: MingusConfiguration? = nil
    ) async throws {
        let configuration = try configuration ?? MingusConfiguration()
        MingusLogging.bootstrap(level: configuration.logLevel)
        var logger = Logger(label: "mingus.\(name)-worker")
        logger[metadataKey: "mingus.worker"] = "\(name)"

        let prometheus = PrometheusCollectorRegistry()
        let metrics = RuntimeMetrics(factory: PrometheusMetricsFactory(registry: prometheus))
        let queues = WorkerQueues(name: name)
        let database = PostgresClient(
            configuration: PostgresConfiguration(url: configuration.databaseURL, poolSize: configuration.workerConcurrency + 4),
            logger: logger)
        var topology = MingusTopology.shared
        let own = MingusTopology.worker(queues)
        topology.queues += own.queues
        topology.bindings += own.bindings
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
        let health = HealthServer(
            host: configuration.httpHost, port: configuration.metricsPort ?? defaultMetricsPort, registry: prometheus,
            broker: broker, database: database, logger: logger)

        logger.info("worker starting", metadata: ["mingus.queue": "\(queues.queue)", "mingus.types": "\(registry.types)"])
        defer { logger.info("worker stopped") }
        try await runUntilStopped([health, outbox, scheduler, consumer], drainTimeout: configuration.drainTimeout,
                                  broker: broker, database: database, logger: logger)
    }
}
