public import Logging
import Synchronization

/// A transaction isolation level for `PostgresClient.withTransaction`.
public enum PostgresIsolationLevel: String, Sendable, CaseIterable {
    /// Each statement sees data committed before it began (PostgreSQL's default).
    case readCommitted = "READ COMMITTED"
    /// Every statement sees one snapshot; concurrent updates to the same rows fail with 40001.
    case repeatableRead = "REPEATABLE READ"
    /// As if transactions ran one at a time; conflicts fail with 40001.
    case serializable = "SERIALIZABLE"
}

/// A bounded pool of PostgreSQL connections, opened lazily, with transactions that retry on
/// serialization failures, deadlocks and connections lost before COMMIT.
///
/// At most `configuration.poolSize` connections are open at once; callers beyond that wait in
/// FIFO order. A connection that is broken when it comes back is closed and replaced on demand.
public final class PostgresClient: Sendable {
    /// The settings every connection of the pool uses.
    public let configuration: PostgresConfiguration
    private let logger: Logger
    private let state = Mutex(PoolState())

    private struct PoolState {
        var idle: [PostgresConnection] = []
        /// Connections open or being opened, leased or idle.
        var openCount = 0
        var waiters: [Waiter] = []
        var nextWaiterID = 0
        var isShutdown = false
    }

    private struct Waiter {
        let id: Int
        let continuation: CheckedContinuation<Permit, any Error>
    }

    /// What a caller gets from the pool: an idle connection, or leave to open one.
    private enum Permit: Sendable {
        case connection(PostgresConnection)
        case open
    }

    /// Creates the pool; no connection is opened until the first lease.
    public init(configuration: PostgresConfiguration, logger: Logger = Logger(label: "mingus.postgres")) {
        precondition(configuration.poolSize >= 1, "PostgresConfiguration.poolSize must be at least 1")
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: - Leases

    /// Leases a connection for the duration of `body`, waiting (FIFO, cancellable) while all are busy.
    ///
    /// Do not keep the connection after `body` returns. A connection left inside a transaction
    /// is rolled back; one that is broken is closed instead of being returned to the pool.
    public nonisolated(nonsending) func withConnection<T>(
        _ body: nonisolated(nonsending) (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await acquire()
        let value: T
        do {
            value = try await body(connection)
        } catch {
            await release(connection)
            throw error
        }
        await release(connection)
        return value
    }

    /// How many callers are waiting for a connection now (all `poolSize` are leased): how
    /// saturated the pool is, and what a test waits for to know that a lease is queued.
    public var waitingCount: Int {
        state.withLock { $0.waiters.count }
    }

    /// Runs one statement on a pooled connection and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        try await withConnection { try await $0.query(query) }
    }

    /// Runs one statement on a pooled connection and returns how many rows it affected.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await withConnection { try await $0.execute(query) }
    }

