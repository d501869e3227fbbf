public import MingusAMQP

/// The kinds of worker, each with its own job queue and dead-letter queue.
public enum WorkerKind: String, CaseIterable, Sendable {
    case payments, breach, alerts, retention, logs

    /// The worker's durable quorum job queue.
    public var queue: String { "mingus.\(rawValue)" }
    /// Where the worker's jobs go when they can never succeed, with the reason in their headers.
    public var deadLetterQueue: String { "mingus.\(rawValue).dead" }
    /// Jobs for this worker are published to ``MingusTopology/jobsExchange`` with routing keys
    /// under this prefix (`payments.process`, `alerts.deliver.slack`, …).
    public var routingPattern: String { "\(rawValue).#" }
}

/// The broker topology every process agrees on (also described in `Contracts/asyncapi.yaml`).
///
/// - `mingus.jobs` (topic): jobs, routed by type prefix to one quorum queue per worker kind.
/// - `mingus.retry.<delay>` (fanout) → queue `mingus.retry.<delay>` with a fixed message TTL that
///   dead-letters back to `mingus.jobs` under the message's own routing key: the shared retry tiers.
/// - `mingus.dead` (direct): each worker queue dead-letters here with its kind as routing key, into
///   `mingus.<kind>.dead`.
public enum MingusTopology {
    public static let jobsExchange = "mingus.jobs"
    public static let deadLetterExchange = "mingus.dead"
    /// Delay of each retry tier, shortest first.
    public static let retryDelays: [Duration] = [.seconds(1), .seconds(5), .seconds(30), .seconds(300), .seconds(1800)]
    /// How often the broker may redeliver a job (crashes included) before dead-lettering it.
    public static let deliveryLimit = 20

    /// The exchange and queue of the retry tier with `delay`.
    public static func retryTier(_ delay: Duration) -> String {
        "mingus.retry.\(delay.components.seconds)s"
    }

    /// Everything to declare, for every worker kind.
    public static var all: AMQPTopology {
        var topology = AMQPTopology(exchanges: [
            .init(name: jobsExchange, kind: .topic),
            .init(name: deadLetterExchange, kind: .direct),
        ])
        for kind in WorkerKind.allCases {
            topology.queues.append(.quorum(
                kind.queue, deliveryLimit: deliveryLimit,
                deadLetterExchange: deadLetterExchange, deadLetterRoutingKey: kind.rawValue))
            topology.queues.append(.quorum(kind.deadLetterQueue, deliveryLimit: deliveryLimit))
            topology.bindings.append(.init(queue: kind.queue, exchange: jobsExchange, routingKey: kind.routingPattern))
            topology.bindings.append(.init(queue: kind.deadLetterQueue, exchange: deadLetterExchange, routingKey: kind.rawValue))
        }
        for delay in retryDelays {
            let tier = retryTier(delay)
            topology.exchanges.append(.init(name: tier, kind: .fanout))
            topology.queues.append(.quorum(tier, deliveryLimit: deliveryLimit, deadLetterExchange: jobsExchange, messageTTL: delay))
            topology.bindings.append(.init(queue: tier, exchange: tier, routingKey: ""))
        }
        return topology
    }

    /// Every queue name in ``all``, in declaration order.
    public static var queueNames: [String] { all.queues.map(\.name) }
}
