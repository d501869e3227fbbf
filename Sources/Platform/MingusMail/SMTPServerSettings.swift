/// Where an SMTP submission server is and how to talk to it.
///
/// `security` says how the connection is protected: STARTTLS after EHLO (port 587), TLS from the
/// first byte (port 465), or not at all (local relays only). `username` and `password` turn on
/// AUTH (PLAIN, or LOGIN when the server offers only that). `caFile` is a PEM file of certificate
/// authorities to trust instead of the system's. `commandTimeout` bounds each wait for a reply.
public struct SMTPServerSettings: Sendable {
    /// How the connection is protected.
    public enum Security: String, Sendable { case starttls, implicit, none }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    /// The name sent with EHLO.
    public var hello: String
    public var caFile: String?
    public var commandTimeout: Duration

    public init(host: String, port: Int, security: Security, username: String? = nil, password: String? = nil,
                hello: String = "localhost", caFile: String? = nil, commandTimeout: Duration = .seconds(30)) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.hello = hello
        self.caFile = caFile
        self.commandTimeout = commandTimeout
    }

    /// Whether `text` looks like a mailbox SMTP can carry: `local@domain.tld`, no spaces,
    /// angle brackets or line breaks.
    public static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
            && !text.contains(where: { $0.isWhitespace || "<>\r\n,;\"()[]\\".contains($0) || !$0.isASCII || $0.asciiValue! < 32 })
    }
}

/// One message to send: the envelope (`from`, `recipients`) and the RFC 5322 text with CRLF
/// line ends (dot-stuffing is the session's job).
public struct OutgoingMail: Sendable {
    public var from: String
    public var recipients: [String]
    public var data: String

    public init(from: String, recipients: [String], data: String) {
        self.from = from
        self.recipients = recipients
        self.data = data
    }
}

/// One SMTP reply: its code and text lines.
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// `250 2.0.0 OK queued as …`, at most `limit` characters.
    public func text(limit: Int = 300) -> String {
        String("\(code) \(lines.joined(separator: " "))".prefix(limit))
    }
}

/// A reply other than the one expected, a lost connection (code 421) or a reply that could
/// not be read (code 0). 4yz and lost connections are worth retrying; 5yz is not.
public struct SMTPReplyError: Error, CustomStringConvertible, Sendable {
    public var code: Int
    public var text: String
    public var command: String
    /// Whether the server may already hold the message: the connection ended or timed out after
    /// the end of its data was written, before the reply was read.
    public var outcomeUnknown: Bool
    /// Whether the server sent this reply (false: the connection ended, timed out or sent
    /// something that is not a reply).
    public var fromServer: Bool

    public init(code: Int, text: String, command: String, outcomeUnknown: Bool = false, fromServer: Bool = true) {
        self.code = code
        self.text = text
        self.command = command
        self.outcomeUnknown = outcomeUnknown
        self.fromServer = fromServer
    }

    public var description: String { "SMTP \(code) after \(command): \(text)" }
    /// A 5yz reply: no retry can fix it.
    public var isPermanent: Bool { code >= 500 }
}
