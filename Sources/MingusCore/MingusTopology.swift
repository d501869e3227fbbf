public import MingusAMQP

/// The kinds of worker, each with its own job queue and dead-letter queue.
public enum WorkerKind: String, CaseIterable, Sendable {
    case payments, breach, alerts, retention, logs

    /// The queues of this worker kind.
    public var queues: WorkerQueues { WorkerQueues(name: rawValue) }
}

/// The queues one worker consumes and dead-letters to, derived from its name.
public struct WorkerQueues: Sendable, Equatable {
    /// The worker's name: `payments`, or a test's own name.
    public var name: String

    public init(name: String) { self.name = name }

    /// The worker's durable quorum job queue.
    public var queue: String { "mingus.\(name)" }
    /// Where the worker's jobs go when they can never succeed, with the reason in their headers.
    public var deadLetterQueue: String { "mingus.\(name).dead" }
    /// Jobs for this worker are published to ``MingusTopology/jobsExchange`` with routing keys
    /// under this prefix (`payments.process`, `alerts.deliver.slack`, …).
    public var routingPattern: String { "\(name).#" }
    /// The routing key of its dead letters on ``MingusTopology/deadLetterExchange``.
    public var deadLetterRoutingKey: String { name }
}

/// The broker topology every process agrees on (also described in `Contracts/asyncapi.yaml`).
///
/// - `mingus.jobs` (topic): jobs, routed by type prefix to one quorum queue per worker.
/// - `mingus.retry.<n>s` (fanout) → queue `mingus.retry.<n>s` whose message TTL (1.25 × n s, the
///   jitter's ceiling) dead-letters back to `mingus.jobs` under the message's own routing key: the
///   shared retry tiers.
/// - `mingus.dead` (direct): each worker queue dead-letters here (the broker does it after
///   ``deliveryLimit`` redeliveries; the runtime does it for jobs that can never succeed) with its
///   name as routing key, into `mingus.<name>.dead`.
public enum MingusTopology {
    public static let jobsExchange = "mingus.jobs"
    public static let deadLetterExchange = "mingus.dead"
    /// Delay of each retry tier, shortest first.
    public static let retryDelays: [Duration] = [
        .seconds(1), .seconds(2), .seconds(5), .seconds(15), .seconds(60), .seconds(300), .seconds(1800),
    ]
    /// How often the broker may redeliver a job (crashes included) before dead-lettering it.
    public static let deliveryLimit = 20

    /// The exchange and queue name of the retry tier with `delay`.
    public static func retryTier(_ delay: Duration) -> String {
        "mingus.retry.\(delay.components.seconds)s"
    }

    /// The shared exchanges and retry tiers.
    public static var shared: AMQPTopology {
        var topology = AMQPTopology(exchanges: [
            .init(name: jobsExchange, kind: .topic),
            .init(name: deadLetterExchange, kind: .direct),
        ])
        for delay in retryDelays {
            let tier = retryTier(delay)
            topology.exchanges.append(.init(name: tier, kind: .fanout))
            topology.queues.append(.quorum(tier, deliveryLimit: deliveryLimit, deadLetterExchange: jobsExchange,
                                           messageTTL: delay * 1.25))
            topology.bindings.append(.init(queue: tier, exchange: tier, routingKey: ""))
        }
        return topology
    }

    /// One worker's job queue and dead-letter queue, with their bindings.
    public static func worker(_ queues: WorkerQueues) -> AMQPTopology {
        AMQPTopology(
            queues: [
                .quorum(queues.queue, deliveryLimit: deliveryLimit,
                        deadLetterExchange: deadLetterExchange, deadLetterRoutingKey: queues.deadLetterRoutingKey),
                .quorum(queues.deadLetterQueue, deliveryLimit: deliveryLimit),
            ],
            bindings: [
                .init(queue: queues.queue, exchange: jobsExchange, routingKey: queues.routingPattern),
                .init(queue: queues.deadLetterQueue, exchange: deadLetterExchange, routingKey: queues.deadLetterRoutingKey),
            ])
    }

    /// Everything to declare: the shared part and every worker kind.
    public static var all: AMQPTopology {
        var topology = shared
        for kind in WorkerKind.allCases {
            let part = worker(kind.queues)
            topology.queues += part.queues
            topology.bindings += part.bindings
        }
        return topology
    }

    /// Every queue name in ``all``, in declaration order.
    public static var queueNames: [String] { all.queues.map(\.name) }
}
