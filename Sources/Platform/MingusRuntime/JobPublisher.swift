import Foundation
import Hummingbird
import MingusAMQP
import MingusCore
import MingusHTTP

/// Publishes the gateway's jobs with publisher confirms. When the broker is unreachable, blocked
/// (a resource alarm) or does not confirm in time, the request fails with 503 and `Retry-After`:
/// a job is never dropped silently.
public struct JobPublisher: Sendable {
    let broker: BrokerLink
    let confirmTimeout: Duration
    let reconnectWait: Duration
    let metrics: RuntimeMetrics?
    static let source = "/mingus/gateway"
    /// The `Retry-After` of a 503, in seconds.
    public static let retryAfterSeconds = 5

    /// A job waits up to `reconnectWait` for a lost connection to be replaced (another node of
    /// a cluster, or the broker back), and is published again within it when a node refused it; `metrics` counts the jobs refused, by
    /// reason (`mingus_publish_failures_total`).
    public init(broker: BrokerLink, confirmTimeout: Duration = .seconds(5), reconnectWait: Duration = .seconds(2),
                metrics: RuntimeMetrics? = nil) {
        self.broker = broker
        self.confirmTimeout = confirmTimeout
        self.reconnectWait = reconnectWait
        self.metrics = metrics
    }

    /// Publishes `body` as a job of `type` with id `id` and waits for the broker's confirm: 503
    /// with `Retry-After` when the broker stays unreachable past `reconnectWait`, is blocked, or
    /// is slower than the confirm timeout.
    public func publish<Body: Encodable>(type: String, id: String, body: Body, traceID: String?) async throws {
        try await publish(type: type, id: id, encodedBody: Array(try JSONEncoder.mingus.encode(body)), traceID: traceID)
    }

    /// Publishes a body already encoded as JSON (for bodies written with ``JSONWriter``).
    ///
    /// A job the broker refused (`basic.nack`, as a cluster node does while its queues elect a
    /// new leader) or whose connection was lost before the confirm is published again on another
    /// connection, within `reconnectWait`: the same message id, so that a copy the broker did
    /// take is applied once (the workers' inbox).
    public func publish(type: String, id: String, encodedBody: [UInt8], traceID: String?) async throws {
        let envelope = JobEnvelope(id: id, type: type, source: Self.source, traceID: traceID, body: encodedBody)
        let deadline = ContinuousClock.now + reconnectWait
        while true {
            var connection = await broker.connectedNow()
            while connection == nil && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(25))
                connection = await broker.connectedNow()
            }
            guard let connection else {
                throw unavailable("the message broker is unreachable", reason: "unreachable")
            }
            guard !connection.isBlocked else {
                throw unavailable("the message broker is refusing messages (resource alarm)", reason: "blocked")
            }
            do {
                try await connection.publish(envelope.message(), exchange: MingusTopology.jobsExchange, routingKey: type,
                                             mandatory: true, confirmTimeout: confirmTimeout)
                return
            } catch let error as AMQPError where error.kind == .confirmTimeout {
                throw unavailable("the message broker did not confirm the job in time", reason: "confirm_timeout")
            } catch let error as AMQPError where error.kind == .nacked || error.isRecoverable {
                // This connection's node refused or went away: the next attempt takes another.
                await broker.discard(connection)
                guard ContinuousClock.now < deadline else {
                    throw unavailable("the message broker refused the job", reason: "refused")
                }
            } catch {
                throw unavailable("the message broker refused the job", reason: "refused")
            }
        }
    }

    /// A queue's depth and consumer count (a passive declare); nil when the broker is unreachable
    /// or the queue does not exist.
    public func queueInfo(_ queue: String) async -> (messages: Int, consumers: Int)? {
        guard let connection = await broker.connectedNow(),
              let info = try? await connection.queueInfo(queue) else { return nil }
        return (Int(info.messageCount), Int(info.consumerCount))
    }

    private func unavailable(_ message: String, reason: String) -> APIError {
        metrics?.publishFailed(reason: reason)
        var error = APIError(.serviceUnavailable, code: "unavailable", message: "\(message); retry later")
        error.headers[.retryAfter] = "\(Self.retryAfterSeconds)"
        return error
    }
}
