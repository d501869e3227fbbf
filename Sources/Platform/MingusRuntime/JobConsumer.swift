import Foundation
public import Logging
import MingusAMQP
public import MingusCore
public import MingusPostgres
import CoreMetrics
import Synchronization
public import ServiceLifecycle

/// Consumes one worker's queue and runs each job through its handler, effectively once.
///
/// For each delivery: read the envelope; an unknown type, a body that fails its schema or cannot
/// be decoded goes to the dead-letter queue at once with the reason. Otherwise, in one PostgreSQL
/// transaction: insert the job id into the inbox (a job already there is acknowledged without
/// running again), run the handler (whose emitted jobs go to the outbox in the same transaction),
/// commit; then acknowledge. A failed handler is retried through the retry tiers, and after
/// ``RetryPolicy/maxAttempts`` dead-lettered with the last error.
///
/// An outage is never the job's fault and never counts as an attempt. When the database
/// connection is lost, the job keeps its delivery and runs again once the database answers a
/// probe (every 50 to 500 ms). When the broker connection is lost, jobs in flight finish (their
/// acknowledgements are lost, so the broker redelivers them and the inbox acknowledges the
/// copies), deliveries not yet started are dropped (the broker requeues them), and the consumer
/// reconnects within a second of the broker accepting connections again.
///
/// At most `concurrency` jobs run at once (the broker's prefetch is set to the same number). On
/// graceful shutdown the consumer is cancelled, jobs in flight finish and are acknowledged, and
/// `run()` returns; the service group's maximum graceful shutdown duration bounds the wait.
public final class JobConsumer: Service, Sendable {
    /// What the consumer needs to know.
    public struct Configuration: Sendable {
        public var queues: WorkerQueues
        /// Lanes taking deliveries at once; each applies what it takes in one transaction (up to
        /// `batchSize` jobs), or, for handlers that are not batchable, one transaction per job
        /// side by side (bounded by the connection pool).
        public var concurrency: Int
        /// Jobs applied together in one transaction when that many are waiting; 1 turns batching off.
        public var batchSize: Int
        public var retry: RetryPolicy
        /// Written as `cloudEvents:source` of emitted and dead-lettered jobs.
        public var source: String

        public init(queues: WorkerQueues, concurrency: Int = 8, batchSize: Int = 50, retry: RetryPolicy = RetryPolicy(),
                    source: String) {
            self.queues = queues
            self.concurrency = max(1, concurrency)
            self.batchSize = max(1, batchSize)
            self.retry = retry
            self.source = source
        }

        /// The broker prefetch: enough for every lane to take a full batch (quorum queues cap it at 2,000).
        public var prefetch: UInt16 { UInt16(min(concurrency * batchSize, 2000)) }
    }

    private let configuration: Configuration
    private let registry: JobRegistry
    private let database: PostgresClient
    private let broker: BrokerLink
    private let outbox: Outbox
    private let logger: Logger
    private let metrics: RuntimeMetrics

    public init(configuration: Configuration, registry: JobRegistry, database: PostgresClient, broker: BrokerLink,
                outbox: Outbox, logger: Logger, metrics: RuntimeMetrics) {
        self.configuration = configuration
        self.registry = registry
        self.database = database
        self.broker = broker
        self.outbox = outbox
        self.logger = logger
        self.metrics = metrics
    }

