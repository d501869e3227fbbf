public import Foundation
public import MingusPostgres
import MingusRuntime
public import MingusSecurity

/// A data-subject request as the API shows it.
public struct PrivacyRequestView: Codable, Sendable {
    public var id: String
    public var subjectId: String
    public var type: String
    public var status: String
    public var receivedAt: Date
    public var dueAt: Date
    public var originalDueAt: Date
    public var extendedAt: Date?
    public var extensionReason: String?
    public var overdue: Bool
    public var verifiedAt: Date?
    public var verificationMethod: String?
    public var completedAt: Date?
    public var details: String?
    /// The purposes an objection objects to.
    public var purposes: [String]?
    /// The details were sealed under the subject's key, which an erasure destroyed.
    public var detailsErased: Bool
    public var result: [String: String]?
    public var history: [HistoryEntry]?

    /// One change of a request.
    public struct HistoryEntry: Codable, Sendable {
        public var at: Date
        public var actor: String
        public var status: String
        public var kind: String
        public var note: String
    }
}

/// The SQL of `privacy_requests` and `privacy_request_history`.
public enum RequestStore {
    /// Request types, and those whose work is a job (the others are closed by a person).
    public static let types = ["access", "portability", "erasure", "rectification", "restriction", "objection"]
    /// A request's statuses: received → verified or in_progress (once the identity is verified) → completed, or rejected.
    public static let statuses = ["received", "verified", "in_progress", "completed", "rejected"]

    static let columns = """
        id, subject_id, type, status, received_at, due_at, original_due_at, extended_at, extension_reason, verified_at, \
        verification_method, completed_at, details_sealed, result::text, due_at < now() AND status NOT IN ('completed', 'rejected'), \
        purposes
        """
    /// How many columns ``columns`` selects (a query adding its own reads them from here).
    static let columnCount = 16

    /// Decodes a row of ``columns``; `details` are opened with the subject's key when it exists.
    static func view(_ row: PostgresRow, keys: SubjectKeys?) async throws -> PrivacyRequestView {
        let id = try row.decode(UUID.self, at: 0)
        let subject = try row.decode(String.self, at: 1)
        var details: String?
        var erased = false
        if let sealed = try row.decode([UInt8]?.self, at: 12), let keys {
            do {
                if let key = try await keys.existingKey(subject) {
                    details = String(decoding: try key.open(sealed, context: detailsContext(id)), as: UTF8.self)
                } else {
                    erased = true
                }
            } catch is SubjectKeyErased {
                erased = true
            }
        }
        let result = try row.decode(String?.self, at: 13).flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
        return PrivacyRequestView(
            id: id.uuidString.lowercased(), subjectId: subject, type: try row.decode(String.self, at: 2), status: try row.decode(String.self, at: 3),
            receivedAt: try row.decode(Date.self, at: 4), dueAt: try row.decode(Date.self, at: 5), originalDueAt: try row.decode(Date.self, at: 6),
            extendedAt: try row.decode(Date?.self, at: 7), extensionReason: try row.decode(String?.self, at: 8), overdue: try row.decode(Bool.self, at: 14),
            verifiedAt: try row.decode(Date?.self, at: 9), verificationMethod: try row.decode(String?.self, at: 10),
            completedAt: try row.decode(Date?.self, at: 11), details: details, purposes: try row.decode([String]?.self, at: 15),
            detailsErased: erased, result: result, history: nil)
    }

    /// The authenticated context of a request's sealed details.
    static func detailsContext(_ id: UUID) -> String { "privacy_requests/\(id.uuidString.lowercased())/details" }

    /// One request with its history, nil when there is none.
    public static func find(_ id: UUID, keys: SubjectKeys?, on db: PostgresConnection) async throws -> PrivacyRequestView? {
        guard let row = try await db.query("SELECT \(unescaped: columns) FROM privacy_requests WHERE id = \(id)").first else { return nil }
        var view = try await view(row, keys: keys)
        view.history = try await db.query("""
            SELECT at, actor, status, kind, note FROM privacy_request_history WHERE request_id = \(id) ORDER BY id
            """).map { row in
            PrivacyRequestView.HistoryEntry(at: try row.decode(Date.self, at: 0), actor: try row.decode(String.self, at: 1),
                                            status: try row.decode(String.self, at: 2), kind: try row.decode(String.self, at: 3),
                                            note: try row.decode(String.self, at: 4))
        }
        return view
    }

    /// Appends a history entry.
    static func history(_ id: UUID, actor: String, status: String, kind: String, note: String = "", on db: PostgresConnection) async throws {
        try await db.execute("""
            INSERT INTO privacy_request_history (request_id, actor, status, kind, note) VALUES (\(id), \(actor), \(status), \(kind), \(note))
            """)
    }

    /// Schedules the reminders of `deadline` (one-off jobs of the runtime's scheduler).
    static func scheduleReminders(_ id: UUID, deadline: Date, deadlines: RequestDeadlines, now: Date, on db: PostgresConnection) async throws {
        let jobs = try deadlines.reminders(deadline: deadline, now: now).map { reminder in
            let job = PrivacyReminderJob(requestId: id, deadline: deadline, before: reminder.before)
            return Scheduler.OneOff(id: job.messageID, type: PrivacyReminderJob.type, body: Array(try JSONEncoder.mingus.encode(job)), at: reminder.at)
        }
        try await Scheduler.schedule(on: db, jobs)
    }

    /// Closes a request: status, result, completion time and a history entry.
    static func complete(_ id: UUID, status: String, result: [String: String], actor: String, note: String, on db: PostgresConnection) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = String(decoding: try encoder.encode(result), as: UTF8.self)
        try await db.execute("""
            UPDATE privacy_requests SET status = \(status), result = \(text)::jsonb, completed_at = now(), updated_at = now() WHERE id = \(id)
            """)
        try await history(id, actor: actor, status: status, kind: status, note: note, on: db)
    }
}
