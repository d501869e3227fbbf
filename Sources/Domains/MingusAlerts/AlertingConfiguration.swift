public import Foundation
public import MingusCore

/// The alert routing file (`MINGUS_ALERTING_CONFIG`): receivers and their channel targets, the
/// routing tree, and inhibition rules, in Alertmanager's shape. Secrets are never in the file:
/// each secret setting is given as `<name>_env` (an environment variable) or `<name>_file`.
public struct AlertingConfiguration: Sendable {
    public var route: AlertRoute
    public var receivers: [String: AlertReceiver]
    public var inhibitRules: [InhibitRule]

    /// Reads and checks the file at `path`.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigurationFileError) -> AlertingConfiguration {
        return try AlertingConfiguration(yaml: try ConfigurationReader.contents(of: path), file: path, environment: environment)
    }

    /// Reads and checks a configuration; `file` names it in errors.
    public init(yaml: String, file: String = "alerting.yaml", environment: [String: String] = [:]) throws(ConfigurationFileError) {
        let reader = ConfigurationReader(file: file, environment: environment)
        let document = try reader.document(yaml)
        let top = try reader.mapping(document, "", allowed: ["route", "receivers", "inhibit_rules"])
        var receivers: [String: AlertReceiver] = [:]
        guard let receiverList = top["receivers"] else { throw reader.error(document, "", "receivers is required") }
        for (index, node) in try reader.sequence(receiverList.value, "receivers").enumerated() {
            let receiver = try AlertReceiver(node, path: "receivers[\(index)]", reader: reader)
            if receivers[receiver.name] != nil {
                throw reader.error(node, "receivers[\(index)].name", "receiver '\(receiver.name)' is defined twice")
            }
            receivers[receiver.name] = receiver
        }
        for receiver in receivers.values.sorted(by: { $0.name < $1.name }) {
            guard let fallback = receiver.fallback else { continue }
            if fallback == receiver.name || receivers[fallback] == nil {
                throw ConfigurationFileError(
                    file: file, line: receiver.fallbackLine, path: "receivers.\(receiver.name).fallback",
                    message: fallback == receiver.name ? "a receiver cannot be its own fallback" : "no receiver named '\(fallback)'")
            }
        }
        guard let routeNode = top["route"] else { throw reader.error(document, "", "route is required") }
        route = try AlertRoute(routeNode.value, path: "route", parent: nil, reader: reader, receivers: receivers)
        self.receivers = receivers
        inhibitRules = []
        if let rules = top["inhibit_rules"] {
            for (index, node) in try reader.sequence(rules.value, "inhibit_rules").enumerated() {
                inhibitRules.append(try InhibitRule(node, path: "inhibit_rules[\(index)]", reader: reader))
            }
        }
    }

    /// The routes an alert with `labels` goes to, Alertmanager's way: depth first, the first
    /// matching child (and the following ones while a match has `continue`), else the route itself.
    public func routes(for labels: [String: String]) -> [AlertRoute] {
        route.matching(labels)
    }

    /// A channel target by receiver and target name.
    public func target(receiver: String, name: String) -> ChannelTarget? {
        receivers[receiver]?.targets.first { $0.name == name }
    }
}

/// A node of the routing tree. Unset settings are inherited from the parent.
public struct AlertRoute: Sendable {
    /// Its matchers and its parents', as Alertmanager names routes: `{}`, `{}/{team="db"}`;
    /// a sibling with the same matchers as an earlier one gets `#<position>`. Routing groups are
    /// keyed by it, so reordering routes on a reload keeps their groups.
    public var id: String
    public var receiver: String
    public var matchers: [LabelMatcher]
    public var continueMatching: Bool
    /// Labels that split alerts into groups; `...` groups by every label.
    public var groupBy: [String]
    public var groupByAll: Bool
    public var groupWait: Duration
    public var groupInterval: Duration
    public var repeatInterval: Duration
    public var routes: [AlertRoute]

