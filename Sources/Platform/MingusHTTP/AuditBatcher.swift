public import Logging
public import MingusPostgres
public import MingusSecurity

/// Appends the gateway's request audit events with group commit (``GroupCommitter``): the
/// events of concurrent requests share one transaction and one hash-chain update, and each
/// request goes on once its own event has committed.
public final class AuditBatcher: Sendable {
    private let committer: GroupCommitter<AuditEvent>

    /// Writes to `component`'s audit streams on `database`.
    public init(database: PostgresClient, component: String, logger: Logger) {
        committer = GroupCommitter(database: database, logger: logger) { events, db in
            try await AuditTrail.append(events, component: component, on: db)
        }
    }

    /// Events appended and waiting for the batch being written to commit.
    public var waitingCount: Int { committer.waitingCount }

    /// Appends `event`; returns once it has committed, or throws what kept it from committing.
    public func append(_ event: AuditEvent) async throws {
        try await committer.commit(event)
    }
}
