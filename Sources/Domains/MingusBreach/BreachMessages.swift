public import Foundation

/// A clock-starting event: what happened (`materiality_determined`) and when.
public struct BreachFactRecord: Codable, Sendable, Equatable {
    public var fact: String
    public var occurredAt: Date

    public init(fact: String, occurredAt: Date) {
        self.fact = fact
        self.occurredAt = occurredAt
    }

    /// Fact names: lower-case words joined by `_`, as in the rules' `requires_fact` and clocks.
    public static func isName(_ text: String) -> Bool {
        text.range(of: "^[a-z][a-z0-9_]{1,63}$", options: .regularExpression) != nil
    }
}

/// `breach.report`: a breach the gateway accepted; the breach worker stores and assesses it
/// (`Contracts/schemas/breach.report.v1.json`).
public struct BreachReportJob: Codable, Sendable, Equatable {
    public static let type = "breach.report"

    public var breachId: UUID
    public var title: String
    public var description: String
    public var severity: BreachSeverity
    public var discoveredAt: Date
    public var awareAt: Date
    public var dataCategories: [String]
    public var dataEncrypted: Bool
    public var keyCompromised: Bool
    public var recordsAffected: Int64
    public var personsAffected: Int64
    public var jurisdictions: [String]
    public var personsByJurisdiction: [String: Int64]
    public var entityRoles: [String]
    public var facts: [BreachFactRecord]
    public var reportedBy: String
    /// When the gateway accepted it, RFC 3339 with fractions of a second.
    public var reportedAt: String

    public init(breachId: UUID, title: String, description: String, severity: BreachSeverity, discoveredAt: Date, awareAt: Date,
                dataCategories: [String], dataEncrypted: Bool, keyCompromised: Bool, recordsAffected: Int64, personsAffected: Int64,
                jurisdictions: [String], personsByJurisdiction: [String: Int64], entityRoles: [String], facts: [BreachFactRecord],
                reportedBy: String, reportedAt: String) {
        self.breachId = breachId
        self.title = title
        self.description = description
        self.severity = severity
        self.discoveredAt = discoveredAt
        self.awareAt = awareAt
        self.dataCategories = dataCategories
        self.dataEncrypted = dataEncrypted
        self.keyCompromised = keyCompromised
        self.recordsAffected = recordsAffected
        self.personsAffected = personsAffected
        self.jurisdictions = jurisdictions
        self.personsByJurisdiction = personsByJurisdiction
        self.entityRoles = entityRoles
        self.facts = facts
        self.reportedBy = reportedBy
        self.reportedAt = reportedAt
    }
}

/// What a `breach.update` may change; a field left out stays as it is.
public struct BreachChanges: Codable, Sendable, Equatable {
    public var severity: BreachSeverity?
    public var description: String?
    public var discoveredAt: Date?
    public var awareAt: Date?
    public var dataCategories: [String]?
    public var dataEncrypted: Bool?
    public var keyCompromised: Bool?
    public var recordsAffected: Int64?
    public var personsAffected: Int64?
    public var jurisdictions: [String]?
    public var personsByJurisdiction: [String: Int64]?
    public var entityRoles: [String]?

    public init() {}

    public var isEmpty: Bool { self == BreachChanges() }
}

/// `breach.update`: new facts about a breach; the worker applies them and reassesses its
/// obligations in one transaction (`Contracts/schemas/breach.update.v1.json`).
public struct BreachUpdateJob: Codable, Sendable, Equatable {
    public static let type = "breach.update"

    public var breachId: UUID
    public var changes: BreachChanges
    public var facts: [BreachFactRecord]
    /// Why, in the actor's words (shown on the timeline).
    public var note: String?
    public var actor: String
}

/// `breach.reminder`: scheduled before an obligation's deadline and when it passes; alerts
/// through the alerts worker unless the obligation was met or its deadline changed
/// (`Contracts/schemas/breach.reminder.v1.json`).
public struct BreachReminderJob: Codable, Sendable, Equatable {
    public static let type = "breach.reminder"

    public var obligationId: UUID
    /// The deadline the reminder is about; a reminder for another deadline does nothing.
    public var deadline: Date
    /// How long before the deadline, in seconds; 0 is the overdue reminder.
    public var before: Int
}
