public import Foundation

/// Severity of a detection or an incident, least urgent first.
public enum IncidentSeverity: String, Codable, Sendable, CaseIterable, Comparable {
    case low, medium, high, critical

    public static func < (lhs: IncidentSeverity, rhs: IncidentSeverity) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// `security.detection`: something that may be an attack, from the logs worker (security rules,
/// card numbers in logs), the droplet rules, another domain or a person (kind `manual`). The
/// security worker opens an incident for it, or adds it to the open incident of the same
/// attack (`Contracts/schemas/security.detection.v1.json`). The job id is the detection's id.
public struct SecurityDetectionJob: Codable, Sendable, Equatable {
    public static let type = "security.detection"

    /// `security_rule`, `card_number`, `auth_failures`, `hipaa_violation`, `droplet_rule`, `manual`, …
    public var kind: String
    /// The rule that matched, for kinds that have rules.
    public var rule: String?
    public var severity: IncidentSeverity
    /// Detections of one ongoing attack share it.
    public var dedupKey: String
    public var title: String
    public var summary: String
    public var service: String?
    /// The client address the detection names.
    public var sourceAddress: String?
    /// The API key (id or name) the detection names.
    public var apiKey: String?
    /// The incident to open (manual incidents choose their id at the gateway).
    public var incidentId: UUID?
    public var detectedAt: Date
    public var reportedBy: String

    public init(kind: String, rule: String? = nil, severity: IncidentSeverity, dedupKey: String, title: String, summary: String,
                service: String? = nil, sourceAddress: String? = nil, apiKey: String? = nil, incidentId: UUID? = nil,
                detectedAt: Date, reportedBy: String) {
        self.kind = kind
        self.rule = rule
        self.severity = severity
        self.dedupKey = dedupKey
        self.title = title
        self.summary = summary
        self.service = service
        self.sourceAddress = sourceAddress
        self.apiKey = apiKey
        self.incidentId = incidentId
        self.detectedAt = detectedAt
        self.reportedBy = reportedBy
    }
}

/// `security.step`: carry on with an incident's playbook from its first unfinished step (after
/// a person approved, rejected or finished a step).
public struct SecurityStepJob: Codable, Sendable, Equatable {
    public static let type = "security.step"

    public var incidentId: UUID

    public init(incidentId: UUID) {
        self.incidentId = incidentId
    }
}

/// `security.escalate`: escalates incidents past their time-to-acknowledge or time-to-contain
/// target (scheduled every minute).
public struct SecurityEscalateJob: Codable, Sendable, Equatable {
    public static let type = "security.escalate"
    public init() {}
}

/// `security.poll`: one DigitalOcean polling cycle (scheduled, `MINGUS_DO_POLL_SCHEDULE`).
public struct SecurityPollJob: Codable, Sendable, Equatable {
    public static let type = "security.poll"
    public init() {}
}