    init(_ node: YAMLNode, path: String, parent: AlertRoute?, duplicateOf position: Int? = nil, reader: ConfigurationReader,
         receivers: [String: AlertReceiver]) throws(ConfigurationFileError) {
        let fields = try reader.mapping(node, path, allowed: [
            "receiver", "matchers", "continue", "group_by", "group_wait", "group_interval", "repeat_interval", "routes",
        ])
        if let entry = fields["receiver"] {
            receiver = try reader.string(entry.value, "\(path).receiver")
            guard receivers[receiver] != nil else { throw reader.error(entry.value, "\(path).receiver", "no receiver named '\(receiver)'") }
        } else if let parent {
            receiver = parent.receiver
        } else {
            throw reader.error(node, path, "the root route needs a receiver")
        }
        matchers = try fields["matchers"].map { entry throws(ConfigurationFileError) in
            try reader.matchers(entry.value, "\(path).matchers")
        } ?? []
        if parent == nil && !matchers.isEmpty { throw reader.error(node, "\(path).matchers", "the root route matches every alert; it takes no matchers") }
        let ownKey = "{" + matchers.map(\.description).sorted().joined(separator: ",") + "}" + (position.map { "#\($0)" } ?? "")
        id = parent.map { $0.id + "/" + ownKey } ?? ownKey
        continueMatching = try fields["continue"].map { entry throws(ConfigurationFileError) in try reader.bool(entry.value, "\(path).continue") } ?? false
        if let entry = fields["group_by"] {
            let labels = try reader.strings(entry.value, "\(path).group_by")
            groupByAll = labels == ["..."]
            groupBy = groupByAll ? [] : labels
            for label in groupBy where !LabelMatcher.isLabelName(label) {
                throw reader.error(entry.value, "\(path).group_by", "'\(label)' is not a label name")
            }
        } else {
            groupBy = parent?.groupBy ?? []
            groupByAll = parent?.groupByAll ?? false
        }
        func duration(_ key: String, _ inherited: Duration?, _ fallback: Duration) throws(ConfigurationFileError) -> Duration {
            guard let entry = fields[key] else { return inherited ?? fallback }
            return try reader.duration(entry.value, "\(path).\(key)")
        }
        groupWait = try duration("group_wait", parent?.groupWait, .seconds(30))
        groupInterval = try duration("group_interval", parent?.groupInterval, .seconds(300))
        repeatInterval = try duration("repeat_interval", parent?.repeatInterval, .seconds(14_400))
        if groupInterval <= .zero { throw reader.error(node, "\(path).group_interval", "group_interval must be more than 0") }
        if repeatInterval < groupInterval {
            throw reader.error(node, "\(path).repeat_interval", "repeat_interval must be at least group_interval")
        }
        routes = []
        if let entry = fields["routes"] {
            var ids: Set<String> = []
            for (index, child) in try reader.sequence(entry.value, "\(path).routes").enumerated() {
                let childPath = "\(path).routes[\(index)]"
                var route = try AlertRoute(child, path: childPath, parent: self, reader: reader, receivers: receivers)
                if ids.contains(route.id) {
                    route = try AlertRoute(child, path: childPath, parent: self, duplicateOf: index, reader: reader, receivers: receivers)
                }
                ids.insert(route.id)
                routes.append(route)
            }
        }
    }

    func matching(_ labels: [String: String]) -> [AlertRoute] {
        guard matchers.matchAll(labels) else { return [] }
        var found: [AlertRoute] = []
        for child in routes {
            let matches = child.matching(labels)
            guard !matches.isEmpty else { continue }
            found += matches
            if !child.continueMatching { break }
        }
        return found.isEmpty ? [self] : found
    }

    /// The labels that tell this route's groups apart, for an alert with `labels`.
    public func groupLabels(_ labels: [String: String]) -> [String: String] {
        groupByAll ? labels : labels.filter { groupBy.contains($0.key) }
    }
}

/// Where notifications go: one or more channel targets, and a receiver to try when a target
/// fails for good.
public struct AlertReceiver: Sendable {
    public var name: String
    public var targets: [ChannelTarget]
    public var fallback: String?
    var fallbackLine = 0

