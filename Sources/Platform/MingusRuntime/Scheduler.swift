public import Foundation
public import Logging
import MingusCore
public import MingusPostgres
public import ServiceLifecycle

/// Fires durable scheduled jobs: one-off jobs at their `run_at`, and cron schedules.
///
/// Each pass claims due rows with `FOR UPDATE SKIP LOCKED` and, in the same transaction, writes
/// their jobs to the outbox and marks them fired (or moves a cron schedule's `next_run_at` on),
/// so any number of worker processes can run it and no job fires twice. A cron schedule that
/// missed several runs while nothing was running fires once, then continues from now.
public final class Scheduler: Service, Sendable {
    private let database: PostgresClient
    private let outbox: Outbox
    private let logger: Logger
    private let metrics: RuntimeMetrics
    private let interval: Duration

    public init(database: PostgresClient, outbox: Outbox, logger: Logger, metrics: RuntimeMetrics, interval: Duration = .seconds(1)) {
        self.database = database
        self.outbox = outbox
        self.logger = logger
        self.metrics = metrics
        self.interval = interval
    }

    /// Schedules a job for `runAt`, inside the caller's transaction. A job id already scheduled
    /// is left as it is.
    public static func schedule(
        on connection: PostgresConnection, id: String, type: String, routingKey: String? = nil, body: [UInt8], at runAt: Date
    ) async throws {
        try await connection.execute("""
            INSERT INTO mingus_scheduled_jobs (message_id, run_at, routing_key, type, body)
            VALUES (\(id), \(runAt), \(routingKey ?? type), \(type), \(body))
            ON CONFLICT (message_id) DO NOTHING
            """)
    }

    /// A one-off job to schedule (``schedule(on:_:)``).
    public struct OneOff: Sendable {
        public var id: String
        public var type: String
        public var routingKey: String?
        public var body: [UInt8]
        public var runAt: Date

        public init(id: String, type: String, routingKey: String? = nil, body: [UInt8], at runAt: Date) {
            self.id = id
            self.type = type
            self.routingKey = routingKey
            self.body = body
            self.runAt = runAt
        }
    }

    /// Schedules several jobs with one statement, inside the caller's transaction; ids already
    /// scheduled are left as they are.
    public static func schedule(on connection: PostgresConnection, _ jobs: [OneOff]) async throws {
        guard !jobs.isEmpty else { return }
        try await connection.execute("""
            INSERT INTO mingus_scheduled_jobs (message_id, run_at, routing_key, type, body)
            SELECT * FROM unnest(\(jobs.map(\.id))::text[], \(jobs.map(\.runAt))::timestamptz[],
                                 \(jobs.map { $0.routingKey ?? $0.type })::text[], \(jobs.map(\.type))::text[], \(jobs.map(\.body))::bytea[])
            ON CONFLICT (message_id) DO NOTHING
            """)
    }

    /// Creates or replaces a cron schedule; its next run is computed from now.
    public static func upsertPeriodic(
        on connection: PostgresConnection, name: String, cron: String, type: String, routingKey: String? = nil, body: [UInt8] = Array("{}".utf8)
    ) async throws {
        let schedule = try CronSchedule(cron)
        guard let next = schedule.next(after: Date()) else {
            throw PermanentJobError("cron expression '\(cron)' never fires")
        }
        try await connection.execute("""
            INSERT INTO mingus_periodic_schedules (name, cron, routing_key, type, body, next_run_at)
            VALUES (\(name), \(cron), \(routingKey ?? type), \(type), \(body), \(next))
            ON CONFLICT (name) DO UPDATE SET cron = EXCLUDED.cron, routing_key = EXCLUDED.routing_key,
                type = EXCLUDED.type, body = EXCLUDED.body, next_run_at = EXCLUDED.next_run_at, enabled = true
            """)
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let fired = try await fireDueJobs() + fireDueSchedules()
                if fired > 0 { outbox.nudge() }
            } catch {
                logger.warning("scheduler pass failed; will retry", metadata: ["mingus.error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Moves due one-off jobs to the outbox; returns how many.
    func fireDueJobs() async throws -> Int {
        let fired = try await database.withTransaction { db in
            let rows = try await db.query("""
                SELECT id, message_id, routing_key, type, body FROM mingus_scheduled_jobs
                WHERE fired_at IS NULL AND run_at <= now() ORDER BY run_at LIMIT 500 FOR UPDATE SKIP LOCKED
                """)
            var ids: [Int64] = []
            for row in rows {
                ids.append(try row.decode(Int64.self, at: 0))
                try await Outbox.insert(
                    on: db, id: try row.decode(String.self, at: 1), exchange: MingusTopology.jobsExchange,
                    routingKey: try row.decode(String.self, at: 2), type: try row.decode(String.self, at: 3),
                    body: try row.decode([UInt8].self, at: 4), traceID: nil)
            }
            if !ids.isEmpty {
                try await db.execute("UPDATE mingus_scheduled_jobs SET fired_at = now() WHERE id = ANY(\(ids))")
            }
            return ids.count
        }
        if fired > 0 { metrics.scheduledFired(kind: "once", count: fired) }
        return fired
    }

    /// Fires due cron schedules once each and moves them to their next run; returns how many fired.
    func fireDueSchedules() async throws -> Int {
        let logger = self.logger
        let fired = try await database.withTransaction { db in
            let rows = try await db.query("""
                SELECT name, cron, routing_key, type, body, next_run_at FROM mingus_periodic_schedules
                WHERE enabled AND next_run_at <= now() FOR UPDATE SKIP LOCKED
                """)
            let now = Date()
            var fired = 0
            for row in rows {
                let name = try row.decode(String.self, at: 0)
                let due = try row.decode(Date.self, at: 5)
                guard let schedule = try? CronSchedule(try row.decode(String.self, at: 1)),
                      let next = schedule.next(after: max(due, now)) else {
                    logger.error("disabling a cron schedule that can never fire again", metadata: ["mingus.schedule": "\(name)"])
                    try await db.execute("UPDATE mingus_periodic_schedules SET enabled = false WHERE name = \(name)")
                    continue
                }
                let id = "schedule/\(name)/\(JobEnvelope.formatTime(due))"
                try await Outbox.insert(
                    on: db, id: id, exchange: MingusTopology.jobsExchange, routingKey: try row.decode(String.self, at: 2),
                    type: try row.decode(String.self, at: 3), body: try row.decode([UInt8].self, at: 4), traceID: nil)
                try await db.execute("""
                    UPDATE mingus_periodic_schedules SET next_run_at = \(next), last_run_at = \(due) WHERE name = \(name)
                    """)
                fired += 1
            }
            return fired
        }
        if fired > 0 { metrics.scheduledFired(kind: "cron", count: fired) }
        return fired
    }
}
