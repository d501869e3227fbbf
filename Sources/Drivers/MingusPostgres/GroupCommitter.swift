public import Logging
import Synchronization

/// Writes items with group commit: items committed at about the same time share one
/// transaction, and each caller goes on once its own item has committed.
///
/// The first item to arrive while nothing is being written starts a batch at once; items that
/// arrive while a batch is being written wait and go together in the next one (at most
/// `maximumBatch`). A busy process so writes one transaction per batch instead of one per item,
/// and an idle one writes each item without delay. When a batch's transaction fails, its items
/// are written again one by one, so an item that cannot be stored never fails its neighbours.
/// `write` receives the items of a batch inside the transaction and should store them with as
/// few statements as it can (multi-row statements).
public final class GroupCommitter<Item: Sendable>: Sendable {
    /// Stores a batch inside its transaction.
    public typealias Write = @Sendable ([Item], PostgresConnection) async throws -> Void

    private struct Pending: Sendable {
        var item: Item
        var done: CheckedContinuation<Void, any Error>
    }

    private struct State: Sendable {
        var waiting: [Pending] = []
        var isWriting = false
    }

    /// Items written together at most.
    public let maximumBatch: Int
    private let database: PostgresClient
    private let write: Write
    private let logger: Logger
    private let state = Mutex(State())

    public init(database: PostgresClient, maximumBatch: Int = 256, logger: Logger, write: @escaping Write) {
        precondition(maximumBatch >= 1, "maximumBatch must be at least 1")
        self.database = database
        self.maximumBatch = maximumBatch
        self.logger = logger
        self.write = write
    }

    /// Items committed and not written yet (the batch being written is not counted).
    public var waitingCount: Int { state.withLock(\.waiting.count) }

    /// Stores `item`; returns once it has committed, or throws what kept it from committing.
    public func commit(_ item: Item) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            let leads = state.withLock { state in
                state.waiting.append(Pending(item: item, done: done))
                defer { state.isWriting = true }
                return !state.isWriting
            }
            if leads { Task { await self.writeWaiting() } }
        }
    }

    /// Writes batches until nothing waits.
    private func writeWaiting() async {
        while true {
            let batch = state.withLock { state in
                let taken = Array(state.waiting.prefix(maximumBatch))
                state.waiting.removeFirst(taken.count)
                if taken.isEmpty { state.isWriting = false }
                return taken
            }
            guard !batch.isEmpty else { return }
            await store(batch)
        }
    }

    private func store(_ batch: [Pending]) async {
        let write = self.write
        let items = batch.map(\.item)
        do {
            try await database.withTransaction { db in try await write(items, db) }
            for pending in batch { pending.done.resume() }
        } catch where batch.count > 1 {
            logger.warning("a batch failed; writing its items one by one", metadata: ["mingus.error": "\(error)", "mingus.batch": "\(batch.count)"])
            for pending in batch { await store([pending]) }
        } catch {
            batch[0].done.resume(throwing: error)
        }
    }
}
