public import Foundation
public import MingusAlerts
public import MingusCore

/// One security rule of the log rules file: lines whose template matches `match`, counted per
/// service and per `source` (what the source pattern's first group captures in the line, when the
/// rule has one); `threshold` lines within `window` raise one `security_rule` anomaly.
public struct LogRule: Sendable {
    public var name: String
    public var description: String
    /// Tested against the line's template (its variable parts shown as `<*>`), once per template.
    public var match: NSRegularExpression
    /// Tested against the redacted line of a matching template; its first group is the source.
    public var source: NSRegularExpression?
    public var threshold: Int
    /// Counted in whole minutes: the minute of the line and the ones before it.
    public var window: Duration
    public var severity: AlertSeverity

    /// The window in whole minutes (at least one).
    var windowMinutes: Int64 { max(1, (window.inMilliseconds + 59_999) / 60_000) }

    /// What the source pattern captures in `message`, or "" when the rule counts no sources or
    /// the line names none.
    func source(of message: String) -> String {
        guard let source else { return "" }
        let range = NSRange(message.startIndex..., in: message)
        guard let found = source.firstMatch(in: message, range: range) else { return "" }
        let group = found.numberOfRanges > 1 ? found.range(at: 1) : found.range
        guard group.location != NSNotFound, let text = Range(group, in: message) else { return "" }
        return String(message[text].prefix(200))
    }

    func matches(template: String) -> Bool {
        match.firstMatch(in: template, range: NSRange(template.startIndex..., in: template)) != nil
    }
}

/// The security rules of the logs worker (`MINGUS_LOGS_RULES`, by default
/// `Deploy/log-rules.yaml`), read with the alert routing file's reader: every mistake stops the
/// worker at start with its file, line and setting.
///
/// ```yaml
/// rules:
///   - name: auth_failures
///     description: Repeated authentication failures from one source
///     match: '(?i)(failed password|authentication failure|invalid user)'
///     source: '(?:from|rhost=)\s*([0-9A-Fa-f.:]+)'
///     threshold: 5
///     window: 5m
///     severity: high
/// ```
public struct LogRules: Sendable {
    public var rules: [LogRule]

    public init(rules: [LogRule]) {
        self.rules = rules
    }

    /// Reads and checks the file at `path`.
    public static func load(path: String) throws(ConfigurationFileError) -> LogRules {
        return try LogRules(yaml: try ConfigurationReader.contents(of: path), file: path)
    }

    /// Reads and checks a rules document; `file` names it in errors.
    public init(yaml: String, file: String = "log-rules.yaml") throws(ConfigurationFileError) {
        let reader = ConfigurationReader(file: file)
        let document = try reader.document(yaml)
        let top = try reader.mapping(document, "", allowed: ["rules"])
        guard let list = top["rules"] else { throw reader.error(document, "", "rules is required") }
        var rules: [LogRule] = []
        for (index, node) in try reader.sequence(list.value, "rules").enumerated() {
            let path = "rules[\(index)]"
            let fields = try reader.mapping(node, path, allowed: ["name", "description", "match", "source", "threshold", "window", "severity"])
            func required(_ key: String) throws(ConfigurationFileError) -> YAMLNode {
                guard let entry = fields[key] else { throw reader.error(node, path, "\(key) is required") }
                return entry.value
            }
            let name = try reader.string(try required("name"), "\(path).name")
            guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                throw reader.error(try required("name"), "\(path).name", "use letters, digits, _ and - only")
            }
            if rules.contains(where: { $0.name == name }) {
                throw reader.error(try required("name"), "\(path).name", "rule '\(name)' is defined twice")
            }
            func regex(_ key: String) throws(ConfigurationFileError) -> NSRegularExpression {
                let value = try required(key)
                let pattern = try reader.string(value, "\(path).\(key)")
                do {
                    return try NSRegularExpression(pattern: pattern)
                } catch {
                    throw reader.error(value, "\(path).\(key)", "not a regular expression: \(pattern)")
                }
            }
            let threshold = try reader.number(try required("threshold"), "\(path).threshold")
            guard threshold == threshold.rounded(), threshold < 1_000_000 else {
                throw reader.error(try required("threshold"), "\(path).threshold", "expected a whole number of lines")
            }
            let window = try fields["window"].map { entry throws(ConfigurationFileError) in try reader.duration(entry.value, "\(path).window") }
                ?? .seconds(60)
            guard window >= .seconds(60), window <= .seconds(86_400) else {
                throw reader.error(fields["window"]!.value, "\(path).window", "expected a window from 1m to 24h")
            }
            var severity = AlertSeverity.high
            if let entry = fields["severity"] {
                let text = try reader.string(entry.value, "\(path).severity")
                guard let value = AlertSeverity(rawValue: text) else {
                    throw reader.error(entry.value, "\(path).severity",
                                       "expected one of: \(AlertSeverity.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                severity = value
            }
            rules.append(LogRule(
                name: name,
                description: try fields["description"].map { entry throws(ConfigurationFileError) in try reader.string(entry.value, "\(path).description") }
                    ?? name,
                match: try regex("match"), source: fields["source"] == nil ? nil : try regex("source"),
                threshold: Int(threshold), window: window, severity: severity))
        }
        self.rules = rules
    }
}