    init(_ node: YAMLNode, path: String, reader: ConfigurationReader) throws(ConfigurationFileError) {
        let allowed = Set(["name", "fallback"] + AlertChannel.allCases.map { "\($0.rawValue)_configs" })
        let fields = try reader.mapping(node, path, allowed: allowed)
        guard let nameEntry = fields["name"] else { throw reader.error(node, path, "a receiver needs a name") }
        name = try reader.string(nameEntry.value, "\(path).name")
        guard LabelMatcher.isLabelName(name.replacingOccurrences(of: "-", with: "_")) else {
            throw reader.error(nameEntry.value, "\(path).name", "receiver names are letters, digits, '_' and '-'")
        }
        if let entry = fields["fallback"] {
            fallback = try reader.string(entry.value, "\(path).fallback")
            fallbackLine = entry.line
        }
        targets = []
        for channel in AlertChannel.allCases {
            guard let entry = fields["\(channel.rawValue)_configs"] else { continue }
            let key = "\(path).\(channel.rawValue)_configs"
            for (index, target) in try reader.sequence(entry.value, key).enumerated() {
                targets.append(try ChannelTarget(target, path: "\(key)[\(index)]", name: "\(name)/\(channel.rawValue)/\(index)",
                                                 channel: channel, reader: reader))
            }
        }
    }
}

/// Mutes alerts matching `targetMatchers` while an alert matching `sourceMatchers` fires with
/// the same values of the `equal` labels.
public struct InhibitRule: Sendable {
    public var sourceMatchers: [LabelMatcher]
    public var targetMatchers: [LabelMatcher]
    public var equal: [String]

    init(_ node: YAMLNode, path: String, reader: ConfigurationReader) throws(ConfigurationFileError) {
        let fields = try reader.mapping(node, path, allowed: ["source_matchers", "target_matchers", "equal"])
        guard let source = fields["source_matchers"], let target = fields["target_matchers"] else {
            throw reader.error(node, path, "an inhibition rule needs source_matchers and target_matchers")
        }
        sourceMatchers = try reader.matchers(source.value, "\(path).source_matchers")
        targetMatchers = try reader.matchers(target.value, "\(path).target_matchers")
        equal = try fields["equal"].map { entry throws(ConfigurationFileError) in try reader.strings(entry.value, "\(path).equal") } ?? []
    }

    /// Whether an alert with `target` labels is muted by a firing alert with `source` labels.
    public func inhibits(_ target: [String: String], by source: [String: String]) -> Bool {
        targetMatchers.matchAll(target) && sourceMatchers.matchAll(source) && equal.allSatisfy { target[$0] == source[$0] }
    }
}

/// The settings only the alert routing file has.
extension ConfigurationReader {
    func matchers(_ node: YAMLNode, _ path: String) throws(ConfigurationFileError) -> [LabelMatcher] {
        var matchers: [LabelMatcher] = []
        for (index, item) in try sequence(node, path).enumerated() {
            let text = try string(item, "\(path)[\(index)]")
            do {
                matchers.append(try LabelMatcher(parsing: text))
            } catch {
                throw self.error(item, "\(path)[\(index)]", error.description)
            }
        }
        return matchers
    }

    func url(_ text: String, _ node: YAMLNode, _ path: String) throws(ConfigurationFileError) -> String {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
            throw error(node, path, "expected an http or https URL")
        }
        return text
    }

    /// A secret setting `name`, given as `name_env` or `name_file`; never as `name` itself.
    func secret(_ fields: [String: YAMLEntry], _ name: String, _ node: YAMLNode, _ path: String,
                required: Bool = true) throws(ConfigurationFileError) -> String? {
        if let inline = fields[name] {
            throw ConfigurationFileError(file: file, line: inline.line, path: "\(path).\(name)",
                                             message: "secrets are not read from this file: use \(name)_env or \(name)_file")
        }
        switch (fields["\(name)_env"], fields["\(name)_file"]) {
        case (let env?, nil):
            let variable = try string(env.value, "\(path).\(name)_env")
            guard let value = environment[variable], !value.isEmpty else {
                throw error(env.value, "\(path).\(name)_env", "environment variable \(variable) is not set")
            }
            return value
        case (nil, let file?):
            let filePath = try string(file.value, "\(path).\(name)_file")
            guard let value = try? String(contentsOfFile: filePath, encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
                throw error(file.value, "\(path).\(name)_file", "cannot read a secret from \(filePath)")
            }
            return value
        case (_?, _?):
            throw error(node, path, "give \(name)_env or \(name)_file, not both")
        case (nil, nil):
            if required { throw error(node, path, "\(name)_env or \(name)_file is required") }
            return nil
        }
    }
}
