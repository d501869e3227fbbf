/// The status of a PCI DSS requirement, as assessed or found by an automated check.
public enum RequirementStatus: String, Codable, Sendable, CaseIterable {
    case compliant
    case nonCompliant = "non_compliant"
    case notAssessed = "not_assessed"
    case notApplicable = "not_applicable"
}

/// One PCI DSS v4.0 requirement in the registry: a principal requirement (`3`) or a
/// sub-requirement (`3.5.1`) this system evidences itself or an assessor assesses.
public struct PCIRequirement: Sendable, Equatable {
    /// `3`, `3.5.1.1`.
    public var id: String
    public var title: String
    /// The principal requirement it belongs to (nil for a principal requirement).
    public var parent: String?
    /// The automated checks that evidence it (empty: assessed by people only).
    public var checks: [String]

    /// Principal requirements have no parent.
    public var isPrincipal: Bool { parent == nil }
}

/// The PCI DSS v4.0 requirements registry: the twelve principal requirements and the
/// sub-requirements this system evidences by itself (or that are assessed by hand through its
/// controls).
///
/// A principal requirement with sub-requirements in the registry takes its status from them;
/// one without is assessed by hand. Only "leaves" (sub-requirements, and principal requirements
/// without any) count in the PCI DSS part of the score, so that nothing counts twice.
public enum PCIRequirements {
    static func principal(_ id: String, _ title: String) -> PCIRequirement {
        PCIRequirement(id: id, title: title, parent: nil, checks: [])
    }

    static func sub(_ id: String, _ title: String, checks: [String] = []) -> PCIRequirement {
        PCIRequirement(id: id, title: title, parent: String(id.prefix { $0 != "." }), checks: checks)
    }

    /// Every requirement, principal ones first in their order, each followed by its sub-requirements.
    public static let all: [PCIRequirement] = [
        principal("1", "Install and maintain network security controls"),
        principal("2", "Apply secure configurations to all system components"),
        principal("3", "Protect stored account data"),
        sub("3.2.1", "Account data storage is kept to a minimum through retention and disposal policies", checks: ["retention_sweeps"]),
        sub("3.3.1", "Sensitive authentication data (card verification codes included) is not retained after authorization",
            checks: ["cvv_not_stored"]),
        sub("3.4.1", "PAN is masked when displayed (at most the BIN and last four digits)", checks: ["pan_not_stored_in_clear"]),
        sub("3.5.1", "PAN is rendered unreadable anywhere it is stored", checks: ["pan_not_stored_in_clear"]),
        sub("3.5.1.1", "Hashes used to render PAN unreadable are keyed cryptographic hashes", checks: ["pan_fingerprint_keyed"]),
        sub("3.6.1", "Procedures protect cryptographic keys used to protect stored account data", checks: ["key_cryptoperiod"]),
        sub("3.7.4", "Key changes at the end of the defined cryptoperiod", checks: ["key_cryptoperiod"]),
        principal("4", "Protect cardholder data with strong cryptography during transmission over open, public networks"),
        principal("5", "Protect all systems and networks from malicious software"),
        principal("6", "Develop and maintain secure systems and software"),
        principal("7", "Restrict access to system components and cardholder data by business need to know"),
        sub("7.2.1", "An access control model is defined and grants access by need to know", checks: ["roles_least_privilege"]),
        sub("7.2.2", "Access is assigned by job classification and function, with least privileges", checks: ["roles_least_privilege"]),
        principal("8", "Identify users and authenticate access to system components"),
        sub("8.2.6", "Inactive user accounts are removed or disabled within 90 days of inactivity", checks: ["api_keys_inactive"]),
        sub("8.3.1", "All access is authenticated with at least one authentication factor", checks: ["api_key_authentication"]),
        sub("8.3.2", "Authentication factors are unreadable in storage and transmission", checks: ["api_key_authentication"]),
        principal("9", "Restrict physical access to cardholder data"),
        sub("9.2.1", "Facility entry controls restrict physical access to systems in the cardholder data environment"),
        sub("9.4.7", "Electronic media with cardholder data is destroyed when no longer needed"),
        principal("10", "Log and monitor all access to system components and cardholder data"),
        sub("10.2.1", "Audit logs are enabled and active for all system components", checks: ["audit_activity"]),
        sub("10.2.1.2", "Audit logs capture all actions taken by individuals with administrative access", checks: ["audit_activity"]),
        sub("10.2.1.5", "Audit logs capture all changes to identification and authentication credentials", checks: ["audit_activity"]),
        sub("10.3", "Audit logs are protected from destruction and unauthorized modifications",
            checks: ["audit_chain_intact", "audit_checkpoint_recent"]),
        sub("10.5.1", "Audit log history is retained and verifiable", checks: ["audit_chain_intact", "audit_checkpoint_recent"]),
        principal("11", "Test security of systems and networks regularly"),
        principal("12", "Support information security with organizational policies and programs"),
        sub("12.1.1", "An information security policy is established, published, maintained and disseminated"),
        sub("12.6.1", "A formal security awareness program is implemented"),
        sub("12.10.1", "An incident response plan exists and is ready to be activated (obligations met on time)",
            checks: ["breach_obligations"]),
    ]

    static let byID: [String: PCIRequirement] = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })

    /// The requirement with `id`, nil when the registry has none.
    public static func requirement(_ id: String) -> PCIRequirement? { byID[id] }

    /// Whether a principal requirement has sub-requirements in the registry.
    static func hasSubs(_ id: String) -> Bool { all.contains { $0.parent == id } }

    /// Whether the requirement counts in the PCI DSS part of the score.
    static func isLeaf(_ requirement: PCIRequirement) -> Bool { !requirement.isPrincipal || !hasSubs(requirement.id) }
}
