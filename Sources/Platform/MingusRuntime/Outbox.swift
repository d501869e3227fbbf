import Foundation
public import Logging
import MingusAMQP
import MingusCore
public import MingusPostgres
public import ServiceLifecycle
import Synchronization

/// Messages emitted inside a job's transaction, relayed to the broker after commit.
///
/// Rows are claimed with `FOR UPDATE SKIP LOCKED` so several processes can relay at once, published
/// with confirms, then deleted in the same transaction. A process that dies after publishing and
/// before commit leaves the rows for another relay: they are published again with the same
/// message id, and the receiving worker's inbox drops the duplicate.
public final class Outbox: Service, Sendable {
    static let jobsExchange = MingusTopology.jobsExchange

    private let database: PostgresClient
    private let broker: BrokerLink
    private let logger: Logger
    private let metrics: RuntimeMetrics
    private let source: String
    private let batchSize: Int
    private let pollInterval: Duration
    private let wakeUp: AsyncStream<Void>.Continuation
    private let wakeUps: AsyncStream<Void>

    public init(database: PostgresClient, broker: BrokerLink, source: String, logger: Logger, metrics: RuntimeMetrics,
                batchSize: Int = 200, pollInterval: Duration = .seconds(1)) {
        self.database = database
        self.broker = broker
        self.source = source
        self.logger = logger
        self.metrics = metrics
        self.batchSize = batchSize
        self.pollInterval = pollInterval
        (wakeUps, wakeUp) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Writes one message to the outbox on `connection`, inside the caller's transaction.
    ///
    /// A message id already in the outbox is kept as it is. One id means one message,
    /// which the receiving worker's inbox would also take only once, so the row
    /// already there stands for this one. Such a row was written for another job, or by an
    /// earlier run whose changes committed: a job that failed for good with
    /// ``PermanentJobError/keepingChanges`` and is replayed, the scheduler firing a job a
    /// handler also emitted, another job (in the same batch or not) giving the same explicit id.
    /// A redelivered job cannot meet its own earlier rows here: an attempt that failed or
    /// crashed rolled its transaction (and its outbox rows) back, and an attempt that committed
    /// put the job in the inbox, so the redelivery does not run the handler. Within one run of
    /// a handler a repeated id is an error (``JobContext/emit(type:routingKey:_:id:)``), never
    /// a silent drop.
    static func insert(on connection: PostgresConnection, id: String, exchange: String, routingKey: String,
                       type: String, body: [UInt8], traceID: String?) async throws {
        try await connection.execute("""
            INSERT INTO mingus_outbox (message_id, exchange, routing_key, type, body, trace_id)
            VALUES (\(id), \(exchange), \(routingKey), \(type), \(body), \(traceID))
            ON CONFLICT (message_id) DO NOTHING
            """)
    }

    /// Asks the relay to look at the outbox now (after a commit that emitted messages).
    public func nudge() {
        wakeUp.yield()
    }

    /// Relays until graceful shutdown, then flushes what is left once more.
    public func run() async throws {
        let wakeUps = self.wakeUps
        await withGracefulShutdownHandler {
            var iterator = wakeUps.makeAsyncIterator()
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                await relayAll()
                // Sleep until nudged or the poll interval passes (the timer nudges too).
                let timer = Task { [pollInterval, wakeUp] in
                    try await Task.sleep(for: pollInterval)
                    wakeUp.yield()
                }
                _ = await iterator.next()
                timer.cancel()
            }
        } onGracefulShutdown: {
            self.wakeUp.yield()
        }
        await relayAll()
    }

    /// Publishes batches until the outbox is empty or publishing fails.
    func relayAll() async {
        while !Task.isCancelled {
            do {
                let count = try await relayBatch()
                if count < batchSize { return }
            } catch {
                logger.warning("outbox relay failed; will retry", metadata: ["mingus.error": "\(error)"])
                return
            }
        }
    }

    /// Publishes one batch; returns how many messages it published.
    func relayBatch() async throws -> Int {
        let batchSize = self.batchSize
        let broker = self.broker
        let source = self.source
        let published = try await database.withTransaction { db in
            let rows = try await db.query("""
                SELECT id, message_id, exchange, routing_key, type, body, trace_id, created_at
                FROM mingus_outbox ORDER BY id LIMIT \(batchSize) FOR UPDATE SKIP LOCKED
                """)
            guard !rows.isEmpty else { return 0 }
            var ids: [Int64] = []
            try await withThrowingTaskGroup(of: Void.self) { group in
                for row in rows {
                    ids.append(try row.decode(Int64.self, at: 0))
                    let envelope = JobEnvelope(
                        id: try row.decode(String.self, at: 1), type: try row.decode(String.self, at: 4), source: source,
                        time: try row.decode(Date.self, at: 7), traceID: try row.decode(String?.self, at: 6),
                        body: try row.decode([UInt8].self, at: 5))
                    let exchange = try row.decode(String.self, at: 2)
                    let routingKey = try row.decode(String.self, at: 3)
                    group.addTask { try await broker.publish(envelope.message(), exchange: exchange, routingKey: routingKey) }
                }
                try await group.waitForAll()
            }
            try await db.execute("DELETE FROM mingus_outbox WHERE id = ANY(\(ids))")
            return ids.count
        }
        if published > 0 { metrics.outboxPublished(published) }
        return published
    }
}
