public import Foundation
public import Logging
public import MingusPostgres
import Synchronization

/// What a handler gets besides its body: the job's identity, a logger carrying it, and the
/// job's PostgreSQL transaction (commit is the runtime's job, after the handler returns).
public struct JobContext: Sendable {
    public let id: String
    public let type: String
    public let attempt: Int
    public let queue: String
    public let traceID: String?
    /// The job's transaction: everything written here commits with the inbox row, or not at all.
    public let database: PostgresConnection
    /// A logger carrying the job's id, type, attempt and queue.
    public var logger: Logger { Self.logger(baseLogger, id: id, type: type, attempt: attempt, queue: queue) }
    private let baseLogger: Logger
    let source: String
    /// Set when the handler emitted something, so the outbox relay is woken only then.
    let emitted: EmitFlag
    /// The ids this run of the handler emitted, and how many jobs of each type it emitted
    /// without an id: one per context, so per run of the handler.
    private let emittedIDs = EmittedIDs()

    init(id: String, type: String, attempt: Int, queue: String, traceID: String?, database: PostgresConnection,
         logger: Logger, source: String, emitted: EmitFlag) {
        self.id = id
        self.type = type
        self.attempt = attempt
        self.queue = queue
        self.traceID = traceID
        self.database = database
        self.baseLogger = logger
        self.source = source
        self.emitted = emitted
    }

    /// `base` with the job's metadata; made only when a job logs, since four metadata entries
    /// cost more than running a small job.
    static func logger(_ base: Logger, id: String, type: String, attempt: Int, queue: String) -> Logger {
        var logger = base
        logger[metadataKey: "mingus.job.id"] = "\(id)"
        logger[metadataKey: "mingus.job.type"] = "\(type)"
        logger[metadataKey: "mingus.job.attempt"] = "\(attempt)"
        logger[metadataKey: "mingus.queue"] = "\(queue)"
        return logger
    }

    /// Emits a job in the same transaction (outbox); the runtime publishes it after commit.
    ///
    /// Without `id`, the emitted job's id is `<this job's id>/<type>/<n>`, where `n` counts the
    /// jobs of that type this run of the handler emitted without an id (1, 2, …): a handler that
    /// emits several jobs of one type gets one id for each, and a retried handler, emitting in
    /// the same order, the same ids again.
    ///
    /// - Throws: `PermanentJobError` when this run of the handler already emitted a job with the
    ///   same id (an explicit id given twice, or one that equals a default id). That is a
    ///   mistake in the handler, which a retry would only repeat: the job is dead-lettered
    ///   instead of one of the two jobs being dropped.
    public func emit<Body: Encodable>(type: String, routingKey: String? = nil, _ body: Body, id: String? = nil) async throws {
        let encoded = try JSONEncoder.mingus.encode(body)
        let emittedID = id ?? "\(self.id)/\(type)/\(emittedIDs.nextOrdinal(of: type))"
        guard emittedIDs.insert(emittedID) else {
            throw PermanentJobError(
                "the handler of \(self.type) emitted two jobs with the id '\(emittedID)'; ids must differ within one job")
        }
        try await Outbox.insert(
            on: database, id: emittedID, exchange: Outbox.jobsExchange, routingKey: routingKey ?? type,
            type: type, body: Array(encoded), traceID: traceID)
        emitted.set()
    }
}

/// Whether a job emitted messages (set from the handler's task, read after commit).
final class EmitFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// The message ids one run of a handler emitted, and its count of default ids per type.
final class EmittedIDs: Sendable {
    private let state = Mutex<(ids: Set<String>, ordinals: [String: Int])>(([], [:]))

    /// The next ordinal for a default id of `type`: 1 for the first.
    func nextOrdinal(of type: String) -> Int {
        state.withLock { state in
            state.ordinals[type, default: 0] += 1
            return state.ordinals[type]!
        }
    }

    /// Records `id`; false when it was already recorded.
    func insert(_ id: String) -> Bool {
        state.withLock { $0.ids.insert(id).inserted }
    }
}

