import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One open SMTP connection after the greeting, EHLO, STARTTLS and AUTH: ready for `MAIL FROM`.
/// Commands are written one at a time, each followed by its reply.
final class SMTPConnection: Sendable {
    let channel: any Channel
    private let replies: SMTPReplyHandler
    private let timeout: TimeAmount

    private init(channel: any Channel, replies: SMTPReplyHandler, timeout: Duration) {
        self.channel = channel
        self.replies = replies
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    /// Whether the server has not closed the connection.
    var isActive: Bool { channel.isActive }

    /// Connects and greets: EHLO, STARTTLS (or TLS from the first byte), EHLO again, AUTH.
    static func open(_ settings: SMTPServerSettings) async throws -> SMTPConnection {
        let replies = SMTPReplyHandler()
        let tls = settings.security == .none ? nil : try contexts.context(trusting: settings.caFile)
        let host = settings.host
        // SNI carries names only; a certificate for an IP address is checked against the peer's address.
        let serverName: String? = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        let implicit = settings.security == .implicit
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if implicit, let tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    try channel.pipeline.syncOperations.addHandler(replies)
                }
            }
            .connect(host: host, port: settings.port).get()
        let connection = SMTPConnection(channel: channel, replies: replies, timeout: settings.commandTimeout)
        do {
            try await connection.expect(220, after: nil)
            var capabilities = try await connection.expect(250, after: "EHLO \(settings.hello)")
            if settings.security == .starttls {
                guard capabilities.lines.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
                    throw SMTPReplyError(code: 554, text: "the server does not offer STARTTLS", command: "EHLO")
                }
                try await connection.expect(220, after: "STARTTLS")
                let context = tls!
                try await channel.eventLoop.submit {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                    try channel.pipeline.syncOperations.addHandler(handler, position: .first)
                }.get()
                capabilities = try await connection.expect(250, after: "EHLO \(settings.hello)")
            }
            if let username = settings.username, let password = settings.password {
                let mechanisms = capabilities.lines.first { $0.uppercased().hasPrefix("AUTH") }?.uppercased() ?? ""
                if mechanisms.contains("PLAIN") || !mechanisms.contains("LOGIN") {
                    let credentials = Data("\0\(username)\0\(password)".utf8).base64EncodedString()
                    try await connection.expect(235, after: "AUTH PLAIN \(credentials)", shown: "AUTH PLAIN ***")
                } else {
                    try await connection.expect(334, after: "AUTH LOGIN")
                    try await connection.expect(334, after: Data(username.utf8).base64EncodedString(), shown: "(username)")
                    try await connection.expect(235, after: Data(password.utf8).base64EncodedString(), shown: "(password)")
                }
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Writes `command` (nil: only waits, as for the greeting) and returns the reply when its
    /// code is one of `codes`; throws ``SMTPReplyError`` otherwise, or when no reply comes within
    /// the command timeout (the connection is then closed). `shown` replaces the command in
    /// errors (credentials, message text).
    @discardableResult
    func expect(_ codes: Set<Int>, after command: String?, shown: String? = nil) async throws -> SMTPReply {
        let name = shown ?? command.map { String($0.prefix(40)) } ?? "connecting"
        let channel = self.channel
        return try await withTaskCancellationHandler {
            if let command {
                try await channel.writeAndFlush(ByteBuffer(string: command + "\r\n")).get()
            }
            let reply = try await replies.next(on: channel, timeout: timeout, command: name).get()
            guard codes.contains(reply.code) else {
                throw SMTPReplyError(code: reply.code, text: String(reply.lines.joined(separator: " ").prefix(300)), command: name)
            }
            return reply
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    @discardableResult
    func expect(_ code: Int, after command: String?, shown: String? = nil) async throws -> SMTPReply {
        try await expect([code], after: command, shown: shown)
    }

    /// Closes the connection without QUIT.
    func close() {
        channel.close(promise: nil)
    }

    /// Sends QUIT (not waiting long for its answer) and closes.
    func quit() async {
        if channel.isActive {
            _ = try? await expect(221, after: "QUIT")
        }
        close()
    }

    /// TLS contexts by trusted CA file (nil: the system's), made once: making one reads and
    /// parses the trust roots, which costs more than a handshake.
    private static let contexts = TLSContextCache()
}

/// Client TLS contexts (TLS 1.2 or later, peer verified), one per set of trust roots.
private final class TLSContextCache: Sendable {
    private let contexts = Mutex<[String: NIOSSLContext]>([:])

    func context(trusting caFile: String?) throws -> NIOSSLContext {
        try contexts.withLock { contexts in
            if let context = contexts[caFile ?? ""] { return context }
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            if let caFile { configuration.trustRoots = .file(caFile) }
            let context = try NIOSSLContext(configuration: configuration)
            contexts[caFile ?? ""] = context
            return context
        }
    }
}

/// Frames replies: lines `250-…` continue, `250 …` ends one.
private struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply
    private var lines: [String] = []

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 4096 { throw SMTPReplyError(code: 0, text: "a reply line is too long", command: "reading", fromServer: false) }
            return .needMoreData
        }
        let length = end - buffer.readerIndex + 1
        var line = buffer.readString(length: length) ?? ""
        while line.hasSuffix("\n") || line.hasSuffix("\r") { line.removeLast() }
        guard line.count >= 3, let code = Int(line.prefix(3)) else {
            throw SMTPReplyError(code: 0, text: "not an SMTP reply: \(line.prefix(80))", command: "reading", fromServer: false)
        }
        lines.append(line.count > 4 ? String(line.dropFirst(4)) : "")
        if line.count > 3, line[line.index(line.startIndex, offsetBy: 3)] == "-" { return .continue }
        context.fireChannelRead(wrapInboundOut(SMTPReply(code: code, lines: lines)))
        lines = []
        return .continue
    }
}

/// Hands replies to whoever waits for the next one (replies that come first are kept).
private final class SMTPReplyHandler: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked: every property is touched only on the channel's event loop.
    typealias InboundIn = SMTPReply
    private var received: [SMTPReply] = []
    private var waiting: [EventLoopPromise<SMTPReply>] = []
    private var failure: (any Error)?

    /// The next reply; fails, and closes the channel, when none comes within `timeout`.
    func next(on channel: any Channel, timeout: TimeAmount, command: String) -> EventLoopFuture<SMTPReply> {
        let loop = channel.eventLoop
        return loop.flatSubmit {
            if !self.received.isEmpty { return loop.makeSucceededFuture(self.received.removeFirst()) }
            if let failure = self.failure { return loop.makeFailedFuture(failure) }
            let promise = loop.makePromise(of: SMTPReply.self)
            self.waiting.append(promise)
            let expiry = loop.scheduleTask(in: timeout) {
                self.fail(SMTPReplyError(code: 421, text: "no reply within \(timeout.nanoseconds / 1_000_000_000) s", command: command, fromServer: false))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in expiry.cancel() }
            return promise.futureResult
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        if waiting.isEmpty { received.append(reply) } else { waiting.removeFirst().succeed(reply) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SMTPReplyError(code: 421, text: "the server closed the connection", command: "reading", fromServer: false))
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        let promises = waiting
        waiting = []
        promises.forEach { $0.fail(error) }
    }
}
