import MingusPostgres
import TestSupport
import Testing

/// Statements with parameters are prepared once per session and reused.
@Suite("Prepared statements")
struct PreparedStatementTests {
    func preparedCount(_ connection: PostgresConnection) async throws -> Int {
        try await connection.query("SELECT count(*)::int FROM pg_prepared_statements")[0].decode(Int.self, at: 0)
    }

    @Test("a statement with parameters is prepared the first time and reused after; errors stay the statement's own")
    func reused() async throws {
        let connection = try await PostgresConnection.connect(configuration: TestDatabase.configuration())
        #expect(try await preparedCount(connection) == 0)
        for value in 1...3 {
            #expect(try await connection.query("SELECT \(value)::int + 1")[0].decode(Int.self, at: 0) == value + 1)
        }
        #expect(try await preparedCount(connection) == 1, "three runs of one text, one prepared statement")
        _ = try await connection.query("SELECT \("x")::text")
        #expect(try await preparedCount(connection) == 2)
        // A data error names the problem, never the value, whether the statement was prepared or not.
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT \("secret-1")::int") }
        #expect(error?.sqlState == "22P02")
        #expect(error?.description.contains("secret-1") == false)
        let again = await #expect(throws: PostgresError.self) { try await connection.query("SELECT \("secret-2")::int") }
        #expect(again?.sqlState == "22P02")
        // A syntax error is reported from the prepare and leaves nothing behind.
        let syntax = await #expect(throws: PostgresError.self) { try await connection.query("SELEC \(1)") }
        #expect(syntax?.sqlState == "42601")
        #expect(try await preparedCount(connection) == 3)
        await connection.close()
    }

    @Test("a prepared statement keeps working after its table is altered, and across transactions that roll back")
    func survivesChanges() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let table = TestEnvironment.uniqueName("prepared")
            try await client.execute("CREATE TABLE \(identifier: table) (id int PRIMARY KEY, note text)")
            try await client.execute("INSERT INTO \(identifier: table) (id, note) VALUES (\(1), \("one"))")
            struct Rollback: Error {}
            await #expect(throws: Rollback.self) {
                try await client.withTransaction { db in
                    try await db.execute("INSERT INTO \(identifier: table) (id, note) VALUES (\(2), \("two"))")
                    throw Rollback()
                }
            }
            try await client.execute("ALTER TABLE \(identifier: table) ADD COLUMN extra int")
            try await client.execute("INSERT INTO \(identifier: table) (id, note) VALUES (\(3), \("three"))")
            let notes = try await client.query("SELECT note FROM \(identifier: table) WHERE id >= \(0) ORDER BY id").map { try $0.decode(String.self, at: 0) }
            #expect(notes == ["one", "three"])
            // `SELECT *` prepared before a column is added fails once, then is prepared again.
            let all: PostgresQuery = "SELECT * FROM \(identifier: table) WHERE id = \(1)"
            #expect(try await client.query(all)[0].decode(String.self, at: 1) == "one")
            try await client.execute("ALTER TABLE \(identifier: table) ADD COLUMN later int")
            let changed = await #expect(throws: PostgresError.self) { try await client.query(all) }
            #expect(changed?.sqlState == "0A000")
            #expect(try await client.query(all)[0].decode(String.self, at: 1) == "one")
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }
}
