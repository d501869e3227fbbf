public import MingusAMQP

/// The queues one worker consumes and dead-letters to, derived from its name.
public struct WorkerQueues: Sendable, Equatable {
    /// The worker's name: `payments`, or a test's own name.
    public var name: String
    /// Jobs for this queue are published to ``MingusTopology/jobsExchange`` with routing keys
    /// matching this pattern: `<name>.#` unless given (`payments.process`, …).
    public var routingPattern: String
    /// The routing key of its dead letters on ``MingusTopology/deadLetterExchange``: the worker's
    /// name, or the owner's for a queue that shares its worker's dead-letter queue.
    public var deadLetterRoutingKey: String

    public init(name: String, routingPattern: String? = nil, deadLetterTo owner: String? = nil) {
        self.name = name
        self.routingPattern = routingPattern ?? "\(name).#"
        self.deadLetterRoutingKey = owner ?? name
    }

    /// The worker's durable quorum job queue.
    public var queue: String { "mingus.\(name)" }
    /// Where the worker's jobs go when they can never succeed, with the reason in their headers.
    public var deadLetterQueue: String { "mingus.\(deadLetterRoutingKey).dead" }
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

    /// The shared part and the queues of every worker in `workers`, as the gateway and
    /// `mingusctl topology declare` declare them.
    public static func declaring(_ workers: [WorkerQueues]) -> AMQPTopology {
        shared.merging(workers.map(worker))
    }
}
