/// Exchanges, queues and bindings to declare together; declaring is idempotent as long as the
/// arguments do not change (a changed argument is refused by the broker with 406).
public struct AMQPTopology: Sendable, Equatable {
    /// An exchange to declare.
    public struct Exchange: Sendable, Equatable {
        /// The routing algorithm of an exchange.
        public enum Kind: String, Sendable { case direct, topic, fanout, headers }
        public var name: String
        public var kind: Kind
        public var durable: Bool = true
        public var arguments: [String: AMQPFieldValue] = [:]

        public init(name: String, kind: Kind, durable: Bool = true, arguments: [String: AMQPFieldValue] = [:]) {
            self.name = name
            self.kind = kind
            self.durable = durable
            self.arguments = arguments
        }
    }

    /// A queue to declare.
    public struct Queue: Sendable, Equatable {
        public var name: String
        public var durable: Bool = true
        public var exclusive: Bool = false
        public var autoDelete: Bool = false
        public var arguments: [String: AMQPFieldValue] = [:]

        public init(name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
                    arguments: [String: AMQPFieldValue] = [:]) {
            self.name = name
            self.durable = durable
            self.exclusive = exclusive
            self.autoDelete = autoDelete
            self.arguments = arguments
        }

        /// A durable quorum queue; quorum queues need an explicit delivery limit on RabbitMQ 3.10.
        public static func quorum(
            _ name: String,
            deliveryLimit: Int = 20,
            deadLetterExchange: String? = nil,
            deadLetterRoutingKey: String? = nil,
            messageTTL: Duration? = nil
        ) -> Queue {
            var arguments: [String: AMQPFieldValue] = [
                "x-queue-type": "quorum",
                "x-delivery-limit": .int(Int64(deliveryLimit)),
            ]
            if let deadLetterExchange {
                arguments["x-dead-letter-exchange"] = .string(deadLetterExchange)
                // At-least-once dead-lettering: the message leaves only once the target confirms it.
                arguments["x-dead-letter-strategy"] = "at-least-once"
                arguments["x-overflow"] = "reject-publish"
            }
            if let deadLetterRoutingKey { arguments["x-dead-letter-routing-key"] = .string(deadLetterRoutingKey) }
            if let messageTTL {
                arguments["x-message-ttl"] = .int(Int64(messageTTL.components.seconds * 1000
                    + messageTTL.components.attoseconds / 1_000_000_000_000_000))
            }
            return Queue(name: name, arguments: arguments)
        }
    }

    /// A binding of a queue to an exchange.
    public struct Binding: Sendable, Equatable {
        public var queue: String
        public var exchange: String
        public var routingKey: String

        public init(queue: String, exchange: String, routingKey: String) {
            self.queue = queue
            self.exchange = exchange
            self.routingKey = routingKey
        }
    }

    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]

    public init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    /// This topology followed by `others`' exchanges, queues and bindings, in order.
    public func merging(_ others: [AMQPTopology]) -> AMQPTopology {
        var merged = self
        for other in others {
            merged.exchanges += other.exchanges
            merged.queues += other.queues
            merged.bindings += other.bindings
        }
        return merged
    }
}

/// A queue's depth and consumer count, from a passive declare.
public struct AMQPQueueInfo: Sendable, Equatable {
    public var name: String
    public var messageCount: UInt32
    public var consumerCount: UInt32
}
