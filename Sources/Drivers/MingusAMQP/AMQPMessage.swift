internal import CRabbitMQ
public import Foundation

/// The basic properties of an AMQP message that this project uses.
public struct AMQPProperties: Sendable, Equatable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: [String: AMQPFieldValue] = [:]
    /// Persistent messages are written to disk by the broker (delivery mode 2).
    public var persistent: Bool = true
    public var priority: UInt8?
    public var correlationID: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as the broker expects it.
    public var expiration: String?
    public var messageID: String?
    /// Seconds since 1970, the AMQP timestamp's resolution.
    public var timestamp: Date?
    public var type: String?
    public var appID: String?

    public init(
        contentType: String? = nil,
        headers: [String: AMQPFieldValue] = [:],
        persistent: Bool = true,
        messageID: String? = nil,
        type: String? = nil,
        timestamp: Date? = nil
    ) {
        self.contentType = contentType
        self.headers = headers
        self.persistent = persistent
        self.messageID = messageID
        self.type = type
        self.timestamp = timestamp
    }

    func cValue(in arena: CArena) -> amqp_basic_properties_t {
        var p = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let contentType { p.content_type = arena.bytes(contentType); flags |= UInt32(AMQP_BASIC_CONTENT_TYPE_FLAG) }
        if let contentEncoding { p.content_encoding = arena.bytes(contentEncoding); flags |= UInt32(AMQP_BASIC_CONTENT_ENCODING_FLAG) }
        if !headers.isEmpty { p.headers = arena.table(headers); flags |= UInt32(AMQP_BASIC_HEADERS_FLAG) }
        p.delivery_mode = persistent ? 2 : 1
        flags |= UInt32(AMQP_BASIC_DELIVERY_MODE_FLAG)
        if let priority { p.priority = priority; flags |= UInt32(AMQP_BASIC_PRIORITY_FLAG) }
        if let correlationID { p.correlation_id = arena.bytes(correlationID); flags |= UInt32(AMQP_BASIC_CORRELATION_ID_FLAG) }
        if let replyTo { p.reply_to = arena.bytes(replyTo); flags |= UInt32(AMQP_BASIC_REPLY_TO_FLAG) }
        if let expiration { p.expiration = arena.bytes(expiration); flags |= UInt32(AMQP_BASIC_EXPIRATION_FLAG) }
        if let messageID { p.message_id = arena.bytes(messageID); flags |= UInt32(AMQP_BASIC_MESSAGE_ID_FLAG) }
        if let timestamp {
            p.timestamp = UInt64(max(0, timestamp.timeIntervalSince1970))
            flags |= UInt32(AMQP_BASIC_TIMESTAMP_FLAG)
        }
        if let type { p.type = arena.bytes(type); flags |= UInt32(AMQP_BASIC_TYPE_FLAG) }
        if let appID { p.app_id = arena.bytes(appID); flags |= UInt32(AMQP_BASIC_APP_ID_FLAG) }
        p._flags = amqp_flags_t(flags)
        return p
    }

    init(_ p: amqp_basic_properties_t) {
        let flags = UInt32(p._flags)
        func has(_ flag: Int32) -> Bool { flags & UInt32(flag) != 0 }
        contentType = has(AMQP_BASIC_CONTENT_TYPE_FLAG) ? p.content_type.string : nil
        contentEncoding = has(AMQP_BASIC_CONTENT_ENCODING_FLAG) ? p.content_encoding.string : nil
        headers = has(AMQP_BASIC_HEADERS_FLAG) ? AMQPFieldValue.dictionary(p.headers) : [:]
        persistent = has(AMQP_BASIC_DELIVERY_MODE_FLAG) && p.delivery_mode == 2
        priority = has(AMQP_BASIC_PRIORITY_FLAG) ? p.priority : nil
        correlationID = has(AMQP_BASIC_CORRELATION_ID_FLAG) ? p.correlation_id.string : nil
        replyTo = has(AMQP_BASIC_REPLY_TO_FLAG) ? p.reply_to.string : nil
        expiration = has(AMQP_BASIC_EXPIRATION_FLAG) ? p.expiration.string : nil
        messageID = has(AMQP_BASIC_MESSAGE_ID_FLAG) ? p.message_id.string : nil
        timestamp = has(AMQP_BASIC_TIMESTAMP_FLAG) ? Date(timeIntervalSince1970: TimeInterval(p.timestamp)) : nil
        type = has(AMQP_BASIC_TYPE_FLAG) ? p.type.string : nil
        appID = has(AMQP_BASIC_APP_ID_FLAG) ? p.app_id.string : nil
    }
}

/// A message to publish: body bytes and properties.
public struct AMQPMessage: Sendable {
    public var body: [UInt8]
    public var properties: AMQPProperties

    public init(body: [UInt8], properties: AMQPProperties = AMQPProperties()) {
        self.body = body
        self.properties = properties
    }
}

/// A message the broker delivered to a consumer (or handed out by `basic.get`); settle it
/// with ``ack(multiple:)``, ``nack(requeue:multiple:)`` or ``reject(requeue:)`` from any task.
public struct AMQPDelivery: Sendable {
    public let body: [UInt8]
    public let properties: AMQPProperties
    public let exchange: String
    public let routingKey: String
    /// Whether the broker delivered this message before (to this or another consumer).
    public let redelivered: Bool
    /// Only meaningful on the channel that delivered it; see ``AMQPDeliveryTag``.
    public let tag: AMQPDeliveryTag
    /// Messages still in the queue after this one, for `basic.get` only.
    public let messageCount: UInt32?
    let settler: any DeliverySettler

    /// Acknowledges the message: the broker forgets it.
    public func ack(multiple: Bool = false) throws {
        try settler.settle(tag, .ack(multiple: multiple))
    }

    /// Negatively acknowledges: the broker requeues it, or dead-letters it when `requeue` is false.
    public func nack(requeue: Bool, multiple: Bool = false) throws {
        try settler.settle(tag, .nack(requeue: requeue, multiple: multiple))
    }

    /// Rejects the message: requeued, or dead-lettered when `requeue` is false.
    public func reject(requeue: Bool) throws {
        try settler.settle(tag, .reject(requeue: requeue))
    }
}

/// Identifies a delivery on one channel of one connection.
public struct AMQPDeliveryTag: Sendable, Hashable {
    public let channel: UInt16
    public let value: UInt64
    /// Which incarnation of the channel delivered it; a tag from an older one cannot be settled.
    let channelEpoch: UInt64
}

/// How a delivery is settled.
enum Settlement: Sendable {
    case ack(multiple: Bool)
    case nack(requeue: Bool, multiple: Bool)
    case reject(requeue: Bool)
}

/// What a delivery calls to settle itself; the connection implements it.
protocol DeliverySettler: Sendable {
    func settle(_ tag: AMQPDeliveryTag, _ settlement: Settlement) throws
}
