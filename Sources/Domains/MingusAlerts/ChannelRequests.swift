import Foundation
import MingusCore
import MingusRuntime

/// An HTTP request to a provider, built from a notification.
struct ProviderRequest: Sendable {
    var url: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]
}

/// What one attempt at a delivery came to.
enum AttemptResult: Sendable, Equatable {
    /// Accepted; the provider's id for it when it gives one.
    case delivered(providerID: String?)
    /// 429: wait this long before the next request to the target.
    case throttled(retryAfter: Duration, detail: String)
    /// 5xx, a timeout, a refused connection: try again later.
    case retryable(detail: String, httpStatus: Int?)
    /// A 4xx (or SMTP 5yz) that no retry can fix, with the provider's message.
    case permanent(detail: String, httpStatus: Int?)

    var outcome: String {
        switch self {
        case .delivered: "delivered"
        case .throttled: "throttled"
        case .retryable: "retryable"
        case .permanent: "permanent"
        }
    }

    var httpStatus: Int? {
        switch self {
        case .retryable(_, let status), .permanent(_, let status): status
        case .throttled: 429
        case .delivered: nil
        }
    }

    var detail: String? {
        switch self {
        case .delivered: nil
        case .throttled(_, let detail), .retryable(let detail, _), .permanent(let detail, _): detail
        }
    }
}

/// Builds each HTTP provider's request as its API documents it, and reads its answers.
enum ChannelRequests {
    /// The request for `notification` to an HTTP channel target (`delivery` is the stable id
    /// for webhook signing and idempotency).
    static func request(_ settings: ChannelSettings, _ notification: AlertNotification, delivery: UUID,
                        now: Date = Date()) throws -> ProviderRequest {
        let json = [("content-type", "application/json")]
        switch settings {
        case .slack(let url):
            return ProviderRequest(url: url, headers: json, body: try encode(["text": .string(text(notification, limit: 3000))]))
        case .discord(let url):
            let separator = url.contains("?") ? "&" : "?"
            return ProviderRequest(url: url + separator + "wait=true", headers: json,
                                   body: try encode(["content": .string(text(notification, limit: 2000))]))
        case .teams(let url):
            return ProviderRequest(url: url, headers: json, body: try encode(adaptiveCard(notification)))
        case .webhook(let url, let signer):
            let payload = WebhookAlertPayload(type: "alert.\(notification.status.rawValue)",
                                              timestamp: JobEnvelope.formatTime(now), data: notification)
            let body = Array(try JSONEncoder.mingus.encode(payload))
            let signed = signer.headers(id: "msg_" + delivery.uuidString.lowercased(), timestamp: now, body: body)
            return ProviderRequest(url: url, headers: json + signed, body: body)
        case .pagerduty(let url, let routingKey):
            var event: JSON = [
                "routing_key": .string(routingKey),
                "event_action": .string(notification.status == .firing ? "trigger" : "resolve"),
                "dedup_key": .string(notification.groupKey),
            ]
            if notification.status == .firing {
                let first = notification.alerts.first { $0.status == .firing } ?? notification.alerts[0]
                event["payload"] = [
                    "summary": .string(String(notification.headline.prefix(1024))),
                    "source": .string(first.source),
                    "severity": .string(pagerDutySeverity(notification.severity)),
                    "custom_details": [
                        "alerts": .array(notification.alerts.map { .string("\($0.title): \($0.description)".prefixed(1000)) }),
                        "group_labels": .object(notification.groupLabels.mapValues(JSON.string)),
                    ],
                ]
            }
            return ProviderRequest(url: url, headers: json, body: try encode(event))
        case .opsgenie(let baseURL, let apiKey, let tags):
            let headers = json + [("authorization", "GenieKey \(apiKey)")]
            let alias = notification.groupKey
            if notification.status == .resolved {
                let path = "/v2/alerts/\(alias.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? alias)/close?identifierType=alias"
                return ProviderRequest(url: trimmed(baseURL) + path, headers: headers,
                                       body: try encode(["source": "mingus", "note": .string(notification.headline)]))
            }
            let body: JSON = [
                "message": .string(String(notification.headline.prefix(130))),
                "alias": .string(alias),
                "description": .string(text(notification, limit: 15000)),
                "priority": .string(opsgeniePriority(notification.severity)),
                "tags": .array(tags.map(JSON.string)),
                "details": .object(notification.groupLabels.mapValues(JSON.string)),
                "source": "mingus",
            ]
            return ProviderRequest(url: trimmed(baseURL) + "/v2/alerts", headers: headers, body: try encode(body))
        case .telegram(let baseURL, let botToken, let chatID):
            let chat: JSON = Int64(chatID).map(JSON.integer) ?? .string(chatID)
            return ProviderRequest(url: trimmed(baseURL) + "/bot\(botToken)/sendMessage", headers: json,
                                   body: try encode(["chat_id": chat, "text": .string(text(notification, limit: 4096))]))
        case .sms(let twilio):
            var form = [("To", twilio.to), ("Body", text(notification, limit: 1600))]
            if let from = twilio.from { form.append(("From", from)) }
            if let service = twilio.messagingServiceSID { form.append(("MessagingServiceSid", service)) }
            let credentials = Data("\(twilio.accountSID):\(twilio.authToken)".utf8).base64EncodedString()
            return ProviderRequest(
                url: trimmed(twilio.baseURL) + "/2010-04-01/Accounts/\(twilio.accountSID)/Messages.json",
                headers: [("content-type", "application/x-www-form-urlencoded"), ("authorization", "Basic \(credentials)")],
                body: Array(formEncode(form).utf8))
        case .email:
            throw ChannelError("email is not an HTTP channel")
        }
    }

