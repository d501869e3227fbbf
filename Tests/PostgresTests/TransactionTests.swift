import MingusPostgres
import TestSupport
import Testing

@Suite("Transactions")
struct TransactionTests {
    @Test func errorInBodyRollsBack() async throws {
        let table = TestEnvironment.uniqueName("pg_rollback")
        try await TestDatabase.withClient(poolSize: 1) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int PRIMARY KEY)")
            await #expect(throws: IntentionalFailure.self) {
                try await client.withTransaction { connection in
                    try await connection.execute("INSERT INTO \(identifier: table) VALUES (\(1))")
                    throw IntentionalFailure()
                }
            }
            #expect(try await TestDatabase.count(table, on: client) == 0)

            // The pool's only connection came back usable, outside any transaction.
            let value = try await client.withTransaction { connection in
                try await connection.execute("INSERT INTO \(identifier: table) VALUES (\(2))")
                return "committed"
            }
            #expect(value == "committed")
            #expect(try await TestDatabase.count(table, on: client) == 1)
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test func serializationFailureIsRetried() async throws {
        let table = TestEnvironment.uniqueName("pg_serialization")
        try await TestDatabase.withClient(poolSize: 2) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int PRIMARY KEY, v int NOT NULL)")
            try await client.execute("INSERT INTO \(identifier: table) VALUES (1, 0)")
            let other = try await PostgresConnection.connect(configuration: TestDatabase.configuration())

            var attempts = 0
            let written = try await client.withTransaction(isolation: .repeatableRead) { connection in
                attempts += 1
                // The first statement takes the snapshot.
                let rows = try await connection.query("SELECT v FROM \(identifier: table) WHERE id = 1")
                let seen = try rows[0].decode(Int.self, at: 0)
                if attempts == 1 {
                    // A concurrent update commits after our snapshot: our update must fail with 40001.
                    try await other.execute("UPDATE \(identifier: table) SET v = v + 100 WHERE id = 1")
                }
                try await connection.execute("UPDATE \(identifier: table) SET v = \(seen + 1) WHERE id = 1")
                return seen + 1
            }
            #expect(attempts == 2)
            #expect(written == 101)
            let rows = try await client.query("SELECT v FROM \(identifier: table) WHERE id = 1")
            #expect(try rows[0].decode(Int.self, at: 0) == 101)

            await other.close()
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test func serializationFailureGivesUpAfterMaxAttempts() async throws {
        let table = TestEnvironment.uniqueName("pg_serialization_max")
        try await TestDatabase.withClient(poolSize: 2) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int PRIMARY KEY, v int NOT NULL)")
            try await client.execute("INSERT INTO \(identifier: table) VALUES (1, 0)")
            let other = try await PostgresConnection.connect(configuration: TestDatabase.configuration())

            var attempts = 0
            let error = await #expect(throws: PostgresError.self) {
                try await client.withTransaction(isolation: .serializable, maxAttempts: 3) { connection in
                    attempts += 1
                    _ = try await connection.query("SELECT v FROM \(identifier: table) WHERE id = 1")
                    try await other.execute("UPDATE \(identifier: table) SET v = v + 1 WHERE id = 1")
                    try await connection.execute("UPDATE \(identifier: table) SET v = 0 WHERE id = 1")
                }
            }
            #expect(error?.isSerializationFailure == true)
            #expect(attempts == 3)
            await other.close()
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test func connectionLostBeforeCommitIsRetried() async throws {
        let table = TestEnvironment.uniqueName("pg_lost_before_commit")
        try await TestDatabase.withClient(poolSize: 2) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int PRIMARY KEY)")
            let killer = try await PostgresConnection.connect(configuration: TestDatabase.configuration())

            var attempts = 0
            try await client.withTransaction { connection in
                attempts += 1
                try await connection.execute("INSERT INTO \(identifier: table) VALUES (\(attempts))")
                if attempts == 1 {
                    let pid = try await connection.query("SELECT pg_backend_pid()")[0].decode(Int32.self, at: 0)
                    try await killer.execute("SELECT pg_terminate_backend(\(pid), 5000)")
                    // Fails: the server ended this session, so the insert above is gone too.
                    try await connection.execute("SELECT 1")
                }
            }
            #expect(attempts == 2)
            let rows = try await client.query("SELECT id FROM \(identifier: table)")
            #expect(rows.map { try? $0.decode(Int.self, at: 0) } == [2])

            await killer.close()
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test func swallowedStatementErrorFailsTheCommit() async throws {
        let table = TestEnvironment.uniqueName("pg_swallowed")
        try await TestDatabase.withClient(poolSize: 1) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int PRIMARY KEY)")
            let error = await #expect(throws: PostgresError.self) {
                try await client.withTransaction { connection in
                    try await connection.execute("INSERT INTO \(identifier: table) VALUES (1)")
                    _ = try? await connection.execute("INSERT INTO \(identifier: table) VALUES (1)")
                }
            }
            #expect(error?.sqlState == "25P02")
            #expect(try await TestDatabase.count(table, on: client) == 0)
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test("BEGIN goes with the body's first statement: its isolation holds from that statement, and a body that fails before any statement leaves nothing behind")
    func beginTravelsWithTheFirstStatement() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let seen = try await client.withTransaction(isolation: .serializable) { connection in
                try await connection.query("SELECT current_setting('transaction_isolation')")
            }
            #expect(try seen[0].decode(String.self, at: 0) == "serializable")

            // The pool's only connection must not carry this BEGIN into the next call.
            await #expect(throws: IntentionalFailure.self) {
                try await client.withTransaction(isolation: .repeatableRead) { _ in throw IntentionalFailure() }
            }
            let after = try await client.query("SELECT current_setting('transaction_isolation')")
            #expect(try after[0].decode(String.self, at: 0) == "read committed")

            // A body that runs no statement still begins and commits.
            #expect(try await client.withTransaction(isolation: .repeatableRead) { _ in "empty" } == "empty")
        }
    }
}
