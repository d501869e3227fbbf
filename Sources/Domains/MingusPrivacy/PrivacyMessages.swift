public import Foundation

/// `privacy.reminder`: scheduled before a data-subject request's deadline and when it passes;
/// alerts through the alerts worker unless the request is closed or its deadline moved
/// (`Contracts/schemas/privacy.reminder.v1.json`).
public struct PrivacyReminderJob: Codable, Sendable, Equatable {
    public static let type = "privacy.reminder"

    public var requestId: UUID
    /// The deadline the reminder is about; a reminder for another deadline does nothing.
    public var deadline: Date
    /// How long before the deadline, in seconds; 0 is the overdue alert.
    public var before: Int

    public init(requestId: UUID, deadline: Date, before: Int) {
        self.requestId = requestId
        self.deadline = deadline
        self.before = before
    }

    /// The scheduler's id of this reminder: one per request, deadline and lead time.
    public var messageID: String {
        "privacy-reminder/\(requestId.uuidString.lowercased())/\(Int(deadline.timeIntervalSince1970))/\(before)"
    }
}

/// `privacy.export`: builds the archive of an access or portability request
/// (`Contracts/schemas/privacy.export.v1.json`). The message id is `export/<request id>`.
public struct PrivacyExportJob: Codable, Sendable, Equatable {
    public static let type = "privacy.export"

    public var requestId: UUID

    public init(requestId: UUID) {
        self.requestId = requestId
    }
}

/// `privacy.erase`: carries out an erasure request, one data type at a time, resuming after the
/// last finished step when run again (`Contracts/schemas/privacy.erase.v1.json`). The message
/// id is `erase/<request id>`.
public struct PrivacyEraseJob: Codable, Sendable, Equatable {
    public static let type = "privacy.erase"

    public var requestId: UUID

    public init(requestId: UUID) {
        self.requestId = requestId
    }
}

/// `privacy.cleanup`: hourly, marks export archives past their time `expired` and deletes the
/// chunks of expired archives and of downloads that broke off (`Contracts/schemas/privacy.cleanup.v1.json`).
public struct PrivacyCleanupJob: Codable, Sendable, Equatable {
    public static let type = "privacy.cleanup"

    public init() {}
}