    /// Reads a provider's answer: its success, its own 429 signal, or why it failed.
    static func classify(_ channel: AlertChannel, status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> AttemptResult {
        let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        let text = String(decoding: body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let message = (object?["message"] as? String) ?? (object?["description"] as? String) ?? (text.isEmpty ? "no body" : text)
        if (200...299).contains(status) {
            let id: String? = switch channel {
            case .discord: object?["id"] as? String
            case .pagerduty: object?["dedup_key"] as? String
            case .opsgenie: object?["requestId"] as? String
            case .sms: object?["sid"] as? String
            case .telegram: ((object?["result"] as? [String: Any])?["message_id"] as? Int).map(String.init)
            default: nil
            }
            if channel == .telegram, object?["ok"] as? Bool != true {
                return .retryable(detail: "Telegram answered \(status) without ok: \(message)", httpStatus: status)
            }
            return .delivered(providerID: id)
        }
        if status == 429 {
            return .throttled(retryAfter: retryAfter(headers: headers, object: object) ?? .seconds(1), detail: "429: \(message)")
        }
        if channel == .webhook {
            // Standard Webhooks: only 410 retires an endpoint; any other failure is retried.
            return status == 410 ? .permanent(detail: "410: the endpoint is gone", httpStatus: status)
                                 : .retryable(detail: "\(status): \(message)", httpStatus: status)
        }
        if status >= 500 || status == 408 { return .retryable(detail: "\(status): \(message)", httpStatus: status) }
        return .permanent(detail: "\(status): \(message)", httpStatus: status)
    }

    /// `Retry-After` in seconds, or the body's `retry_after` (Discord: seconds as a float;
    /// Telegram: `parameters.retry_after`).
    static func retryAfter(headers: [(name: String, value: String)], object: [String: Any]?) -> Duration? {
        func seconds(_ value: Double?) -> Duration? {
            guard let value, value.isFinite, value >= 0 else { return nil }
            return .milliseconds(Int64((min(value, 86_400) * 1000).rounded(.up)))
        }
        if let found = seconds((object?["retry_after"] as? NSNumber)?.doubleValue) { return found }
        if let found = seconds(((object?["parameters"] as? [String: Any])?["retry_after"] as? NSNumber)?.doubleValue) { return found }
        let header = headers.first { $0.name.lowercased() == "retry-after" }?.value
        return seconds(header.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) })
    }

    // MARK: - Message text