/// A handler asks for no retry: the job goes to the dead-letter queue with this reason.
///
/// By default the job's transaction rolls back. With `keepingChanges`, what the handler wrote
/// (the failure it recorded, the jobs it emitted) commits first, and the job is left out of the
/// inbox so that a replay from the dead-letter queue runs it again.
public struct PermanentJobError: Error, CustomStringConvertible {
    public var reason: String
    public var keepingChanges: Bool
    public init(_ reason: String, keepingChanges: Bool = false) {
        self.reason = reason
        self.keepingChanges = keepingChanges
    }
    public var description: String { reason }
}

/// A job of a batch handler: its decoded body and its context.
public struct BatchedJob<Body: Sendable>: Sendable {
    public let body: Body
    public let context: JobContext
}

/// The job types a worker handles: type → body decoding, optional schema, handler.
public struct JobRegistry: Sendable {
    struct Entry: Sendable {
        let schema: JSONSchema?
        let batchable: Bool
        /// Decodes a body, from the value its schema check parsed when there is one and the body
        /// type reads it (``JSONBodyDecodable``).
        let decode: @Sendable ([UInt8], JSONValue?) throws -> any Sendable
        /// Runs the handler for decoded bodies of this type, all in the transaction of their contexts.
        let run: @Sendable ([(body: any Sendable, context: JobContext)]) async throws -> Void
    }

    private(set) var entries: [String: Entry] = [:]

    public init() {}

    /// Handles jobs of `type`: the body is checked against `schema` (when given), decoded as
    /// `Body`, and passed to `handler` inside the job's transaction.
    ///
    /// `batchable` jobs may share one transaction with other waiting jobs, their handlers running
    /// one after another (and again on their own if any of the batch fails). Handlers that wait on
    /// anything but the database (HTTP calls, sleeps) should pass `batchable: false`, so that they
    /// run concurrently, each in its own transaction.
    public mutating func register<Body: Decodable & Sendable>(
        _ type: String,
        as body: Body.Type,
        schema: JSONSchema? = nil,
        batchable: Bool = true,
        handler: @escaping @Sendable (Body, JobContext) async throws -> Void
    ) {
        registerBatch(type, as: body, schema: schema, batchable: batchable) { jobs in
            for job in jobs { try await handler(job.body, job.context) }
        }
    }

    /// Handles jobs of `type` a batch at a time: every job of the type taken together is passed
    /// to `handler` at once, in one transaction (their contexts share `database`), so that it can
    /// write them all with a few multi-row statements. Jobs already applied are left out.
    ///
    /// If `handler` throws, the transaction rolls back and each job runs again alone (a batch of
    /// one), so a failing job never fails its neighbours. With `batchable: false` every batch
    /// holds one job.
    public mutating func registerBatch<Body: Decodable & Sendable>(
        _ type: String,
        as body: Body.Type,
        schema: JSONSchema? = nil,
        batchable: Bool = true,
        handler: @escaping @Sendable ([BatchedJob<Body>]) async throws -> Void
    ) {
        entries[type] = Entry(
            schema: schema,
            batchable: batchable,
            decode: { bytes, parsed in
                if let parsed, let fast = Body.self as? any JSONBodyDecodable.Type {
                    return try fast.init(json: JSONBody(parsed)) as! Body
                }
                return try JSONDecoder.mingus.decode(Body.self, from: Data(bytes))
            },
            run: { jobs in
                try await handler(jobs.map { BatchedJob(body: $0.body as! Body, context: $0.context) })
            })
    }

    /// Adds the handlers of `other` (another domain's, run by the same worker).
    ///
    /// - Throws: `PermanentJobError` when both handle one type: one of them would be lost.
    public mutating func merge(_ other: JobRegistry) throws {
        for (type, entry) in other.entries {
            guard entries[type] == nil else { throw PermanentJobError("two handlers for the job type \(type)") }
            entries[type] = entry
        }
    }

    /// The registered job types.
    public var types: [String] { entries.keys.sorted() }

    func entry(_ type: String) -> Entry? { entries[type] }
}

extension JSONEncoder {
    /// Encoding shared by every message body: snake_case keys, ISO 8601 dates, sorted keys.
    public static var mingus: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension JSONDecoder {
    /// Decoding shared by every message body: snake_case keys, ISO 8601 dates.
    public static var mingus: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
