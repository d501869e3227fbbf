import Foundation
public import Logging
public import MingusAMQP

/// The process's connection to RabbitMQ, reopened with backoff when it closes, with the
/// topology the process needs declared on every new connection.
///
/// Given the nodes of a cluster (``AMQPConfiguration/brokers(_:connectionName:)``), each attempt
/// goes to the next node, and a connection that closes is replaced by one to the node after it:
/// a lost node is left for the others at once, and comes back into the rotation by itself.
public actor BrokerLink {
    private let brokers: [AMQPConfiguration]
    private let topology: AMQPTopology
    private let logger: Logger
    private let metrics: RuntimeMetrics
    private var current: AMQPConnection?
    private var connecting: Task<AMQPConnection, any Error>?
    private var everConnected = false
    /// The node of the current connection, or of the last attempt.
    private var node = 0

    public init(configuration: AMQPConfiguration, topology: AMQPTopology, logger: Logger, metrics: RuntimeMetrics) {
        self.init(brokers: [configuration], topology: topology, logger: logger, metrics: metrics)
    }

    /// A link to the first of `brokers` that answers; `brokers` must not be empty.
    public init(brokers: [AMQPConfiguration], topology: AMQPTopology, logger: Logger, metrics: RuntimeMetrics) {
        precondition(!brokers.isEmpty, "a broker link needs at least one broker")
        self.brokers = brokers
        self.topology = topology
        self.logger = logger
        self.metrics = metrics
    }

    /// Whether the current connection is open (for readiness).
    public var isConnected: Bool { current?.isOpen ?? false }

    /// The longest pause between two connection attempts: a broker that is back is found within
    /// about this long, however long it was away.
    static let maximumBackoff = Duration.seconds(1)

    /// An open connection: the current one, or a new one once the broker answers. Retries with
    /// exponential backoff (50 ms up to ``maximumBackoff``, each pause between half and all of
    /// that) until it succeeds or the task is cancelled; bad credentials or URLs are retried too,
    /// but logged as errors.
    public func connection() async throws -> AMQPConnection {
        if let current, current.isOpen { return current }
        if let connecting { return try await connecting.value }
        // After a lost connection, start with the next node: the last one likely went away.
        if everConnected && brokers.count > 1 { node = (node + 1) % brokers.count }
        let task = Task { try await self.connectWithBackoff() }
        connecting = task
        defer { connecting = nil }
        let connection = try await task.value
        current = connection
        if everConnected { metrics.reconnected("amqp") }
        everConnected = true
        return connection
    }

    /// The current connection when it is open; otherwise nil at once, with a reconnection
    /// started in the background (for callers that must answer now, like the gateway).
    public func connectedNow() -> AMQPConnection? {
        if let current, current.isOpen { return current }
        if connecting == nil { Task { _ = try? await self.connection() } }
        return nil
    }

    private func connectWithBackoff() async throws -> AMQPConnection {
        var delay = Duration.milliseconds(50)
        var failures = 0
        while true {
            let configuration = brokers[node]
            do {
                let connection = try await AMQPConnection.connect(configuration, logger: logger)
                try await connection.declare(topology)
                logger.info("connected to RabbitMQ", metadata: ["mingus.amqp.broker": "\(configuration.redactedDescription)"])
                return connection
            } catch {
                node = (node + 1) % brokers.count
                let level: Logger.Level = (error as? AMQPError)?.isRecoverable == false ? .error : .warning
                // The first five attempts, then one in ten: a long outage does not flood the log.
                failures += 1
                if failures <= 5 || failures % 10 == 0 {
                    logger.log(level: level, "cannot reach RabbitMQ; retrying", metadata: [
                        "mingus.amqp.broker": "\(configuration.redactedDescription)", "mingus.error": "\(error)", "mingus.retry_in_ms": "\(RetryPolicy.milliseconds(delay))",
                        "mingus.attempts": "\(failures)",
                    ])
                }
                try await Task.sleep(for: delay * Double.random(in: 0.5...1.0))
                delay = min(delay * 2, Self.maximumBackoff)
            }
        }
    }

    /// Closes `connection` if it is still the current one, so that the next use opens another
    /// (a node that refuses every message after a failover is left for the next one).
    public func discard(_ connection: AMQPConnection) async {
        guard let current, current === connection else { return }
        self.current = nil
        await connection.close()
    }

    /// Publishes with confirms on the current connection, reconnecting first if needed.
    /// A refused message (`basic.nack`) leaves the connection for another one.
    public func publish(_ message: AMQPMessage, exchange: String, routingKey: String) async throws {
        let connection = try await connection()
        do {
            try await connection.publish(message, exchange: exchange, routingKey: routingKey)
        } catch let error as AMQPError where error.kind == .nacked {
            await discard(connection)
            throw error
        }
    }

    /// Closes the connection for good.
    public func close() async {
        connecting?.cancel()
        await current?.close()
        current = nil
    }
}
