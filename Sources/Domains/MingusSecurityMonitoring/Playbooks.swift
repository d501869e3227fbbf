public import Foundation
public import MingusCore

/// What a playbook step does. `manual` steps are done by a person and marked done through the API.
public enum StepAction: String, Sendable, CaseIterable, Codable {
    case manual
    /// Blocks the incident's client address at the gateway (`gateway_blocked_addresses`).
    case blockAddress = "block_address"
    /// Revokes the API key the incident's detection names.
    case revokeAPIKey = "revoke_api_key"
    /// Adds a new version of data keys (the step's `purposes`); new data is sealed under it.
    case rotateDataKeys = "rotate_data_keys"
    /// Sends a critical alert to the alerts worker, labelled for the on-call receiver.
    case pageOncall = "page_oncall"
    /// Reports a breach to the breach worker (`breach.report`) with the incident's facts.
    case openBreach = "open_breach"
}

/// One step of a playbook.
public struct PlaybookStep: Sendable {
    public var name: String
    public var action: StepAction
    /// The step waits for a person's approval before it runs.
    public var requiresApproval: Bool
    /// Settings of the action: `duration` (block_address), `purposes` (rotate_data_keys),
    /// `receiver` (page_oncall), `data_categories`, `jurisdictions`, `entity_roles` (open_breach).
    public var parameters: [String: [String]]
}

/// A playbook: the steps for detections of some kinds (and rules).
public struct Playbook: Sendable {
    public var name: String
    /// `kind` or `kind:rule`; `*` matches every kind.
    public var matches: [String]
    public var steps: [PlaybookStep]

    func matches(kind: String, rule: String?) -> Bool {
        matches.contains { $0 == "*" || $0 == kind || (rule != nil && $0 == "\(kind):\(rule!)") }
    }
}

/// Time targets of one severity (NIST SP 800-61 response metrics).
public struct ResponseTargets: Sendable {
    public var acknowledge: Duration
    public var contain: Duration
}

/// The playbooks file of the security worker (`MINGUS_SECURITY_PLAYBOOKS`, by default
/// `Deploy/security-playbooks.yaml`), read with the alert routing file's reader: every mistake
/// stops the worker at start with its file, line and setting.
///
/// ```yaml
/// targets:
///   critical: {acknowledge: 15m, contain: 1h}
/// playbooks:
///   - name: brute_force
///     match: [security_rule:auth_failures, auth_failures]
///     steps:
///       - {name: Block the source address, action: block_address, duration: 24h}
///       - {name: Page on-call, action: page_oncall}
///       - {name: Revoke the API key, action: revoke_api_key, approval: true}
/// ```
/// The first playbook whose `match` names the detection's `kind:rule` or `kind` applies.
public struct Playbooks: Sendable {
    public var playbooks: [Playbook]
    public var targets: [IncidentSeverity: ResponseTargets]

    public static let defaultTargets: [IncidentSeverity: ResponseTargets] = [
        .critical: ResponseTargets(acknowledge: .seconds(15 * 60), contain: .seconds(3600)),
        .high: ResponseTargets(acknowledge: .seconds(3600), contain: .seconds(4 * 3600)),
        .medium: ResponseTargets(acknowledge: .seconds(4 * 3600), contain: .seconds(24 * 3600)),
        .low: ResponseTargets(acknowledge: .seconds(24 * 3600), contain: .seconds(72 * 3600)),
    ]

    public init(playbooks: [Playbook], targets: [IncidentSeverity: ResponseTargets] = Playbooks.defaultTargets) {
        self.playbooks = playbooks
        self.targets = targets
    }

    /// The playbook for a detection, if any.
    public func playbook(kind: String, rule: String?) -> Playbook? {
        playbooks.first { $0.matches(kind: kind, rule: rule) }
    }

    /// Reads and checks the file at `path`.
    public static func load(path: String) throws(ConfigurationFileError) -> Playbooks {
        return try Playbooks(yaml: try ConfigurationReader.contents(of: path), file: path)
    }

    static let stepFields: Set<String> = ["name", "action", "approval", "duration", "purposes", "receiver", "data_categories",
                                          "jurisdictions", "entity_roles"]

