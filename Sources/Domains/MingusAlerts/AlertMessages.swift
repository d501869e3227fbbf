public import Foundation
import MingusCore

/// How urgent an alert is.
public enum AlertSeverity: String, Codable, Sendable, CaseIterable, Comparable {
    case critical, high, medium, low, info

    /// Most urgent first.
    var rank: Int { Self.allCases.firstIndex(of: self)! }

    public static func < (lhs: AlertSeverity, rhs: AlertSeverity) -> Bool { lhs.rank > rhs.rank }
}

/// Whether an alert is still going on.
public enum AlertStatus: String, Codable, Sendable, CaseIterable {
    case firing, resolved
}

/// `alerts.ingest`: an alert from the gateway or another worker (schema
/// `Contracts/schemas/alerts.ingest.v1.json`). The job id is the event's id.
public struct AlertJob: Codable, Sendable, Equatable {
    public static let type = "alerts.ingest"

    public var status: AlertStatus
    public var severity: AlertSeverity
    public var title: String
    public var description: String
    public var labels: [String: String]
    public var source: String
    public var dedupKey: String?
    public var receivedAt: Date

    public init(status: AlertStatus, severity: AlertSeverity, title: String, description: String, labels: [String: String],
                source: String, dedupKey: String?, receivedAt: Date) {
        self.status = status
        self.severity = severity
        self.title = title
        self.description = description
        self.labels = labels
        self.source = source
        self.dedupKey = dedupKey
        self.receivedAt = receivedAt
    }

    /// Labels set from the alert's own fields; an alert's `labels` cannot carry them.
    public static let reservedLabels: Set<String> = ["alertname", "severity", "source"]
    public static let maxTitle = 256
    public static let maxDescription = 16_384
    public static let maxLabels = 64
    public static let maxLabelValue = 1024

    /// What routes, silences and inhibition rules match: the labels plus `alertname` (the
    /// title), `severity` and `source`.
    public var matchLabels: [String: String] {
        labels.merging(["alertname": title, "severity": severity.rawValue, "source": source]) { _, own in own }
    }

    /// Identifies the same alert across repeats: the dedup key, or a hash of title and labels.
    public var fingerprint: String {
        if let dedupKey { return "key:" + dedupKey }
        let canonical = ([title] + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: "\u{1F}")
        return "labels:" + sha256Hex(canonical).prefix(32)
    }

    /// The first rule the alert breaks, naming its field, or nil. Lengths count Unicode code
    /// points, as the HTTP contract's JSON Schema does.
    public func violation() -> AlertFieldError? {
        let titleLength = title.trimmingCharacters(in: .whitespacesAndNewlines).count
        if titleLength == 0 { return AlertFieldError(field: "title", rule: "required", message: "title must not be empty") }
        if title.unicodeScalars.count > Self.maxTitle {
            return AlertFieldError(field: "title", rule: "length", message: "title must be at most \(Self.maxTitle) characters")
        }
        if description.unicodeScalars.count > Self.maxDescription {
            return AlertFieldError(field: "description", rule: "length",
                                   message: "description must be at most \(Self.maxDescription) characters")
        }
        if source.isEmpty || source.count > 128 || !source.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._:/-".contains($0)) }) {
            return AlertFieldError(field: "source", rule: "format",
                                   message: "source must be 1-128 of A-Z, a-z, 0-9, '.', '_', ':', '/' and '-'")
        }
        if let dedupKey, dedupKey.isEmpty || dedupKey.unicodeScalars.count > 255 || dedupKey.contains(where: { $0.isNewline }) {
            return AlertFieldError(field: "dedup_key", rule: "format", message: "dedup_key must be 1-255 characters on one line")
        }
        // PostgreSQL text and jsonb cannot hold U+0000: such an alert could never be stored.
        for (field, text) in [("title", title), ("description", description), ("dedup_key", dedupKey ?? "")] + labels.sorted(by: { $0.key < $1.key }).map({ ("labels.\($0.key)", $0.value) })
        where text.contains("\0") {
            return AlertFieldError(field: field, rule: "characters", message: "\(field) cannot contain U+0000")
        }
        if labels.count > Self.maxLabels {
            return AlertFieldError(field: "labels", rule: "size", message: "labels may have at most \(Self.maxLabels) entries")
        }
        for (name, value) in labels.sorted(by: { $0.key < $1.key }) {
            if !LabelMatcher.isLabelName(name) {
                return AlertFieldError(field: "labels", rule: "name", message: "label names must match [A-Za-z_][A-Za-z0-9_]* (at most 128)")
            }
            if Self.reservedLabels.contains(name) {
                return AlertFieldError(field: "labels.\(name)", rule: "reserved",
                                       message: "\(name) is set from the alert's own fields and cannot be a label")
            }
            if value.unicodeScalars.count > Self.maxLabelValue {
                return AlertFieldError(field: "labels.\(name)", rule: "length",
                                       message: "label values must be at most \(Self.maxLabelValue) characters")
            }
        }
        return nil
    }
}

