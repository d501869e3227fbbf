public import Foundation
public import MingusCore

/// What the droplet monitoring stores per droplet and time: values derived from the Monitoring
/// API's series, each under a small code (`do_samples.metric`).
public enum DropletMetric: Int16, Sendable, CaseIterable {
    /// 100 × (1 − idle ÷ all) of the CPU time counters between two points.
    case cpuPercent = 1
    /// 100 × (1 − memory_available ÷ memory_total).
    case memoryUsedPercent = 2
    /// 100 × (1 − filesystem_free ÷ filesystem_size), over every filesystem.
    case diskUsedPercent = 3
    case load1 = 4
    /// Public interface, megabits per second.
    case bandwidthInMbps = 5
    case bandwidthOutMbps = 6

    public var name: String {
        switch self {
        case .cpuPercent: "cpu_percent"
        case .memoryUsedPercent: "memory_used_percent"
        case .diskUsedPercent: "disk_used_percent"
        case .load1: "load_1"
        case .bandwidthInMbps: "bandwidth_in_mbps"
        case .bandwidthOutMbps: "bandwidth_out_mbps"
        }
    }

    public init?(name: String) {
        guard let found = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = found
    }
}

/// One rule of the droplet rules file.
public struct DropletRule: Sendable {
    public enum Condition: Sendable, Equatable {
        /// The metric above `threshold` at every sample for `duration` (the newest sample when zero).
        case above(DropletMetric, Double)
        /// The droplet's status is `off`.
        case off
        /// An active droplet has sent no sample for `duration`.
        case notReporting
    }

    public var name: String
    public var description: String
    public var condition: Condition
    public var duration: Duration
    public var severity: IncidentSeverity
}

/// The droplet monitoring's settings and rules (`MINGUS_DO_RULES`, by default
/// `Deploy/droplet-rules.yaml`); every mistake stops the worker at start with its file, line
/// and setting. A breach of a rule is one alert (`dedup_key` `do:<rule>:<droplet id>`),
/// resolved when it clears; a breach of a `critical` rule also opens an incident.
///
/// ```yaml
/// poll:
///   tag: production      # only droplets with this tag (every droplet when absent)
///   lookback: 5m         # how far back each poll reads metrics
///   concurrency: 16      # metric requests in flight
/// rules:
///   - {name: cpu_high, metric: cpu_percent, above: 90, for: 5m, severity: high}
///   - {name: droplet_off, when: "off", severity: critical}
///   - {name: not_reporting, when: not_reporting, for: 10m, severity: high}
/// ```
public struct DropletRules: Sendable {
    public var tag: String?
    public var lookback: Duration
    public var concurrency: Int
    public var rules: [DropletRule]

    public init(tag: String? = nil, lookback: Duration = .seconds(300), concurrency: Int = 16, rules: [DropletRule]) {
        self.tag = tag
        self.lookback = lookback
        self.concurrency = concurrency
        self.rules = rules
    }

    /// Reads and checks the file at `path`.
    public static func load(path: String) throws(ConfigurationFileError) -> DropletRules {
        return try DropletRules(yaml: try ConfigurationReader.contents(of: path), file: path)
    }

    /// Reads and checks a rules document; `file` names it in errors.
    public init(yaml: String, file: String = "droplet-rules.yaml") throws(ConfigurationFileError) {
        let reader = ConfigurationReader(file: file)
        let document = try reader.document(yaml)
        let top = try reader.mapping(document, "", allowed: ["poll", "rules"])
        tag = nil
        lookback = .seconds(300)
        concurrency = 16
        if let poll = top["poll"] {
            let fields = try reader.mapping(poll.value, "poll", allowed: ["tag", "lookback", "concurrency"])
            if let entry = fields["tag"] { tag = try reader.string(entry.value, "poll.tag") }
            if let entry = fields["lookback"] {
                lookback = try reader.duration(entry.value, "poll.lookback")
                guard lookback >= .seconds(60), lookback <= .seconds(6 * 3600) else {
                    throw reader.error(entry.value, "poll.lookback", "expected from 1m to 6h")
                }
            }
            if let entry = fields["concurrency"] {
                let value = try reader.number(entry.value, "poll.concurrency")
                guard value == value.rounded(), (1...256).contains(value) else {
                    throw reader.error(entry.value, "poll.concurrency", "expected a whole number from 1 to 256")
                }
                concurrency = Int(value)
            }
        }
        var rules: [DropletRule] = []
        if let list = top["rules"] {
            for (index, node) in try reader.sequence(list.value, "rules").enumerated() {
                let path = "rules[\(index)]"
                let fields = try reader.mapping(node, path, allowed: ["name", "description", "metric", "above", "when", "for", "severity"])
                guard let nameNode = fields["name"]?.value else { throw reader.error(node, path, "name is required") }
                let name = try reader.string(nameNode, "\(path).name")
                guard name.range(of: "^[a-z][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
                    throw reader.error(nameNode, "\(path).name", "use lower-case letters, digits and _ only")
                }
                if rules.contains(where: { $0.name == name }) { throw reader.error(nameNode, "\(path).name", "rule '\(name)' is defined twice") }
                let condition: DropletRule.Condition
                switch (fields["metric"], fields["when"]) {
                case (let metric?, nil):
                    let metricName = try reader.string(metric.value, "\(path).metric")
                    guard let known = DropletMetric(name: metricName) else {
                        throw reader.error(metric.value, "\(path).metric",
                                           "expected one of: \(DropletMetric.allCases.map(\.name).joined(separator: ", "))")
                    }
                    guard let above = fields["above"] else { throw reader.error(node, path, "a metric rule needs above (its threshold)") }
                    condition = .above(known, try reader.number(above.value, "\(path).above"))
                case (nil, let when?):
                    switch try reader.string(when.value, "\(path).when") {
                    case "off": condition = .off
                    case "not_reporting": condition = .notReporting
                    default: throw reader.error(when.value, "\(path).when", "expected off or not_reporting")
                    }
                    if let above = fields["above"] { throw reader.error(above.value, "\(path).above", "only metric rules take a threshold") }
                default:
                    throw reader.error(node, path, "give either metric (with above) or when")
                }
                let duration = try fields["for"].map { entry throws(ConfigurationFileError) in try reader.duration(entry.value, "\(path).for") } ?? .zero
                guard duration <= .seconds(86_400) else { throw reader.error(fields["for"]!.value, "\(path).for", "expected at most 24h") }
                if condition == .notReporting, duration < .seconds(60) {
                    throw reader.error(node, path, "not_reporting needs for: of at least 1m")
                }
                var severity = IncidentSeverity.high
                if let entry = fields["severity"] {
                    let text = try reader.string(entry.value, "\(path).severity")
                    guard let value = IncidentSeverity(rawValue: text) else {
                        throw reader.error(entry.value, "\(path).severity", "expected one of: low, medium, high, critical")
                    }
                    severity = value
                }
                rules.append(DropletRule(
                    name: name,
                    description: try fields["description"].map { entry throws(ConfigurationFileError) in try reader.string(entry.value, "\(path).description") } ?? name,
                    condition: condition, duration: duration, severity: severity))
            }
        }
        self.rules = rules
    }
}
