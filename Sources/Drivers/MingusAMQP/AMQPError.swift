/// An AMQP failure: what kind, the broker's reply code and text when it sent one, and a
/// one-line message.
public struct AMQPError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Stable categories callers branch on.
    public enum Kind: String, Sendable {
        /// The URL could not be parsed.
        case invalidURL = "invalid_url"
        /// TCP or TLS connect, or the AMQP handshake, failed.
        case connectionFailed = "connection_failed"
        /// The broker refused the credentials.
        case authenticationFailed = "authentication_failed"
        /// The connection is closed (by the broker, the network, a missed heartbeat or `close()`).
        case connectionClosed = "connection_closed"
        /// The broker closed the channel, e.g. 404 for a missing exchange or queue.
        case channelClosed = "channel_closed"
        /// A mandatory message could not be routed to any queue.
        case returned
        /// The broker refused to take responsibility for a published message.
        case nacked
        /// The broker did not answer a publish within the publisher's timeout.
        case confirmTimeout = "confirm_timeout"
        /// The broker cancelled a consumer (its queue was deleted, for example).
        case consumerCancelled = "consumer_cancelled"
        /// Something the library reported that fits none of the above.
        case library
    }

    public var kind: Kind
    /// The AMQP reply code (e.g. 404, 406, 320) when the broker sent one.
    public var replyCode: Int?
    /// The broker's reply text when it sent one.
    public var replyText: String?
    /// One line for humans.
    public var message: String

    public init(_ kind: Kind, _ message: String, replyCode: Int? = nil, replyText: String? = nil) {
        self.kind = kind
        self.message = message
        self.replyCode = replyCode
        self.replyText = replyText
    }

    public var description: String {
        if let replyCode, let replyText {
            return "\(message): \(replyCode) \(replyText)"
        }
        return message
    }

    /// Whether a new connection may succeed where this one failed: true for network failures
    /// and closed connections, false for bad URLs and credentials.
    public var isRecoverable: Bool {
        switch kind {
        case .connectionFailed, .connectionClosed: true
        default: false
        }
    }
}
