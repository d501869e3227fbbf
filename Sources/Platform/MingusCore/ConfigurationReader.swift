public import Foundation

// Configuration files (the alert routing file, the log rules) are read through one reader, so
// every mistake is reported the same way: the file, the line, the setting's path, and why.

/// An invalid setting: the file, the line, where in the document, and why.
public struct ConfigurationFileError: ConfigurationProblem, Sendable {
    public var file: String
    public var line: Int
    public var path: String
    public var message: String

    public init(file: String, line: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.path = path
        self.message = message
    }

    public var description: String {
        "\(file):\(line): " + (path.isEmpty ? "" : "\(path): ") + message
    }
}

/// Reads typed settings from YAML nodes, turning every mistake into an error with its line.
public struct ConfigurationReader: Sendable {
    /// The file being read, for errors.
    public let file: String
    /// Where `_env` settings are looked up.
    public let environment: [String: String]

    public init(file: String, environment: [String: String] = [:]) {
        self.file = file
        self.environment = environment
    }

    /// The text of the configuration file at `path`; an error names the file when it cannot be read.
    public static func contents(of path: String) throws(ConfigurationFileError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationFileError(file: path, line: 0, path: "", message: "cannot read the file: \(error.localizedDescription)")
        }
    }

    /// The YAML document `yaml` of this reader's file; a syntax error names its line.
    public func document(_ yaml: String) throws(ConfigurationFileError) -> YAMLNode {
        do {
            return try YAML.parse(yaml, file: file)
        } catch {
            throw ConfigurationFileError(file: file, line: error.line, path: "", message: error.message)
        }
    }

    public func error(_ node: YAMLNode, _ path: String, _ message: String) -> ConfigurationFileError {
        ConfigurationFileError(file: file, line: node.line, path: path, message: message)
    }

    /// The entries of a mapping; a key outside `allowed` (when given) is an error at its line.
    public func mapping(_ node: YAMLNode, _ path: String, allowed: Set<String>?) throws(ConfigurationFileError) -> [String: YAMLEntry] {
        guard let entries = node.mapping else { throw error(node, path, "expected a mapping of settings") }
        var fields: [String: YAMLEntry] = [:]
        for entry in entries {
            if let allowed, !allowed.contains(entry.key) {
                throw ConfigurationFileError(file: file, line: entry.line, path: path,
                                             message: "unknown setting '\(entry.key)' (expected one of: \(allowed.sorted().joined(separator: ", ")))")
            }
            fields[entry.key] = entry
        }
        return fields
    }

    public func sequence(_ node: YAMLNode, _ path: String) throws(ConfigurationFileError) -> [YAMLNode] {
        guard let items = node.sequence else { throw error(node, path, "expected a list") }
        return items
    }

    public func string(_ node: YAMLNode, _ path: String) throws(ConfigurationFileError) -> String {
        guard let text = node.scalar, !text.isEmpty else { throw error(node, path, "expected a non-empty text value") }
        return text
    }

    /// A list of texts, or one text as a list of one.
    public func strings(_ node: YAMLNode, _ path: String) throws(ConfigurationFileError) -> [String] {
        if node.scalar != nil { return [try string(node, path)] }
        var values: [String] = []
        for (index, item) in try sequence(node, path).enumerated() { values.append(try string(item, "\(path)[\(index)]")) }
        return values
    }

    public func bool(_ node: YAMLNode, _ path: String) throws(ConfigurationFileError) -> Bool {
        switch node.scalar {
        case "true": return true
        case "false": return false
        default: throw error(node, path, "expected true or false")
        }
    }

    public func number(_ node: YAMLNode, _ path: String) throws(ConfigurationFileError) -> Double {
        guard let text = node.scalar, let value = Double(text), value.isFinite, value > 0 else {
            throw error(node, path, "expected a number above 0")
        }
        return value
    }

    public func duration(_ node: YAMLNode, _ path: String) throws(ConfigurationFileError) -> Duration {
        guard let text = node.scalar, let value = DurationText.parse(text) else {
            throw error(node, path, "expected a duration such as 30s, 5m, 4h or 1h30m")
        }
        return value
    }
}

/// Prometheus-style durations: `30s`, `5m`, `4h`, `1h30m`, `500ms`, `2d`, `1w`.
public enum DurationText {
    /// The duration written as `text`, or nil.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        var rest = Substring(text)
        var milliseconds: Int64 = 0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix(while: \.isASCII).prefix(while: \.isNumber)
            guard !digits.isEmpty, let number = Int64(digits), number < 1_000_000_000 else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }  // "ms" is tried before "m"
            rest = rest.dropFirst(unit.0.count)
            milliseconds += number * unit.1
        }
        return .milliseconds(milliseconds)
    }

    /// `1h30m`-style text for a duration (whole milliseconds).
    public static func format(_ duration: Duration) -> String {
        var milliseconds = duration.inMilliseconds
        if milliseconds == 0 { return "0s" }
        var text = ""
        for (unit, size) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000), ("ms", 1)] where milliseconds >= size {
            text += "\(milliseconds / size)\(unit)"
            milliseconds %= size
        }
        return text
    }
}
