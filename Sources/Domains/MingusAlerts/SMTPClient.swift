import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// Sends one message over SMTP (RFC 5321): EHLO, STARTTLS or implicit TLS, AUTH PLAIN or LOGIN,
/// MAIL FROM, RCPT TO, DATA, QUIT. A 4yz reply or a lost connection is worth retrying; a 5yz is not.
struct SMTPClient: Sendable {
    let settings: EmailSettings

    /// Sends `message` (a complete RFC 5322 message with CRLF line ends); returns the server's
    /// last reply to DATA.
    func send(_ message: String, timeout: Duration) async -> AttemptResult {
        do {
            return try await withThrowingTaskGroup(of: AttemptResult.self) { group in
                group.addTask { try await self.converse(message) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return .retryable(detail: "SMTP: no answer within \(DurationText.format(timeout))", httpStatus: nil)
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
        } catch let reply as SMTPReplyError {
            return reply.code >= 500 ? .permanent(detail: reply.description, httpStatus: nil)
                                     : .retryable(detail: reply.description, httpStatus: nil)
        } catch {
            return .retryable(detail: "SMTP: \(error)", httpStatus: nil)
        }
    }

    private func converse(_ message: String) async throws -> AttemptResult {
        let replies = SMTPReplyHandler()
        let tls = try makeTLSContext()
        let host = settings.host
        // SNI carries names only; a certificate for an IP address is checked against the peer's address.
        let serverName: String? = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        let implicit = settings.security == .implicit
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
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
        let cancelled: @Sendable () -> Void = { channel.close(promise: nil) }
        return try await withTaskCancellationHandler {
            defer { channel.close(promise: nil) }
            let session = SMTPSession(channel: channel, replies: replies)
            try await session.expect(220, after: nil)
            var capabilities = try await session.expect(250, after: "EHLO \(settings.hello)")
            if settings.security == .starttls {
                guard capabilities.lines.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
                    throw SMTPReplyError(code: 554, text: "the server does not offer STARTTLS", command: "EHLO")
                }
                try await session.expect(220, after: "STARTTLS")
                let context = tls!
                try await channel.eventLoop.submit {
                    let handler = try NIOSSLClientHandler(context: context, serverHostname: serverName)
                    try channel.pipeline.syncOperations.addHandler(handler, position: .first)
                }.get()
                capabilities = try await session.expect(250, after: "EHLO \(settings.hello)")
            }
            if let username = settings.username, let password = settings.password {
                let mechanisms = capabilities.lines.first { $0.uppercased().hasPrefix("AUTH") }?.uppercased() ?? ""
                if mechanisms.contains("PLAIN") || !mechanisms.contains("LOGIN") {
                    let credentials = Data("\0\(username)\0\(password)".utf8).base64EncodedString()
                    try await session.expect(235, after: "AUTH PLAIN \(credentials)", shown: "AUTH PLAIN ***")
                } else {
                    try await session.expect(334, after: "AUTH LOGIN")
                    try await session.expect(334, after: Data(username.utf8).base64EncodedString(), shown: "(username)")
                    try await session.expect(235, after: Data(password.utf8).base64EncodedString(), shown: "(password)")
                }
            }
            try await session.expect(250, after: "MAIL FROM:<\(settings.from)>")
            for recipient in settings.to {
                try await session.expect([250, 251], after: "RCPT TO:<\(recipient)>")
            }
            try await session.expect(354, after: "DATA")
            let stuffed = message.split(separator: "\r\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(".") ? "." + $0 : String($0) }.joined(separator: "\r\n")
            let accepted = try await session.expect(250, after: stuffed + "\r\n.", shown: "(message)")
            _ = try? await session.expect(221, after: "QUIT")
            return .delivered(providerID: accepted.lines.last.map { String($0.prefix(200)) })
        } onCancel: {
            cancelled()
        }
    }

    private func makeTLSContext() throws -> NIOSSLContext? {
        guard settings.security != .none else { return nil }
        return try Self.contexts.context(trusting: settings.caFile)
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

/// One SMTP reply: its code and text lines.
struct SMTPReply: Sendable {
    var code: Int
    var lines: [String]
}

/// A reply with a code other than the one expected.
struct SMTPReplyError: Error, CustomStringConvertible {
    var code: Int
    var text: String
    var command: String
    var description: String { "SMTP \(code) after \(command): \(text)" }
}

/// Commands written one at a time, each followed by its reply.
private struct SMTPSession {
    let channel: any Channel
    let replies: SMTPReplyHandler

    @discardableResult
    func expect(_ codes: Set<Int>, after command: String?, shown: String? = nil) async throws -> SMTPReply {
        if let command {
            try await channel.writeAndFlush(ByteBuffer(string: command + "\r\n")).get()
        }
        let reply = try await replies.next(on: channel.eventLoop).get()
        guard codes.contains(reply.code) else {
            let name = shown ?? command.map { String($0.prefix(40)) } ?? "connecting"
            throw SMTPReplyError(code: reply.code, text: reply.lines.joined(separator: " ").prefixed(300), command: name)
        }
        return reply
    }

    @discardableResult
    func expect(_ code: Int, after command: String?, shown: String? = nil) async throws -> SMTPReply {
        try await expect([code], after: command, shown: shown)
    }
}

/// Frames replies: lines `250-…` continue, `250 …` ends one.
private struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply
    private var lines: [String] = []

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > 4096 { throw SMTPReplyError(code: 0, text: "a reply line is too long", command: "reading") }
            return .needMoreData
        }
        let length = end - buffer.readerIndex + 1
        var line = buffer.readString(length: length) ?? ""
        while line.hasSuffix("\n") || line.hasSuffix("\r") { line.removeLast() }
        guard line.count >= 3, let code = Int(line.prefix(3)) else {
            throw SMTPReplyError(code: 0, text: "not an SMTP reply: \(line.prefixed(80))", command: "reading")
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

    func next(on loop: any EventLoop) -> EventLoopFuture<SMTPReply> {
        loop.flatSubmit {
            if !self.received.isEmpty { return loop.makeSucceededFuture(self.received.removeFirst()) }
            if let failure = self.failure { return loop.makeFailedFuture(failure) }
            let promise = loop.makePromise(of: SMTPReply.self)
            self.waiting.append(promise)
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
        fail(SMTPReplyError(code: 421, text: "the server closed the connection", command: "reading"))
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        let promises = waiting
        waiting = []
        promises.forEach { $0.fail(error) }
    }
}

/// Builds the RFC 5322 message of an alert notification: `Date`, `From`, `To`, `Subject`,
/// a `Message-ID` stable across retries, and text and HTML alternatives.
enum EmailMessage {
    static func build(_ notification: AlertNotification, settings: EmailSettings, delivery: UUID, now: Date = Date()) -> String {
        let domain = settings.from.split(separator: "@").last.map(String.init) ?? "mingus.local"
        let boundary = "mingus-" + delivery.uuidString.lowercased()
        let text = ChannelRequests.text(notification, limit: 100_000)
        var headers = [
            "Date: \(rfc5322Date(now))",
            "From: \(settings.from)",
            "To: \(settings.to.joined(separator: ", "))",
            "Subject: \(encodedWord(notification.headline.prefixed(200)))",
            "Message-ID: <\(delivery.uuidString.lowercased())@\(domain)>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
        ]
        headers.append("X-Mingus-Group: \(notification.groupKey)")
        let parts = [
            part("text/plain; charset=utf-8", text),
            part("text/html; charset=utf-8", html(notification)),
        ]
        return headers.joined(separator: "\r\n") + "\r\n\r\n"
            + parts.map { "--\(boundary)\r\n\($0)" }.joined(separator: "\r\n") + "\r\n--\(boundary)--\r\n"
    }

    private static func part(_ type: String, _ content: String) -> String {
        let encoded = Data(content.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return "Content-Type: \(type)\r\nContent-Transfer-Encoding: base64\r\n\r\n\(encoded)"
    }

    static func html(_ notification: AlertNotification) -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var body = "<html><body><h2>\(escape(notification.headline))</h2>"
        for alert in notification.alerts {
            body += "<h3>[\(alert.severity.rawValue)] \(escape(alert.title)) (\(alert.status.rawValue))</h3>"
            if !alert.description.isEmpty { body += "<p>\(escape(alert.description))</p>" }
            let labels = alert.labels.sorted { $0.key < $1.key }.map { "<li>\(escape($0.key)): \(escape($0.value))</li>" }.joined()
            if !labels.isEmpty { body += "<ul>\(labels)</ul>" }
        }
        return body + "</body></html>"
    }

    /// `Mon, 23 Nov 2026 10:04:05 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter.string(from: date)
    }

    /// An RFC 2047 encoded word when the text is not plain ASCII.
    static func encodedWord(_ text: String) -> String {
        let plain = text.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 32 && $0.value != 127 }
        return plain ? text : "=?UTF-8?B?\(Data(text.utf8).base64EncodedString())?="
    }
}