    public func run() async throws {
        var delay = Duration.milliseconds(50)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let connection = try await broker.connection()
                let consumer = try await connection.consume(queue: configuration.queues.queue, prefetch: configuration.prefetch)
                logger.info("consuming", metadata: [
                    "mingus.queue": "\(configuration.queues.queue)", "mingus.concurrency": "\(configuration.concurrency)",
                    "mingus.batch_size": "\(configuration.batchSize)", "mingus.prefetch": "\(configuration.prefetch)",
                ])
                delay = .milliseconds(50)
                try await withGracefulShutdownHandler {
                    try await consume(consumer)
                } onGracefulShutdown: { [logger, queue = configuration.queues.queue] in
                    logger.info("stopping: taking no new jobs, finishing the ones in flight", metadata: ["mingus.queue": "\(queue)"])
                    Task { await consumer.cancel() }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isShuttingDownGracefully { return }
                logger.warning("consumer stopped; reconnecting", metadata: ["mingus.error": "\(error)"])
                try? await Task.sleep(for: delay * Double.random(in: 0.5...1.0))
                delay = min(delay * 2, BrokerLink.maximumBackoff)
            }
        }
    }

    /// Feeds deliveries into a buffer that `concurrency` lanes drain batch by batch, until the
    /// consumer ends; then the lanes finish what was received and return. When the consumer
    /// fails (its channel or connection closed), deliveries no lane has taken are dropped: the
    /// broker requeues them, and applying them would only be repeated.
    private func consume(_ consumer: AMQPConsumer) async throws {
        let buffer = DeliveryBuffer<AMQPDelivery>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<configuration.concurrency {
                group.addTask {
                    while let batch = await buffer.take(max: self.configuration.batchSize) {
                        await self.process(batch, batchDone: buffer.batchDone)
                    }
                }
            }
            do {
                for try await delivery in consumer { buffer.append(delivery) }
                buffer.finish()
            } catch {
                buffer.finish(droppingWaiting: true)
                try await group.waitForAll()
                throw error
            }
            try await group.waitForAll()
        }
    }

    /// A delivery that passed every check and has a handler (a class: jobs move between
    /// arrays and tasks, and copying these fields each time showed in profiles).
    final class PreparedJob: Sendable {
        let delivery: AMQPDelivery
        let envelope: JobEnvelope
        let entry: JobRegistry.Entry
        let body: any Sendable
        /// The consumer's logger, without the job's metadata.
        let baseLogger: Logger
        let queue: String

        init(delivery: AMQPDelivery, envelope: JobEnvelope, entry: JobRegistry.Entry, body: any Sendable, baseLogger: Logger, queue: String) {
            self.delivery = delivery
            self.envelope = envelope
            self.entry = entry
            self.body = body
            self.baseLogger = baseLogger
            self.queue = queue
        }

        /// A logger carrying the job's id, type, attempt and queue (made when something is logged).
        var logger: Logger { JobContext.logger(baseLogger, id: envelope.id, type: envelope.type, attempt: envelope.attempt, queue: queue) }
    }

    /// Handles deliveries taken together: the ones that can be batched in one transaction, the
    /// others each in its own, concurrently.
    /// `batchDone` is called once the batchable ones have committed (at once when there are none).
    func process(_ deliveries: [AMQPDelivery], batchDone: @Sendable () -> Void = {}) async {
        var batch: [PreparedJob] = []
        var single: [PreparedJob] = []
        for delivery in deliveries {
            guard let job = await prepare(delivery) else { continue }
            if job.entry.batchable { batch.append(job) } else { single.append(job) }
        }
        if let oldest = [batch.lazy.map(\.envelope.time).min(), single.lazy.map(\.envelope.time).min()].compactMap({ $0 }).min() {
            metrics.lag(queue: configuration.queues.queue, seconds: Date().timeIntervalSince(oldest))
        }
        await withTaskGroup(of: Void.self) { group in
            for job in single {
                group.addTask { await self.apply(job) }
            }
            if batch.count == 1 {
                await apply(batch[0])
            } else if !batch.isEmpty {
                await applyBatch(batch)
            }
            batchDone()
        }
    }

    /// Checks a delivery: envelope, handler, schema, body. What can never succeed is dead-lettered
    /// here and nil returned.
    func prepare(_ delivery: AMQPDelivery) async -> PreparedJob? {
        let queue = configuration.queues.queue
        guard let envelope = JobEnvelope(delivery) else {
            await deadLetter(delivery, envelope: nil, reason: "malformed_envelope", error: "the message has no id or no type")
            return nil
        }
        var logger: Logger { JobContext.logger(self.logger, id: envelope.id, type: envelope.type, attempt: envelope.attempt, queue: queue) }
        guard let entry = registry.entry(envelope.type) else {
            await deadLetter(delivery, envelope: envelope, reason: "unknown_type",
                             error: "no handler for type '\(envelope.type)' in queue \(queue)", logger: logger)
            return nil
        }
        var parsed: JSONValue?
        if let schema = entry.schema {
            let (value, violations) = schema.check(envelope.body)
            parsed = value
            if !violations.isEmpty {
                let text = violations.prefix(5).map { $0.description }.joined(separator: "; ")
                await deadLetter(delivery, envelope: envelope, reason: "schema", error: text, logger: logger)
                return nil
            }
        }
        let body: any Sendable
        do {
            body = try entry.decode(envelope.body, parsed)
        } catch {
            await deadLetter(delivery, envelope: envelope, reason: "undecodable", error: Self.describeDecoding(error), logger: logger)
            return nil
        }
        return PreparedJob(delivery: delivery, envelope: envelope, entry: entry, body: body, baseLogger: self.logger, queue: queue)
    }

    /// Applies one job in its own transaction, then settles it.
    func apply(_ job: PreparedJob) async {
        let (delivery, envelope) = (job.delivery, job.envelope)
        var logger: Logger { job.logger }
        let queue = configuration.queues.queue
        metrics.jobsInFlight.increment(by: 1)
        defer { metrics.jobsInFlight.decrement(by: 1) }
        let started = ContinuousClock.now
        do {
            let context = (envelope: envelope, logger: job.baseLogger, queue: queue, source: configuration.source)
            let emitted = EmitFlag()
            let outcome = try await database.withTransaction { db -> Outcome in
                let fresh = try await db.query("""
                    INSERT INTO mingus_inbox (message_id, queue, type) VALUES (\(envelope.id), \(queue), \(envelope.type))
                    ON CONFLICT (message_id) DO NOTHING RETURNING 1
                    """)
                guard !fresh.isEmpty else { return .duplicate }
                do {
                    try await job.entry.run([(job.body, JobContext(
                        id: envelope.id, type: envelope.type, attempt: envelope.attempt, queue: context.queue,
                        traceID: envelope.traceID, database: db, logger: context.logger, source: context.source,
                        emitted: emitted))])
                } catch let error as PermanentJobError where error.keepingChanges {
                    try await db.execute("DELETE FROM mingus_inbox WHERE message_id = \(envelope.id)")
                    return .failedForGood(error.reason)
                }
                return .applied
            }
            if case .failedForGood(let reason) = outcome {
                if emitted.isSet { outbox.nudge() }
                await deadLetter(delivery, envelope: envelope, reason: "permanent", error: reason, logger: logger)
                return
            }
            let elapsed = ContinuousClock.now - started
            settle(delivery, logger: logger) { try $0.ack() }
            metrics.committed(queue: queue, type: envelope.type, applied: outcome == .applied, seconds: elapsed.inSeconds)
            if outcome == .duplicate {
                logger.info("job already applied; acknowledged without running again")
            }
            if emitted.isSet { outbox.nudge() }
        } catch let error as PostgresError where error.isConnectionFailure {
            // Not the job's fault: keep the delivery and run the job again once the database answers.
            logger.warning("database unavailable; the job runs again once it answers", metadata: ["mingus.error": "\(error)"])
            if await databaseAnswers() { await apply(job) }
        } catch let error as PermanentJobError {
            await deadLetter(delivery, envelope: envelope, reason: "permanent", error: error.reason, logger: logger)
        } catch {
            await retryOrDeadLetter(delivery, envelope: envelope, error: error, logger: logger)
        }
    }

    /// Applies jobs in one transaction: one statement records them all in the inbox, then the
    /// fresh jobs of each type go to their handler together (a per-job handler runs once per
    /// job, one after the other). If anything fails, the transaction rolls back and each job is
    /// applied on its own, so a failing job never fails its neighbours.
    func applyBatch(_ jobs: [PreparedJob]) async {
        let queue = configuration.queues.queue
        let source = configuration.source
        metrics.jobsInFlight.increment(by: Double(jobs.count))
        defer { metrics.jobsInFlight.decrement(by: Double(jobs.count)) }
        let started = ContinuousClock.now
        let emitted = EmitFlag()
        let fresh: Set<String>
        do {
            fresh = try await database.withTransaction(maxAttempts: 1) { db -> Set<String> in
                let ids = jobs.map(\.envelope.id)
                let types = jobs.map(\.envelope.type)
                let inserted = try await db.query("""
                    INSERT INTO mingus_inbox (message_id, queue, type)
                    SELECT id, \(queue), type FROM unnest(\(ids)::text[], \(types)::text[]) AS job (id, type)
                    ON CONFLICT (message_id) DO NOTHING RETURNING message_id
                    """)
                var fresh = Set(try inserted.map { try $0.decode(String.self, at: 0) })
                let applied = fresh
                // The fresh jobs grouped by type, types in the order they first appear: each
                // group goes to its handler at once.
                var groups: [(entry: JobRegistry.Entry, jobs: [(body: any Sendable, context: JobContext)])] = []
                var groupOfType: [String: Int] = [:]
                for job in jobs where fresh.remove(job.envelope.id) != nil {
                    let context = JobContext(
                        id: job.envelope.id, type: job.envelope.type, attempt: job.envelope.attempt, queue: queue,
                        traceID: job.envelope.traceID, database: db, logger: job.baseLogger, source: source, emitted: emitted)
                    if let index = groupOfType[job.envelope.type] {
                        groups[index].jobs.append((job.body, context))
                    } else {
                        groupOfType[job.envelope.type] = groups.count
                        groups.append((job.entry, [(job.body, context)]))
                    }
                }
                for group in groups { try await group.entry.run(group.jobs) }
                return applied
            }
        } catch let error as PostgresError where error.isConnectionFailure {
            logger.warning("database unavailable; the batch runs again once it answers", metadata: ["mingus.error": "\(error)", "mingus.batch": "\(jobs.count)"])
            if await databaseAnswers() { await applyBatch(jobs) }
            return
        } catch {
            logger.debug("batch failed; applying its jobs one by one", metadata: ["mingus.error": "\(error)", "mingus.batch": "\(jobs.count)"])
            for job in jobs { await apply(job) }
            return
        }
        let elapsed = ContinuousClock.now - started
        let seconds = elapsed.inSeconds / Double(jobs.count)
        for job in jobs {
            settle(job.delivery, logger: job.logger) { try $0.ack() }
            let applied = fresh.contains(job.envelope.id)
            metrics.committed(queue: queue, type: job.envelope.type, applied: applied, seconds: seconds)
            if !applied { job.logger.info("job already applied; acknowledged without running again") }
        }
        if emitted.isSet { outbox.nudge() }
    }

    private enum Outcome: Equatable { case applied, duplicate, failedForGood(String) }

    /// Waits until the database answers a probe, probing with backoff (50 ms up to 500 ms, each
    /// pause between half and all of that). False when the worker stops first: the job's
    /// delivery stays unsettled, and the broker requeues it when the connection closes.
    private func databaseAnswers() async -> Bool {
        var delay = Duration.milliseconds(50)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: delay * Double.random(in: 0.5...1.0))
            if (try? await database.execute("SELECT 1")) != nil { return true }
            delay = min(delay * 2, .milliseconds(500))
        }
        return false
    }

    private func retryOrDeadLetter(_ delivery: AMQPDelivery, envelope: JobEnvelope, error: any Error, logger: Logger) async {
        let queue = configuration.queues.queue
        let policy = configuration.retry
        let errorText = Self.oneLine("\(error)")
        guard envelope.attempt < policy.maxAttempts else {
            await deadLetter(delivery, envelope: envelope, reason: "attempts_exhausted",
                             error: "failed \(envelope.attempt) attempts; last error: \(errorText)", logger: logger)
            return
        }
        var retry = envelope
        retry.attempt += 1
        let tier = MingusTopology.retryTier(policy.tier(afterAttempt: envelope.attempt))
        var message = retry.message(extraHeaders: [JobEnvelope.errorHeader: .string(errorText)])
        let delay = policy.expirationMilliseconds(afterAttempt: envelope.attempt)
        message.properties.expiration = String(delay)
        do {
            try await broker.publish(message, exchange: tier, routingKey: delivery.routingKey)
            settle(delivery, logger: logger) { try $0.ack() }
            metrics.retried(queue: queue, type: envelope.type)
            metrics.processed(queue: queue, type: envelope.type, outcome: "retried")
            logger.warning("job failed; retrying", metadata: [
                "mingus.error": "\(errorText)", "mingus.retry.tier": "\(tier)", "mingus.retry.delay_ms": "\(delay)",
            ])
        } catch {
            logger.error("cannot publish the retry; requeueing", metadata: ["mingus.error": "\(error)"])
            settle(delivery, logger: logger) { try $0.nack(requeue: true) }
        }
    }

    /// Publishes the job to the worker's dead-letter queue with the reason, then acknowledges it.
    private func deadLetter(_ delivery: AMQPDelivery, envelope: JobEnvelope?, reason: String, error: String,
                            logger: Logger? = nil) async {
        let logger = logger ?? self.logger
        let queues = configuration.queues
        var properties = delivery.properties
        properties.headers[JobEnvelope.reasonHeader] = .string(reason)
        properties.headers[JobEnvelope.errorHeader] = .string(Self.oneLine(error))
        properties.headers[JobEnvelope.attemptHeader] = .int(Int64(envelope?.attempt ?? 1))
        properties.headers[JobEnvelope.originalQueueHeader] = .string(queues.queue)
        properties.headers[JobEnvelope.originalRoutingKeyHeader] = .string(delivery.routingKey)
        properties.headers[JobEnvelope.deadLetteredAtHeader] = .string(JobEnvelope.formatTime(Date()))
        properties.persistent = true
        properties.expiration = nil
        do {
            try await broker.publish(AMQPMessage(body: delivery.body, properties: properties),
                                     exchange: MingusTopology.deadLetterExchange, routingKey: queues.deadLetterRoutingKey)
            settle(delivery, logger: logger) { try $0.ack() }
            let type = envelope?.type ?? "unknown"
            metrics.deadLettered(queue: queues.queue, type: type, reason: reason)
            metrics.processed(queue: queues.queue, type: type, outcome: "dead_lettered")
            logger.error("job dead-lettered", metadata: ["mingus.dead_letter.reason": "\(reason)", "mingus.error": "\(Self.oneLine(error))"])
        } catch {
            logger.error("cannot publish to the dead-letter queue; requeueing", metadata: ["mingus.error": "\(error)"])
            settle(delivery, logger: logger) { try $0.nack(requeue: true) }
        }
    }

    /// Settles a delivery; if its connection is gone the broker redelivers it, and the inbox
    /// makes that harmless.
    private func settle(_ delivery: AMQPDelivery, logger: @autoclosure () -> Logger, _ body: (AMQPDelivery) throws -> Void) {
        do {
            try body(delivery)
        } catch {
            logger().warning("cannot settle the delivery; the broker will redeliver it", metadata: ["mingus.error": "\(error)"])
        }
    }

    /// A decoding error without values: which field and what went wrong.
    static func describeDecoding(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "the body is not valid JSON for its type" }
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "the body" : "field '\(path)'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing field '\(key.stringValue)'" + (context.codingPath.isEmpty ? "" : " in \(parent)")
        case .typeMismatch(let type, let context): return "\(path(context)) is not a \(type)"
        case .valueNotFound(let type, let context): return "\(path(context)) is null, expected \(type)"
        case .dataCorrupted(let context): return "\(path(context)) is not valid JSON"
        @unknown default: return "the body cannot be decoded"
        }
    }

    static func oneLine(_ text: String) -> String {
        String(text.split(whereSeparator: \.isNewline).joined(separator: " ").prefix(1000))
    }
}

