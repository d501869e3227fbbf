import Foundation
import MingusCore
public import MingusRuntime
import MingusMail

/// One place a receiver's notifications go: a channel with its settings (secrets resolved).
public struct ChannelTarget: Sendable {
    /// `<receiver>/<channel>/<index>`, as delivery records name it.
    public var name: String
    public var channel: AlertChannel
    public var settings: ChannelSettings
    /// Whether resolved notifications are sent (PagerDuty resolves and Opsgenie closes with them).
    public var sendResolved: Bool
    public var rateLimit: RateLimit
    /// How long one request may take before it counts as failed and is retried.
    public var timeout: Duration

    init(_ node: YAMLNode, path: String, name: String, channel: AlertChannel, reader: ConfigurationReader) throws(ConfigurationFileError) {
        let common: Set<String> = ["send_resolved", "rate_limit", "timeout"]
        let own: Set<String> = switch channel {
        case .email: ["to", "from", "smarthost", "tls", "auth_username", "auth_password_env", "auth_password_file", "hello", "ca_file"]
        case .sms: ["api_url", "account_sid", "auth_token_env", "auth_token_file", "from", "messaging_service_sid", "to"]
        case .slack: ["api_url_env", "api_url_file"]
        case .discord, .teams: ["webhook_url_env", "webhook_url_file"]
        case .webhook: ["url", "secret_env", "secret_file"]
        case .pagerduty: ["url", "routing_key_env", "routing_key_file"]
        case .opsgenie: ["api_url", "api_key_env", "api_key_file", "tags"]
        case .telegram: ["api_url", "bot_token_env", "bot_token_file", "chat_id"]
        }
        // Inline secrets are named in the allowed set only so that `secret` can refuse them clearly.
        let inlineSecrets: Set<String> = ["auth_password", "auth_token", "api_url", "webhook_url", "secret", "routing_key", "api_key", "bot_token"]
        let fields = try reader.mapping(node, path, allowed: common.union(own).union(inlineSecrets))
        self.name = name
        self.channel = channel
        sendResolved = try fields["send_resolved"].map { entry throws(ConfigurationFileError) in
            try reader.bool(entry.value, "\(path).send_resolved")
        } ?? true
        timeout = try fields["timeout"].map { entry throws(ConfigurationFileError) in
            try reader.duration(entry.value, "\(path).timeout")
        } ?? .seconds(10)
        rateLimit = RateLimit.providerDefault(channel)
        if let entry = fields["rate_limit"] {
            let limit = try reader.mapping(entry.value, "\(path).rate_limit", allowed: ["per_second", "burst"])
            if let value = limit["per_second"] { rateLimit.perSecond = try reader.number(value.value, "\(path).rate_limit.per_second") }
            if let value = limit["burst"] { rateLimit.burst = max(1, Int(try reader.number(value.value, "\(path).rate_limit.burst"))) }
        }

        func required(_ key: String) throws(ConfigurationFileError) -> String {
            guard let entry = fields[key] else { throw reader.error(node, path, "\(key) is required") }
            return try reader.string(entry.value, "\(path).\(key)")
        }
        func optional(_ key: String) throws(ConfigurationFileError) -> String? {
            guard let entry = fields[key] else { return nil }
            return try reader.string(entry.value, "\(path).\(key)")
        }
        func url(_ key: String, default fallback: String) throws(ConfigurationFileError) -> String {
            guard let entry = fields[key] else { return fallback }
            return try reader.url(try reader.string(entry.value, "\(path).\(key)"), entry.value, "\(path).\(key)")
        }
        func secretURL(_ key: String) throws(ConfigurationFileError) -> String {
            try reader.url(try reader.secret(fields, key, node, path)!, node, "\(path).\(key)")
        }
        switch channel {
        case .email:
            let smarthost = try required("smarthost")
            guard let colon = smarthost.lastIndex(of: ":"), let port = Int(smarthost[smarthost.index(after: colon)...]),
                  (1...65535).contains(port), colon > smarthost.startIndex else {
                throw reader.error(fields["smarthost"]!.value, "\(path).smarthost", "expected host:port")
            }
            let tlsText = try optional("tls") ?? (port == 465 ? "implicit" : "starttls")
            guard let tls = EmailSettings.Security(rawValue: tlsText) else {
                throw reader.error(fields["tls"]!.value, "\(path).tls", "expected starttls, implicit or none")
            }
            let to = try reader.strings(fields["to"]?.value ?? node, "\(path).to")
            for address in to + [try required("from")] where !EmailSettings.isAddress(address) {
                throw reader.error(node, path, "'\(address)' is not an email address")
            }
            let username = try optional("auth_username")
            let password = try reader.secret(fields, "auth_password", node, path, required: username != nil)
            settings = .email(EmailSettings(
                host: String(smarthost[..<colon]), port: port, security: tls, username: username, password: password,
                from: try required("from"), to: to, hello: try optional("hello") ?? "localhost", caFile: try optional("ca_file")))
        case .sms:
            let from = try optional("from")
            let service = try optional("messaging_service_sid")
            guard (from == nil) != (service == nil) else {
                throw reader.error(node, path, "give exactly one of from and messaging_service_sid")
            }
            let to = try required("to")
            for number in [to] + (from.map { [$0] } ?? []) where !TwilioSettings.isE164(number) {
                throw reader.error(node, path, "'\(number)' is not an E.164 phone number (+ and up to 15 digits)")
            }
            settings = .sms(TwilioSettings(
                baseURL: try url("api_url", default: "https://api.twilio.com"), accountSID: try required("account_sid"),
                authToken: try reader.secret(fields, "auth_token", node, path)!, from: from, messagingServiceSID: service, to: to))
        case .slack:
            settings = .slack(url: try secretURL("api_url"))
        case .discord:
            settings = .discord(url: try secretURL("webhook_url"))
        case .teams:
            settings = .teams(url: try secretURL("webhook_url"))
        case .webhook:
            guard fields["url"] != nil else { throw reader.error(node, path, "url is required") }
            let endpoint = try url("url", default: "")
            let secret = try reader.secret(fields, "secret", node, path)!
            guard let signer = try? WebhookSigner(secret: secret) else {
                throw reader.error(node, "\(path).secret", WebhookSecretError().description)
            }
            settings = .webhook(url: endpoint, signer: signer)
        case .pagerduty:
            let key = try reader.secret(fields, "routing_key", node, path)!
            guard key.count == 32 else { throw reader.error(node, "\(path).routing_key", "a PagerDuty routing key has 32 characters") }
            settings = .pagerduty(url: try url("url", default: "https://events.pagerduty.com/v2/enqueue"), routingKey: key)
        case .opsgenie:
            let tags = try fields["tags"].map { entry throws(ConfigurationFileError) in try reader.strings(entry.value, "\(path).tags") } ?? []
            settings = .opsgenie(baseURL: try url("api_url", default: "https://api.opsgenie.com"),
                                 apiKey: try reader.secret(fields, "api_key", node, path)!, tags: tags)
        case .telegram:
            settings = .telegram(baseURL: try url("api_url", default: "https://api.telegram.org"),
                                 botToken: try reader.secret(fields, "bot_token", node, path)!, chatID: try required("chat_id"))
        }
    }
}

