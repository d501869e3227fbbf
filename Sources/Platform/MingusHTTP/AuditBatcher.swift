import Foundation
public import Logging
public import MingusPostgres
public import MingusSecurity
public import ServiceLifecycle
import Synchronization

/// Appends the gateway's request audit events with group commit: the events of concurrent
/// requests share one transaction, and each request goes on once its event has committed.
///
/// A request's event waits while the previous batch commits, then goes out with every event that
/// arrived meanwhile (at most ``maximumBatch``), so a busy gateway writes one transaction per
/// batch instead of one per request, and an idle one writes each event at once. When a batch's
/// transaction fails, its events are written again one by one, so one event that cannot be
/// stored never fails its neighbours. Run it as a service; events appended while it is not
/// running wait for it.
public final class AuditBatcher: Service, Sendable {
    /// Events written together at most.
    public static let maximumBatch = 256

    private struct Pending: Sendable {
        var event: AuditEvent
        var done: CheckedContinuation<Void, any Error>
    }

    private let database: PostgresClient
    private let component: String
    private let logger: Logger
    private let waiting = Mutex<[Pending]>([])
    private let wakeUps: AsyncStream<Void>
    private let wakeUp: AsyncStream<Void>.Continuation

    /// Writes to `component`'s audit streams on `database`.
    public init(database: PostgresClient, component: String, logger: Logger) {
        self.database = database
        self.component = component
        self.logger = logger
        (wakeUps, wakeUp) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Events appended and not written yet.
    public var waitingCount: Int { waiting.withLock(\.count) }

    /// Appends `event`; returns once it has committed, or throws what kept it from committing.
    public func append(_ event: AuditEvent) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            waiting.withLock { $0.append(Pending(event: event, done: done)) }
            wakeUp.yield()
        }
    }

    /// Writes batches until a graceful shutdown, then writes what is still waiting.
    public func run() async throws {
        for await _ in wakeUps.cancelOnGracefulShutdown() {
            await writeWaiting()
        }
        await writeWaiting()
    }

    /// Writes every waiting event, a batch at a time.
    private func writeWaiting() async {
        while true {
            let batch = waiting.withLock { waiting in
                let taken = Array(waiting.prefix(Self.maximumBatch))
                waiting.removeFirst(taken.count)
                return taken
            }
            guard !batch.isEmpty else { return }
            await write(batch)
        }
    }

    private func write(_ batch: [Pending]) async {
        let component = self.component
        do {
            try await database.withTransaction { db in
                for pending in batch { _ = try await AuditTrail.append(pending.event, component: component, on: db) }
            }
            for pending in batch { pending.done.resume() }
        } catch where batch.count > 1 {
            logger.warning("a batch of audit events failed; writing them one by one", metadata: ["mingus.error": "\(error)"])
            for pending in batch { await write([pending]) }
        } catch {
            batch[0].done.resume(throwing: error)
        }
    }
}
