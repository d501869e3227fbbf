// A worker for the runtime's integration tests and benchmarks. Its name (and so its queue,
// `mingus.<name>`) comes from MINGUS_TEST_WORKER_NAME; its job types are `<name>.insert`,
// `<name>.noop`, `<name>.flaky`, `<name>.fail`, `<name>.slow`, `<name>.gated`, `<name>.stuck`,
// `<name>.emit`, `<name>.emit2`, `<name>.emitsame` and `<name>.insertbatch` (the insert as a
// batch handler: one multi-row statement per batch). Effects go to
// `runtime_test_effects`, attempts to `runtime_test_attempts` (outside the job's transaction, so
// failed attempts are recorded too). Both tables and the schemas come from
// MINGUS_TEST_FIXTURES_DIR (default `Tests/Fixtures` under the working directory).
import Foundation
import MingusCore
import MingusPostgres
import MingusRuntime

struct KeyedJob: Codable, Sendable {
    var key: String
    var value: Int?
    var failures: Int?
    var millis: Int?
}

struct NoBody: Codable, Sendable {}

let environment = ProcessInfo.processInfo.environment
let name = environment["MINGUS_TEST_WORKER_NAME"] ?? "test"
let fixtures = URL(fileURLWithPath: environment["MINGUS_TEST_FIXTURES_DIR"] ?? "Tests/Fixtures")

/// The test worker: its tables are made (once, under a lock) before its handlers are built.
let definition = WorkerDefinition(name: name, defaultMetricsPort: 0, sideConnections: 2) { setup in
    let sideChannel = setup.sideDatabase
    let insertSchema = try JSONSchema(contentsOf: fixtures.appendingPathComponent("schemas/test.insert.v1.json"))
    let tables = try String(contentsOf: fixtures.appendingPathComponent("runtime_test_tables.sql"), encoding: .utf8)
    try await sideChannel.withTransaction { db in
        try await db.execute("SELECT pg_advisory_xact_lock(424242)")
        try await db.executeScript(tables)
    }

    @Sendable func recordEffect(_ job: KeyedJob, _ context: JobContext) async throws {
        try await context.database.execute("""
            INSERT INTO runtime_test_effects (worker, key, value, job_id) VALUES (\(name), \(job.key), \(job.value ?? 0), \(context.id))
            """)
    }

    @Sendable func recordAttempt(_ job: KeyedJob, _ context: JobContext) async throws {
        try await sideChannel.execute("""
            INSERT INTO runtime_test_attempts (worker, key, attempt) VALUES (\(name), \(job.key), \(context.attempt))
            """)
    }

    var registry = JobRegistry()
    registry.register("\(name).insert", as: KeyedJob.self, schema: insertSchema) { job, context in
        try await recordEffect(job, context)
    }
    registry.registerBatch("\(name).insertbatch", as: KeyedJob.self, schema: insertSchema) { jobs in
        guard let database = jobs.first?.context.database else { return }
        try await database.execute("""
            INSERT INTO runtime_test_effects (worker, key, value, job_id)
            SELECT \(name), key, value, job_id FROM unnest(\(jobs.map(\.body.key))::text[], \(jobs.map { Int64($0.body.value ?? 0) })::int8[],
                                                          \(jobs.map(\.context.id))::text[]) AS job (key, value, job_id)
            """)
    }
    registry.register("\(name).noop", as: NoBody.self) { _, _ in }
    registry.register("\(name).flaky", as: KeyedJob.self) { job, context in
        try await recordAttempt(job, context)
        if context.attempt <= job.failures ?? 0 {
            throw TestFailure(message: "planned failure \(context.attempt) of \(job.failures ?? 0)")
        }
        try await recordEffect(job, context)
    }
    registry.register("\(name).fail", as: KeyedJob.self) { job, context in
        try await recordAttempt(job, context)
        throw TestFailure(message: "boom")
    }
    registry.register("\(name).slow", as: KeyedJob.self, batchable: false) { job, context in
        try await recordAttempt(job, context)
        try await Task.sleep(for: .milliseconds(job.millis ?? 1000))
        try await recordEffect(job, context)
    }
    // Runs until the test lets it: waits in the job's transaction for a shared advisory lock on
    // `<name>/gate`, which the test holds exclusively until it opens the gate.
    registry.register("\(name).gated", as: KeyedJob.self, batchable: false) { job, context in
        try await recordAttempt(job, context)
        try await context.database.execute("SELECT pg_advisory_xact_lock_shared(hashtext(\(name + "/gate")))")
        try await recordEffect(job, context)
    }
    registry.register("\(name).stuck", as: KeyedJob.self, batchable: false) { job, context in
        try await recordAttempt(job, context)
        // Takes a lock in the job's transaction, then waits for the same lock on another connection:
        // a database call that never returns and does not answer cancellation.
        try await context.database.execute("SELECT pg_advisory_xact_lock(hashtext(\(job.key)))")
        try await sideChannel.execute("SELECT pg_advisory_lock(hashtext(\(job.key)))")
    }
    registry.register("\(name).emit", as: KeyedJob.self) { job, context in
        try await context.emit(type: "\(name).insert", KeyedJob(key: job.key + "-child", value: job.value))
        try await recordEffect(job, context)
    }
    // Two jobs of one type with default ids: both must be relayed.
    registry.register("\(name).emit2", as: KeyedJob.self) { job, context in
        try await context.emit(type: "\(name).insert", KeyedJob(key: job.key + "-child1", value: job.value))
        try await context.emit(type: "\(name).insert", KeyedJob(key: job.key + "-child2", value: job.value))
        try await recordEffect(job, context)
    }
    // Two jobs given one id: a mistake the runtime reports instead of dropping one of them.
    registry.register("\(name).emitsame", as: KeyedJob.self) { job, context in
        try await context.emit(type: "\(name).insert", KeyedJob(key: job.key + "-child1", value: job.value), id: "\(job.key)-child")
        try await context.emit(type: "\(name).insert", KeyedJob(key: job.key + "-child2", value: job.value), id: "\(job.key)-child")
        try await recordEffect(job, context)
    }
    return WorkerParts(registry: registry)
}

struct TestFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}


await MingusProcess.run { try await WorkerRuntime.run(definition) }