/// A field of an alert that breaks a rule.
public struct AlertFieldError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var rule: String
    public var message: String
    public var description: String { message }
}

/// `alerts.flush`: time to notify a routing group's receiver of what changed.
struct FlushJob: Codable, Sendable {
    static let type = "alerts.flush"
    var groupId: UUID
}

/// One alert as a notification carries it.
public struct NotifiedAlert: Codable, Sendable, Equatable {
    public var id: UUID
    public var status: AlertStatus
    public var severity: AlertSeverity
    public var title: String
    public var description: String
    public var labels: [String: String]
    public var source: String
    public var startsAt: Date
    public var endsAt: Date?

    /// As the synthesized encoding, but with the id in lower case, as the HTTP API writes it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id.uuidString.lowercased(), forKey: .id)
        try container.encode(status, forKey: .status)
        try container.encode(severity, forKey: .severity)
        try container.encode(title, forKey: .title)
        try container.encode(description, forKey: .description)
        try container.encode(labels, forKey: .labels)
        try container.encode(source, forKey: .source)
        try container.encode(startsAt, forKey: .startsAt)
        try container.encodeIfPresent(endsAt, forKey: .endsAt)
    }
}

/// What a receiver is told: the alerts of one group, firing or all resolved.
public struct AlertNotification: Codable, Sendable, Equatable {
    /// `firing` while any alert of the group fires; `resolved` once all have ended.
    public var status: AlertStatus
    public var receiver: String
    public var groupLabels: [String: String]
    /// The same for every notification of a group: PagerDuty's `dedup_key`, Opsgenie's `alias`.
    public var groupKey: String
    public var alerts: [NotifiedAlert]

    /// The most urgent severity among the firing alerts (or all, once resolved).
    public var severity: AlertSeverity {
        let firing = alerts.filter { $0.status == .firing }
        return (firing.isEmpty ? alerts : firing).map(\.severity).max() ?? .info
    }

    /// `[FIRING:2] Disk full` / `[RESOLVED] Disk full`.
    public var headline: String {
        let firing = alerts.filter { $0.status == .firing }
        let first = (firing.first ?? alerts.first)?.title ?? "alert"
        let more = max((firing.isEmpty ? alerts : firing).count - 1, 0)
        let tail = more > 0 ? " (+\(more) more)" : ""
        return status == .firing ? "[FIRING:\(firing.count)] \(first)\(tail)" : "[RESOLVED] \(first)\(tail)"
    }
}

/// `alerts.deliver`: one notification to one channel target, routed to that channel's queue.
struct DeliveryJob: Codable, Sendable {
    static let type = "alerts.deliver"
    var deliveryId: UUID
    var channel: AlertChannel
    var receiver: String
    var target: String
    var notification: AlertNotification
    var groupId: UUID
}
