import Foundation
public import Logging
public import MingusAMQP

/// The process's connection to RabbitMQ, reopened with backoff when it closes, with the
/// topology the process needs declared on every new connection.
public actor BrokerLink {
    private let configuration: AMQPConfiguration
    private let topology: AMQPTopology
    private let logger: Logger
    private let metrics: RuntimeMetrics
    private var current: AMQPConnection?
    private var connecting: Task<AMQPConnection, any Error>?
    private var everConnected = false

    public init(configuration: AMQPConfiguration, topology: AMQPTopology, logger: Logger, metrics: RuntimeMetrics) {
        self.configuration = configuration
        self.topology = topology
        self.logger = logger
        self.metrics = metrics
    }

    /// Whether the current connection is open (for readiness).
    public var isConnected: Bool { current?.isOpen ?? false }

    /// An open connection: the current one, or a new one once the broker answers. Retries with
    /// exponential backoff (100 ms to 10 s, with jitter) until it succeeds or the task is cancelled;
    /// bad credentials or URLs are retried too, but logged as errors.
    public func connection() async throws -> AMQPConnection {
        if let current, current.isOpen { return current }
        if let connecting { return try await connecting.value }
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
        var delay = Duration.milliseconds(100)
        while true {
            do {
                let connection = try await AMQPConnection.connect(configuration, logger: logger)
                try await connection.declare(topology)
                logger.info("connected to RabbitMQ", metadata: ["mingus.amqp.broker": "\(configuration.redactedDescription)"])
                return connection
            } catch {
                let level: Logger.Level = (error as? AMQPError)?.isRecoverable == false ? .error : .warning
                logger.log(level: level, "cannot reach RabbitMQ; retrying", metadata: [
                    "mingus.error": "\(error)", "mingus.retry_in_ms": "\(RetryPolicy.milliseconds(delay))",
                ])
                try await Task.sleep(for: delay * Double.random(in: 0.8...1.2))
                delay = min(delay * 2, .seconds(10))
            }
        }
    }

    /// Publishes with confirms on the current connection, reconnecting first if needed.
    public func publish(_ message: AMQPMessage, exchange: String, routingKey: String) async throws {
        let connection = try await connection()
        try await connection.publish(message, exchange: exchange, routingKey: routingKey)
    }

    /// Closes the connection for good.
    public func close() async {
        connecting?.cancel()
        await current?.close()
        current = nil
    }
}