/// A channel's settings.
public enum ChannelSettings: Sendable {
    case email(EmailSettings)
    case sms(TwilioSettings)
    /// A Slack incoming-webhook URL (the URL is the secret).
    case slack(url: String)
    /// A Discord webhook URL (`…/api/webhooks/{id}/{token}`).
    case discord(url: String)
    /// A Microsoft Teams Workflows trigger URL (carries its `sig=`).
    case teams(url: String)
    /// A Standard Webhooks endpoint and the secret requests are signed with.
    case webhook(url: String, signer: WebhookSigner)
    /// The PagerDuty Events API v2 enqueue URL and an integration's routing key.
    case pagerduty(url: String, routingKey: String)
    case opsgenie(baseURL: String, apiKey: String, tags: [String])
    case telegram(baseURL: String, botToken: String, chatID: String)
}

/// SMTP settings of an email target.
public struct EmailSettings: Sendable {
    /// How the connection is protected: STARTTLS after EHLO (port 587), TLS from the first byte
    /// (port 465), or not at all (local relays only).
    public enum Security: String, Sendable { case starttls, implicit, none }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    public var from: String
    public var to: [String]
    public var hello: String
    /// A PEM file of certificate authorities to trust instead of the system's.
    public var caFile: String?

    static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !text.contains(where: { $0.isWhitespace || "<>\r\n".contains($0) })
    }

    /// The server part, for ``SMTPSession``.
    func server(commandTimeout: Duration) -> SMTPServerSettings {
        SMTPServerSettings(host: host, port: port, security: SMTPServerSettings.Security(rawValue: security.rawValue)!, username: username, password: password, hello: hello,
                           caFile: caFile, commandTimeout: commandTimeout)
    }
}

/// Twilio Programmable Messaging settings of an SMS target.
public struct TwilioSettings: Sendable {
    public var baseURL: String
    public var accountSID: String
    public var authToken: String
    public var from: String?
    public var messagingServiceSID: String?
    public var to: String

    static func isE164(_ text: String) -> Bool {
        text.hasPrefix("+") && (2...16).contains(text.count) && text.dropFirst().allSatisfy(\.isASCII)
            && text.dropFirst().allSatisfy(\.isNumber) && !text.dropFirst().hasPrefix("0")
    }
}

/// A token bucket's refill rate and size.
public struct RateLimit: Sendable, Equatable {
    public var perSecond: Double
    public var burst: Int

    /// Within each provider's documented limits for one target: Slack and Telegram about one
    /// message a second (per webhook, per chat), Discord 5 per 2 s per webhook, PagerDuty 120
    /// events a minute per routing key, Twilio one message a second per long-code sender.
    static func providerDefault(_ channel: AlertChannel) -> RateLimit {
        switch channel {
        case .slack, .telegram: RateLimit(perSecond: 1, burst: 1)
        case .sms: RateLimit(perSecond: 1, burst: 1)
        case .discord: RateLimit(perSecond: 2.5, burst: 5)
        case .pagerduty: RateLimit(perSecond: 2, burst: 10)
        case .teams: RateLimit(perSecond: 4, burst: 4)
        case .opsgenie: RateLimit(perSecond: 10, burst: 10)
        case .email: RateLimit(perSecond: 10, burst: 10)
        case .webhook: RateLimit(perSecond: 50, burst: 50)
        }
    }
}
