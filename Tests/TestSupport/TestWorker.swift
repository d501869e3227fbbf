public import Foundation
import Logging
public import MingusAMQP
public import MingusCore
public import MingusPostgres
import MingusRuntime

/// A test's own worker name with helpers around it: start `mingus-test-worker` processes for
/// it, publish its jobs, read its effects, attempts and dead letters.
public struct TestWorker: Sendable {
    public let name: String
    public let queues: WorkerQueues
    public let database: PostgresClient
    public let broker: AMQPConnection

    /// A fresh worker name; declares its queues and makes sure the test tables exist.
    public static func make(_ prefix: String = "rt") async throws -> TestWorker {
        let name = TestEnvironment.uniqueName(prefix)
        let database = PostgresClient(configuration: PostgresConfiguration(url: TestEnvironment.databaseURL, poolSize: 4))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
        let tables = try String(contentsOf: TestEnvironment.fixturesDirectory.appendingPathComponent("runtime_test_tables.sql"), encoding: .utf8)
        try await database.withTransaction { db in
            try await db.execute("SELECT pg_advisory_xact_lock(424242)")
            try await db.executeScript(tables)
        }
        let broker = try await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL), logger: Logger(label: "test"))
        var topology = MingusTopology.shared
        let own = MingusTopology.worker(WorkerQueues(name: name))
        topology.queues += own.queues
        topology.bindings += own.bindings
        try await broker.declare(topology)
        return TestWorker(name: name, queues: WorkerQueues(name: name), database: database, broker: broker)
    }

    /// Starts a worker process for this name.
    public func start(_ environment: [String: String] = [:]) throws -> WorkerProcess {
        var merged = [
            "MINGUS_TEST_WORKER_NAME": name,
            "MINGUS_TEST_FIXTURES_DIR": TestEnvironment.fixturesDirectory.path,
            "MINGUS_METRICS_PORT": "0",
            "MINGUS_LOG_LEVEL": "info",
            "MINGUS_MIGRATIONS_DIR": TestEnvironment.migrationsDirectory.path,
        ]
        merged.merge(environment) { _, new in new }
        return try WorkerProcess("mingus-test-worker", environment: merged)
    }

    /// Publishes a job of type `<name>.<kind>` with confirms; returns its id.
    @discardableResult
    public func publish(_ kind: String, json: String, id: String = UUID().uuidString.lowercased()) async throws -> String {
        let envelope = JobEnvelope(id: id, type: "\(name).\(kind)", source: "/tests", body: Array(json.utf8))
        try await broker.publish(envelope.message(), exchange: MingusTopology.jobsExchange, routingKey: "\(name).\(kind)")
        return id
    }

    /// Publishes a raw message (for malformed envelopes and bodies).
    public func publishRaw(_ message: AMQPMessage, routingKey: String) async throws {
        try await broker.publish(message, exchange: MingusTopology.jobsExchange, routingKey: routingKey)
    }

    /// Rows in the effects table for this worker.
    public func effectCount() async throws -> Int {
        try await database.query("SELECT count(*) FROM runtime_test_effects WHERE worker = \(name)")[0].decode(Int.self, at: 0)
    }

    /// Effects per key, for exactly-once checks: (rows, distinct keys).
    public func effectTotals() async throws -> (rows: Int, keys: Int) {
        let row = try await database.query(
            "SELECT count(*), count(DISTINCT key) FROM runtime_test_effects WHERE worker = \(name)")[0]
        return (try row.decode(Int.self, at: 0), try row.decode(Int.self, at: 1))
    }

    /// Attempts recorded for `key`, with their times, in order.
    public func attempts(_ key: String) async throws -> [(attempt: Int, at: Date)] {
        try await database.query(
            "SELECT attempt, at FROM runtime_test_attempts WHERE worker = \(name) AND key = \(key) ORDER BY at"
        ).map { (try $0.decode(Int.self, at: 0), try $0.decode(Date.self, at: 1)) }
    }

    /// Messages ready in a queue.
    public func depth(_ queue: String) async throws -> UInt32 {
        try await broker.queueInfo(queue).messageCount
    }

    /// Deletes the worker's queues and rows, and closes the connections.
    public func cleanUp() async {
        if let broker = try? await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL), logger: Logger(label: "test")) {
            try? await broker.deleteQueue(queues.queue)
            try? await broker.deleteQueue(queues.deadLetterQueue)
            await broker.close()
        }
        _ = try? await database.execute("DELETE FROM runtime_test_effects WHERE worker = \(name)")
        _ = try? await database.execute("DELETE FROM runtime_test_attempts WHERE worker = \(name)")
        await broker.close()
        await database.shutdown()
    }
}

extension TestEnvironment {
    /// Runs `body` with the URL of a new, empty database, dropped afterwards (also on failure).
    public static func withFreshDatabase(_ body: (String) async throws -> Void) async throws {
        let (name, url) = try await createDatabase()
        do {
            try await body(url)
        } catch {
            try? await dropDatabase(name)
            throw error
        }
        try await dropDatabase(name)
    }

    /// The URL of database `name` on `server`, a URL without a database (several hosts allowed,
    /// `postgresql://mingus@h1:5440,h2:5441`); on a server of several hosts, the one that takes
    /// writes.
    public static func url(ofDatabase name: String, on server: String) -> String {
        "\(server)/\(name)" + (server.contains(",") ? "?target_session_attrs=read-write" : "")
    }

    /// Creates an empty database, on the tests' server or on `server`; returns its name and URL.
    public static func createDatabase(on server: String? = nil) async throws -> (name: String, url: String) {
        let name = uniqueName("mingus_test")
        let admin = try await PostgresConnection.connect(configuration: PostgresConfiguration(
            url: server.map { url(ofDatabase: "postgres", on: $0) } ?? databaseURL, poolSize: 1))
        do {
            try await admin.execute("CREATE DATABASE \(identifier: name)")
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        if let server { return (name, url(ofDatabase: name, on: server)) }
        var components = URLComponents(string: databaseURL)
        components?.path = "/\(name)"
        return (name, components?.string ?? databaseURL)
    }

    /// Drops a database made by ``createDatabase(on:)``, closing its connections.
    public static func dropDatabase(_ name: String, on server: String? = nil) async throws {
        let admin = try await PostgresConnection.connect(configuration: PostgresConfiguration(
            url: server.map { url(ofDatabase: "postgres", on: $0) } ?? databaseURL, poolSize: 1))
        try await admin.execute("DROP DATABASE IF EXISTS \(identifier: name) WITH (FORCE)")
        await admin.close()
    }
}
