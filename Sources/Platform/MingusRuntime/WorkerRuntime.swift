public import Foundation
public import Logging
import MingusAMQP
public import MingusCore
import MingusHTTP
public import MingusPostgres
import Prometheus
import CoreMetrics
public import ServiceLifecycle

/// A worker process described as data: its name (its queue is `mingus.<name>`), the default
/// port of its health and metrics server, and how it builds its handlers once the runtime has
/// read the configuration. ``WorkerRuntime/run(_:configuration:)`` runs it; a worker's
/// `main.swift` is one line.
public struct WorkerDefinition: Sendable {
    /// Builds a worker's parts from what the runtime prepared.
    public typealias Build = @Sendable (WorkerSetup) async throws -> WorkerParts

    public var name: String
    /// Applies when `MINGUS_METRICS_PORT` is unset.
    public var defaultMetricsPort: Int
    /// Connections of ``WorkerSetup/sideDatabase``.
    public var sideConnections: Int
    public var build: Build

    public init(name: String, defaultMetricsPort: Int, sideConnections: Int = 2, build: @escaping Build) {
        self.name = name
        self.defaultMetricsPort = defaultMetricsPort
        self.sideConnections = sideConnections
        self.build = build
    }
}

/// What a worker's build step gets from the runtime.
public struct WorkerSetup: Sendable {
    public let configuration: MingusConfiguration
    public let environment: [String: String]
    public let logger: Logger
    /// A small pool for work outside job transactions (loading keys, records that must outlive
    /// a rollback). The runtime shuts it down after the worker stops.
    public let sideDatabase: PostgresClient
    /// The folder of message body schemas (`Contracts/schemas`).
    public let schemas: URL

    /// The JSON Schema of `type`'s bodies: `<type>.v1.json` in ``schemas``.
    public func schema(_ type: String) throws -> JSONSchema {
        try JSONSchema(contentsOf: schemas.appendingPathComponent("\(type).v1.json"))
    }
}

/// What a worker consists of besides the runtime.
public struct WorkerParts: Sendable {
    public var registry: JobRegistry
    /// Queues consumed besides the worker's own, with the same registry.
    public var extraQueues: [WorkerRuntime.ExtraQueue]
    /// Run in the same service group (reloaders, timers).
    public var services: [any Service]

    public init(registry: JobRegistry, extraQueues: [WorkerRuntime.ExtraQueue] = [], services: [any Service] = []) {
        self.registry = registry
        self.extraQueues = extraQueues
        self.services = services
    }
}

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

    /// Runs the worker `definition` describes until it is told to stop.
    public static func run(_ definition: WorkerDefinition, configuration: MingusConfiguration? = nil,
                           environment: [String: String] = ProcessInfo.processInfo.environment) async throws {
        let configuration = try configuration ?? MingusConfiguration(environment: environment)
        let name = definition.name
        MingusLogging.bootstrap(level: configuration.logLevel)
        var logger = Logger(label: "mingus.\(name)-worker")
        logger[metadataKey: "mingus.worker"] = "\(name)"
        let certificate = try ServerCertificate(configuration: configuration)

        let prometheus = PrometheusCollectorRegistry()
        // Handlers may record their own metrics through the global factory.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: prometheus))
        let sideDatabase = PostgresClient(
            configuration: PostgresConfiguration(url: configuration.databaseURL, poolSize: definition.sideConnections), logger: logger)
        // The side pool is closed however the worker ends: built, run and stopped, or failed.
        var failure: (any Error)?
        do {
            let parts = try await definition.build(WorkerSetup(
                configuration: configuration, environment: environment, logger: logger, sideDatabase: sideDatabase,
                schemas: try configuration.resolvedSchemasDirectory()))
            try await run(parts, of: definition, configuration: configuration, certificate: certificate,
                          prometheus: prometheus, logger: logger)
        } catch {
            failure = error
        }
        await sideDatabase.shutdown()
        if let failure { throw failure }
    }

    /// Connects the worker's parts to the broker and the database and runs them until stopped.
    private static func run(_ parts: WorkerParts, of definition: WorkerDefinition, configuration: MingusConfiguration,
                            certificate: ServerCertificate?, prometheus: PrometheusCollectorRegistry, logger: Logger) async throws {
        let name = definition.name
        let registry = parts.registry
        let extraQueues = parts.extraQueues

        let metrics = RuntimeMetrics(factory: PrometheusMetricsFactory(registry: prometheus))
        let queues = WorkerQueues(name: name)
        let database = PostgresClient(
            configuration: PostgresConfiguration(
                url: configuration.databaseURL,
                poolSize: configuration.workerConcurrency + extraQueues.reduce(0) { $0 + $1.concurrency } + 4),
            logger: logger)
        let topology = MingusTopology.shared.merging((CollectionOfOne(queues) + extraQueues.map(\.queues)).map(MingusTopology.worker))
        let broker = BrokerLink(
            brokers: try AMQPConfiguration.brokers(configuration.amqpURL, connectionName: "mingus-\(name)-worker"),
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
            host: configuration.httpHost, port: configuration.metricsPort ?? definition.defaultMetricsPort, registry: prometheus,
            broker: broker, database: database, certificate: certificate, logger: logger)
        let reloader: [any Service] = certificate.map { [ServerCertificateReloader(certificate: $0, logger: logger)] } ?? []

        logger.info("worker starting", metadata: ["mingus.queue": "\(queues.queue)", "mingus.types": "\(registry.types)"])
        defer { logger.info("worker stopped") }
        let heartbeat = ProcessHeartbeat(kind: name, database: database, logger: logger) {
            await readinessProblems(broker: broker, database: database)
        }
        try await runUntilStopped([heartbeat, health, outbox, scheduler, consumer] + extraConsumers + reloader + parts.services,
                                  drainTimeout: configuration.drainTimeout, broker: broker, database: database, logger: logger)
    }
}