    /// Closes idle connections and fails waiters; leased connections close when they come back.
    public func shutdown() async {
        let (idle, waiters) = state.withLock { state in
            state.isShutdown = true
            let idle = state.idle
            let waiters = state.waiters
            state.idle = []
            state.waiters = []
            state.openCount -= idle.count
            return (idle, waiters)
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: Self.shutDownError)
        }
        for connection in idle {
            await connection.close()
        }
    }

    // MARK: - Transactions

    /// Runs `body` in a transaction: `BEGIN ISOLATION LEVEL …`, `body`, `COMMIT`.
    ///
    /// Any error rolls back (when the connection is still usable) and is rethrown. The whole
    /// body runs again, up to `maxAttempts` times with exponential backoff and jitter, after a
    /// serialization failure (40001), a deadlock (40P01), or a connection lost before COMMIT was
    /// sent (the transaction certainly did not commit), so it must have no effects outside the
    /// database. A connection lost during COMMIT is never retried: the outcome is unknown.
    public nonisolated(nonsending) func withTransaction<T>(
        isolation: PostgresIsolationLevel = .readCommitted,
        maxAttempts: Int = 5,
        _ body: nonisolated(nonsending) (PostgresConnection) async throws -> T
    ) async throws -> T {
        precondition(maxAttempts >= 1, "maxAttempts must be at least 1")
        var attempt = 1
        while true {
            do {
                return try await withConnection { connection in
                    try await Self.runTransaction(on: connection, isolation: isolation, body)
                }
            } catch let failure as TransactionAttemptFailure {
                guard failure.isRetryable, attempt < maxAttempts, !Task.isCancelled else {
                    throw failure.error
                }
                let delayMilliseconds = Self.backoffMilliseconds(afterAttempt: attempt)
                let error = failure.error as? PostgresError
                logger.log(
                    level: error?.isConnectionFailure == true ? .warning : .debug,
                    "retrying PostgreSQL transaction",
                    metadata: [
                        "mingus.db.attempt": "\(attempt)",
                        "mingus.db.max_attempts": "\(maxAttempts)",
                        "mingus.db.isolation": "\(isolation.rawValue)",
                        "mingus.db.sqlstate": "\(error?.sqlState ?? "none")",
                        "mingus.db.error": "\(error?.description ?? "unknown")",
                        "mingus.db.delay_ms": "\(delayMilliseconds)",
                    ]
                )
                try await Task.sleep(for: .milliseconds(delayMilliseconds))
                attempt += 1
            }
        }
    }

    /// One attempt; failures come out as `TransactionAttemptFailure`, telling whether COMMIT was sent.
    private static nonisolated(nonsending) func runTransaction<T>(
        on connection: PostgresConnection,
        isolation: PostgresIsolationLevel,
        _ body: nonisolated(nonsending) (PostgresConnection) async throws -> T
    ) async throws -> T {
        let value: T
        do {
            // Sent with the body's first statement (or the COMMIT), in one trip to the connection's thread.
            connection.deferUntilNextCall("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
            value = try await body(connection)
        } catch {
            if !connection.dropDeferred(), !connection.isBroken {
                _ = try? await connection.execute("ROLLBACK")
            }
            throw TransactionAttemptFailure(error: error, commitSent: false)
        }
        let commit: PostgresRows
        do {
            commit = try await connection.query("COMMIT")
        } catch {
            throw TransactionAttemptFailure(error: error, commitSent: true)
        }
        if commit.commandTag == "ROLLBACK" {
            // The body caught a statement's error and went on; the server rolled everything back.
            let error = PostgresError(
                kind: .server,
                message: "transaction rolled back at COMMIT because a statement in it failed",
                sqlState: "25P02"
            )
            throw TransactionAttemptFailure(error: error, commitSent: true)
        }
        return value
    }

    /// About 20 ms, 40 ms, 80 ms … capped at 1 s, each between half and all of that ("equal jitter").
    private static func backoffMilliseconds(afterAttempt attempt: Int) -> Int {
        let ceiling = min(1000, 20 << min(attempt - 1, 10))
        return Int.random(in: (ceiling / 2)...ceiling)
    }

    // MARK: - Pool internals

    private static let shutDownError = PostgresError.closed("the PostgreSQL client is shut down")

    private func acquire() async throws -> PostgresConnection {
        switch try await permit() {
        case .open:
            return try await openConnection()
        case .connection(let connection):
            if connection.checkHealth() {
                return connection
            }
            // The server closed it while idle (restart, pg_terminate_backend): replace it.
            logger.notice("replacing a PostgreSQL connection the server closed while it was idle")
            await connection.close()
            return try await openConnection()
        }
    }

    /// Waits for an idle connection or a free slot; cancelling the task leaves the queue.
    private func permit() async throws -> Permit {
        let id = state.withLock { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let poolSize = configuration.poolSize
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let immediate: Result<Permit, any Error>? = state.withLock { state in
                    if state.isShutdown { return .failure(Self.shutDownError) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if let connection = state.idle.popLast() { return .success(.connection(connection)) }
                    if state.openCount < poolSize {
                        state.openCount += 1
                        return .success(.open)
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let immediate {
                    continuation.resume(with: immediate)
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Opens a connection in a slot already counted in `openCount`; gives the slot back on failure.
    private func openConnection() async throws -> PostgresConnection {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: configuration, logger: logger)
        } catch {
            releaseSlot()
            throw error
        }
        if state.withLock({ $0.isShutdown }) {
            await connection.close()
            releaseSlot()
            throw Self.shutDownError
        }
        logger.debug("opened a PostgreSQL connection", metadata: ["mingus.db.pool_size": "\(configuration.poolSize)"])
        return connection
    }

    /// Takes a connection back: to the first waiter, to the idle list, or closed if unusable.
    private func release(_ connection: PostgresConnection) async {
        _ = connection.dropDeferred()
        if !connection.isBroken, connection.transactionState != .idle {
            logger.warning("rolling back a transaction left open on a pooled PostgreSQL connection")
            _ = try? await connection.execute("ROLLBACK")
        }
        guard !connection.isBroken, connection.transactionState == .idle else {
            logger.notice("dropping a broken PostgreSQL connection from the pool")
            await connection.close()
            releaseSlot()
            return
        }
        let waiter: Waiter?
        let shouldClose: Bool
        (waiter, shouldClose) = state.withLock { state in
            if state.isShutdown {
                state.openCount -= 1
                return (nil, true)
            }
            if !state.waiters.isEmpty {
                return (state.waiters.removeFirst(), false)
            }
            state.idle.append(connection)
            return (nil, false)
        }
        if shouldClose {
            await connection.close()
        }
        waiter?.continuation.resume(returning: .connection(connection))
    }

    /// Frees a slot: the first waiter may open a connection in it, or the open count drops.
    private func releaseSlot() {
        let waiter = state.withLock { state -> Waiter? in
            if !state.isShutdown, !state.waiters.isEmpty {
                return state.waiters.removeFirst()
            }
            state.openCount -= 1
            return nil
        }
        waiter?.continuation.resume(returning: .open)
    }
}

/// A failed transaction attempt, and whether COMMIT had been sent (which makes a lost
/// connection's outcome unknown).
private struct TransactionAttemptFailure: Error {
    let error: any Error
    let commitSent: Bool

    var isRetryable: Bool {
        guard let error = error as? PostgresError else { return false }
        if error.isSerializationFailure || error.isDeadlock { return true }
        return error.isConnectionFailure && !commitSent
    }
}