    /// Reads and checks a playbooks document; `file` names it in errors.
    public init(yaml: String, file: String = "security-playbooks.yaml") throws(ConfigurationFileError) {
        let reader = ConfigurationReader(file: file)
        let document = try reader.document(yaml)
        let top = try reader.mapping(document, "", allowed: ["targets", "playbooks"])
        var targets = Self.defaultTargets
        if let entry = top["targets"] {
            for (key, value) in try reader.mapping(entry.value, "targets", allowed: Set(IncidentSeverity.allCases.map(\.rawValue))) {
                let severity = IncidentSeverity(rawValue: key)!
                let fields = try reader.mapping(value.value, "targets.\(key)", allowed: ["acknowledge", "contain"])
                var target = targets[severity]!
                if let ack = fields["acknowledge"] { target.acknowledge = try reader.duration(ack.value, "targets.\(key).acknowledge") }
                if let contain = fields["contain"] { target.contain = try reader.duration(contain.value, "targets.\(key).contain") }
                targets[severity] = target
            }
        }
        var playbooks: [Playbook] = []
        if let list = top["playbooks"] {
            for (index, node) in try reader.sequence(list.value, "playbooks").enumerated() {
                let path = "playbooks[\(index)]"
                let fields = try reader.mapping(node, path, allowed: ["name", "match", "steps"])
                guard let nameNode = fields["name"]?.value else { throw reader.error(node, path, "name is required") }
                let name = try reader.string(nameNode, "\(path).name")
                if playbooks.contains(where: { $0.name == name }) {
                    throw reader.error(nameNode, "\(path).name", "playbook '\(name)' is defined twice")
                }
                guard let matchNode = fields["match"]?.value else { throw reader.error(node, path, "match is required") }
                let matches = try reader.strings(matchNode, "\(path).match")
                guard !matches.isEmpty else { throw reader.error(matchNode, "\(path).match", "name at least one detection kind") }
                guard let stepsNode = fields["steps"]?.value else { throw reader.error(node, path, "steps is required") }
                var steps: [PlaybookStep] = []
                for (position, stepNode) in try reader.sequence(stepsNode, "\(path).steps").enumerated() {
                    let stepPath = "\(path).steps[\(position)]"
                    let step = try reader.mapping(stepNode, stepPath, allowed: Self.stepFields)
                    guard let stepName = step["name"]?.value else { throw reader.error(stepNode, stepPath, "name is required") }
                    guard let actionNode = step["action"]?.value else { throw reader.error(stepNode, stepPath, "action is required") }
                    let actionText = try reader.string(actionNode, "\(stepPath).action")
                    guard let action = StepAction(rawValue: actionText) else {
                        throw reader.error(actionNode, "\(stepPath).action",
                                           "expected one of: \(StepAction.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    var parameters: [String: [String]] = [:]
                    if let duration = step["duration"] {
                        guard action == .blockAddress else { throw reader.error(duration.value, "\(stepPath).duration", "only block_address takes a duration") }
                        let value = try reader.duration(duration.value, "\(stepPath).duration")
                        parameters["duration_seconds"] = [String(value.components.seconds)]
                    }
                    for key in ["purposes", "data_categories", "jurisdictions", "entity_roles"] {
                        if let entry = step[key] { parameters[key] = try reader.strings(entry.value, "\(stepPath).\(key)") }
                    }
                    if let receiver = step["receiver"] { parameters["receiver"] = [try reader.string(receiver.value, "\(stepPath).receiver")] }
                    if action == .rotateDataKeys, parameters["purposes"]?.isEmpty ?? true {
                        throw reader.error(stepNode, stepPath, "rotate_data_keys needs purposes (data key purposes such as pan)")
                    }
                    steps.append(PlaybookStep(
                        name: try reader.string(stepName, "\(stepPath).name"), action: action,
                        requiresApproval: try step["approval"].map { entry throws(ConfigurationFileError) in try reader.bool(entry.value, "\(stepPath).approval") } ?? false,
                        parameters: parameters))
                }
                playbooks.append(Playbook(name: name, matches: matches, steps: steps))
            }
        }
        self.playbooks = playbooks
        self.targets = targets
    }
}