    /// The plain-text form: headline, then one block per alert, cut to `limit` characters.
    static func text(_ notification: AlertNotification, limit: Int) -> String {
        var lines = [notification.headline]
        for alert in notification.alerts {
            lines.append("")
            lines.append("\(alert.status == .firing ? "🔥" : "✅") [\(alert.severity.rawValue)] \(alert.title)")
            if !alert.description.isEmpty { lines.append(alert.description) }
            let labels = alert.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
            if !labels.isEmpty { lines.append("labels: \(labels)") }
        }
        return lines.joined(separator: "\n").prefixed(limit)
    }

    static func adaptiveCard(_ notification: AlertNotification) -> JSON {
        var body: [JSON] = [[
            "type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true,
            "text": .string(notification.headline),
            "color": .string(notification.status == .resolved ? "Good" : (notification.severity <= .medium ? "Warning" : "Attention")),
        ]]
        for alert in notification.alerts.prefix(20) {
            body.append(["type": "TextBlock", "wrap": true, "weight": "Bolder",
                         "text": .string("[\(alert.severity.rawValue)] \(alert.title)".prefixed(500))])
            if !alert.description.isEmpty {
                body.append(["type": "TextBlock", "wrap": true, "text": .string(alert.description.prefixed(1500))])
            }
            body.append(["type": "FactSet", "facts": .array(alert.labels.sorted { $0.key < $1.key }.prefix(10).map {
                ["title": .string($0.key), "value": .string($0.value.prefixed(200))]
            })])
        }
        return [
            "type": "message",
            "attachments": [[
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": [
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard", "version": "1.4", "body": .array(body),
                ],
            ]],
        ]
    }

    static func pagerDutySeverity(_ severity: AlertSeverity) -> String {
        switch severity {
        case .critical: "critical"
        case .high: "error"
        case .medium: "warning"
        case .low, .info: "info"
        }
    }

    static func opsgeniePriority(_ severity: AlertSeverity) -> String {
        switch severity {
        case .critical: "P1"
        case .high: "P2"
        case .medium: "P3"
        case .low: "P4"
        case .info: "P5"
        }
    }

    private static func trimmed(_ base: String) -> String {
        base.hasSuffix("/") ? String(base.dropLast()) : base
    }

    private static func encode(_ value: JSON) throws -> [UInt8] {
        Array(try JSONEncoder.sortedKeys.encode(value))
    }

    static func formEncode(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._*")
        return fields.map { name, value in
            let encoded = value.unicodeScalars.map { scalar -> String in
                if scalar == " " { return "+" }
                if scalar.isASCII && allowed.contains(scalar) { return String(scalar) }
                return String(scalar).utf8.map { String(format: "%%%02X", $0) }.joined()
            }.joined()
            return "\(name)=\(encoded)"
        }.joined(separator: "&")
    }
}

/// The Standard Webhooks body of an alert notification: `type`, `timestamp`, `data`.
struct WebhookAlertPayload: Encodable {
    var type: String
    var timestamp: String
    var data: AlertNotification
}

/// A channel that cannot be used as configured.
struct ChannelError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension String {
    /// At most `limit` characters, ending in `…` when cut.
    func prefixed(_ limit: Int) -> String {
        count <= limit ? self : String(prefix(limit - 1)) + "…"
    }
}

extension JSONEncoder {
    static var sortedKeys: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// A JSON value for building provider bodies.
indirect enum JSON: Encodable, Sendable, ExpressibleByStringLiteral, ExpressibleByDictionaryLiteral, ExpressibleByArrayLiteral,
    ExpressibleByBooleanLiteral {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case array([JSON])
    case object([String: JSON])
    case null

    init(stringLiteral value: String) { self = .string(value) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(dictionaryLiteral elements: (String, JSON)...) { self = .object(Dictionary(elements) { _, last in last }) }
    init(arrayLiteral elements: JSON...) { self = .array(elements) }

    subscript(key: String) -> JSON? {
        get { if case .object(let fields) = self { fields[key] } else { nil } }
        set { if case .object(var fields) = self { fields[key] = newValue; self = .object(fields) } }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }
}
