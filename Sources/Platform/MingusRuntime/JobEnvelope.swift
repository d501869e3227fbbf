public import Foundation
public import MingusAMQP
import MingusCore

/// A job as it crosses the broker: the CloudEvents 1.0 AMQP binding (binary mode) plus the
/// runtime's delivery attempt.
///
/// `message_id` and `cloudEvents:id` carry the job id, `type` and `cloudEvents:type` its type,
/// `content_type` is `application/json`, `cloudEvents:source`, `cloudEvents:time` and
/// `cloudEvents:specversion` (1.0) describe where and when it was made, `cloudEvents:traceparent`
/// carries the trace id across hops, and `x-mingus-attempt` counts deliveries through the retry tiers.
public struct JobEnvelope: Sendable, Equatable {
    public var id: String
    public var type: String
    public var source: String
    public var time: Date
    /// 1 for the first delivery, incremented by each trip through a retry tier.
    public var attempt: Int
    public var traceID: String?
    public var body: [UInt8]

    public static let attemptHeader = "x-mingus-attempt"
    public static let reasonHeader = "x-mingus-reason"
    public static let errorHeader = "x-mingus-error"
    public static let originalQueueHeader = "x-mingus-original-queue"
    public static let originalRoutingKeyHeader = "x-mingus-original-routing-key"
    public static let deadLetteredAtHeader = "x-mingus-dead-lettered-at"

    public init(id: String = UUID().uuidString.lowercased(), type: String, source: String, time: Date = Date(),
                attempt: Int = 1, traceID: String? = nil, body: [UInt8]) {
        self.id = id
        self.type = type
        self.source = source
        self.time = time
        self.attempt = attempt
        self.traceID = traceID
        self.body = body
    }

    /// Reads the envelope of a delivery; nil when it lacks an id or a type.
    public init?(_ delivery: AMQPDelivery) {
        let properties = delivery.properties
        let headers = properties.headers
        guard let id = properties.messageID ?? headers["cloudEvents:id"]?.stringValue, !id.isEmpty,
              let type = properties.type ?? headers["cloudEvents:type"]?.stringValue, !type.isEmpty
        else { return nil }
        self.id = id
        self.type = type
        self.source = headers["cloudEvents:source"]?.stringValue ?? ""
        self.time = headers["cloudEvents:time"]?.stringValue.flatMap(Self.parseTime) ?? properties.timestamp ?? Date()
        self.attempt = Int(headers[Self.attemptHeader]?.intValue ?? 1)
        self.traceID = headers["cloudEvents:traceparent"]?.stringValue
        self.body = delivery.body
    }

    /// The AMQP message for this envelope, persistent, with `extraHeaders` added.
    public func message(extraHeaders: [String: AMQPFieldValue] = [:]) -> AMQPMessage {
        var headers: [String: AMQPFieldValue] = [
            "cloudEvents:specversion": "1.0",
            "cloudEvents:id": .string(id),
            "cloudEvents:type": .string(type),
            "cloudEvents:source": .string(source),
            "cloudEvents:time": .string(Self.formatTime(time)),
            Self.attemptHeader: .int(Int64(attempt)),
        ]
        if let traceID { headers["cloudEvents:traceparent"] = .string(traceID) }
        headers.merge(extraHeaders) { _, new in new }
        var properties = AMQPProperties(contentType: "application/json", headers: headers, persistent: true,
                                        messageID: id, type: type, timestamp: time)
        properties.appID = "mingus"
        return AMQPMessage(body: body, properties: properties)
    }

    /// `2026-11-26T23:59:59.123Z`: UTC with milliseconds.
    public static func formatTime(_ date: Date) -> String {
        RFC3339.format(date)
    }

    static func parseTime(_ text: String) -> Date? {
        RFC3339.date(text) ?? (try? Date(text, strategy: .iso8601))
    }
}