/// Deliveries received and not yet taken by a lane, handed out so that batches grow with load.
///
/// A lane that takes deliveries counts as batching until it calls ``batchDone()`` (at once when
/// it took nothing batchable). While another lane is batching, a free lane takes deliveries only
/// once a full batch (`max`) waits: so under light load one transaction at a time gathers
/// everything that arrived while the previous one ran (group commit), and under heavy load every
/// lane commits full batches side by side. `take` returns nil once finished and empty.
final class DeliveryBuffer<Element: Sendable>: Sendable {
    private struct Waiter {
        var max: Int
        var continuation: CheckedContinuation<[Element]?, Never>
    }

    private struct State {
        var items: [Element] = []
        var waiters: [Waiter] = []
        var batching = 0
        var finished = false

        /// Hands waiting deliveries to waiting lanes while the rules allow; returns who gets what.
        mutating func dispatch() -> [(CheckedContinuation<[Element]?, Never>, [Element]?)] {
            var handed: [(CheckedContinuation<[Element]?, Never>, [Element]?)] = []
            while let waiter = waiters.first {
                if let taken = take(max: waiter.max) {
                    waiters.removeFirst()
                    handed.append((waiter.continuation, taken))
                } else if finished && items.isEmpty {
                    waiters.removeFirst()
                    handed.append((waiter.continuation, nil))
                } else {
                    break
                }
            }
            return handed
        }

