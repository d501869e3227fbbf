import Foundation
public import Logging
internal import Synchronization

/// A connection to RabbitMQ over librabbitmq-c, owned by one dedicated thread.
///
/// The thread does every librabbitmq call for the connection, its socket and its channels, and
/// services heartbeats while the callers' tasks do anything else, so a job blocked elsewhere
/// never lets the broker drop the connection. Callers talk to it through async methods.
///
/// Channel 1 publishes in confirm mode, channel 2 carries declarations and queue operations,
/// and each consumer gets a channel of its own. A broker-side channel error (for example 404 on
/// a missing exchange) fails only the calls it concerns; the channel is reopened on next use.
/// A connection error is final: every pending call fails with an ``AMQPError`` whose
/// ``AMQPError/isRecoverable`` tells whether a new connection may succeed.
public final class AMQPConnection: Sendable {
    /// Something that happened to the connection as a whole.
    public enum Event: Sendable, Equatable {
        /// The broker stopped reading from this connection (resource alarm), with its reason.
        case blocked(String)
        /// The broker reads from this connection again.
        case unblocked
        /// The connection is closed; nil when `close()` closed it.
        case closed(AMQPError?)
    }

    let core: ConnectionCore

    /// Something that happened to the connection, for one subscriber.
    public let events: AsyncStream<Event>

    private init(core: ConnectionCore, events: AsyncStream<Event>) {
        self.core = core
        self.events = events
    }

    deinit {
        core.requestClose()
    }

    /// Opens a connection, logs in and starts the connection's thread.
    public static func connect(_ configuration: AMQPConfiguration, logger: Logger) async throws -> AMQPConnection {
        let (events, eventContinuation) = AsyncStream<Event>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let core = ConnectionCore(configuration: configuration, logger: logger, events: eventContinuation)
        try await core.start()
        return AMQPConnection(core: core, events: events)
    }

    /// Whether the connection is still open.
    public var isOpen: Bool { core.closedError == nil && !core.isClosed }

    /// Whether the broker currently blocks publishing on this connection.
    public var isBlocked: Bool { core.isBlocked }

    /// Publishes a message and waits until the broker confirms it.
    ///
    /// Many publishes may be in flight at once; each caller is resumed when its own message is
    /// confirmed (`basic.ack`) or refused. With `mandatory`, a message no queue takes fails with
    /// kind `.returned` and the broker's reply (312 NO_ROUTE).
    public func publish(
        _ message: AMQPMessage,
        exchange: String,
        routingKey: String,
        mandatory: Bool = false,
        confirmTimeout: Duration? = nil
    ) async throws {
        let deadline = confirmTimeout.map { ContinuousClock.now + $0 }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            core.submit(continuation) { worker in
                worker.publish(message, exchange: exchange, routingKey: routingKey, mandatory: mandatory,
                               deadline: deadline, continuation: continuation)
            }
        }
    }

    /// Declares exchanges, then queues, then bindings; idempotent.
    public func declare(_ topology: AMQPTopology) async throws {
        try await core.call { worker in try worker.declare(topology) }
    }

    /// A queue's depth and consumer count; fails with 404 when the queue does not exist.
    public func queueInfo(_ queue: String) async throws -> AMQPQueueInfo {
        try await core.call { worker in try worker.queueInfo(queue) }
    }

    /// Removes every ready message from a queue; returns how many.
    @discardableResult
    public func purgeQueue(_ queue: String) async throws -> UInt32 {
        try await core.call { worker in try worker.purgeQueue(queue) }
    }

    /// Deletes a queue and the messages in it.
    public func deleteQueue(_ queue: String) async throws {
        try await core.call { worker in try worker.deleteQueue(queue) }
    }

    /// Deletes an exchange.
    public func deleteExchange(_ exchange: String) async throws {
        try await core.call { worker in try worker.deleteExchange(exchange) }
    }

    /// Takes one message from a queue without a consumer (`basic.get`), or nil when it is
    /// empty. The message must be settled like a delivery.
    public func get(queue: String) async throws -> AMQPDelivery? {
        try await core.call { worker in try worker.get(queue: queue) }
    }

    /// Starts consuming a queue with manual acknowledgements and the given prefetch.
    public func consume(queue: String, prefetch: UInt16) async throws -> AMQPConsumer {
        let (stream, continuation) = AsyncThrowingStream<AMQPDelivery, any Error>.makeStream()
        let channel = try await core.call { worker in
            try worker.consume(queue: queue, prefetch: prefetch, continuation: continuation)
        }
        let core = self.core
        continuation.onTermination = { termination in
            if case .cancelled = termination { core.submitIgnoringClosed { $0.cancelConsumer(channel: channel) } }
        }
        return AMQPConsumer(deliveries: stream, channel: channel, core: core)
    }

    /// Closes the connection: pending calls fail, consumers finish, the thread ends.
    public func close() async {
        await core.close()
    }

    /// Waits until the connection is closed, and returns the error that closed it (nil when
    /// `close()` did).
    public func closed() async -> AMQPError? {
        await core.waitUntilClosed()
    }
}

/// A consumer's deliveries, in order; the sequence ends with an error when the channel or the
/// connection closes.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery

    let deliveries: AsyncThrowingStream<AMQPDelivery, any Error>
    let channel: UInt16
    let core: ConnectionCore

    public func makeAsyncIterator() -> AsyncThrowingStream<AMQPDelivery, any Error>.AsyncIterator {
        deliveries.makeAsyncIterator()
    }

    /// Stops the broker delivering to this consumer; unsettled deliveries are requeued by the
    /// broker when the channel closes.
    public func cancel() async {
        try? await core.call { worker in worker.cancelConsumer(channel: channel) }
    }
}