        /// Up to `max` deliveries when a lane may take them now.
        mutating func take(max: Int) -> [Element]? {
            guard !items.isEmpty, items.count >= max || batching == 0 || finished else { return nil }
            let count = Swift.min(max, items.count)
            defer { items.removeFirst(count) }
            batching += 1
            return Array(items.prefix(count))
        }
    }

    private let state = Mutex(State())

    func append(_ delivery: Element) {
        update { $0.items.append(delivery) }
    }

    /// Ends the buffer: lanes get what is waiting, then nil; with `droppingWaiting`, nil at once.
    func finish(droppingWaiting: Bool = false) {
        update { state in
            state.finished = true
            if droppingWaiting { state.items = [] }
        }
    }

    /// The lane that took deliveries has committed its batch (or took nothing batchable).
    func batchDone() {
        update { $0.batching -= 1 }
    }

    /// Changes the state, then resumes the waiting lanes the change lets go on.
    private func update(_ change: (inout State) -> Void) {
        let handed = state.withLock { state in
            change(&state)
            return state.dispatch()
        }
        for (continuation, deliveries) in handed { continuation.resume(returning: deliveries) }
    }

    /// Deliveries for a free lane: up to `max`, once the rules above allow; nil once finished and empty.
    func take(max: Int) async -> [Element]? {
        await withCheckedContinuation { continuation in
            let ready: [Element]?? = state.withLock { state in
                if state.waiters.isEmpty, let taken = state.take(max: max) { return .some(taken) }
                if state.finished && state.items.isEmpty { return .some(nil) }
                state.waiters.append(Waiter(max: max, continuation: continuation))
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
