import MingusPostgres
import TestSupport
import Testing

@Suite("Errors")
struct ErrorTests {
    @Test func uniqueViolationReportsSQLStateAndConstraint() async throws {
        let table = TestEnvironment.uniqueName("pg_unique")
        try await TestDatabase.withClient(poolSize: 1) { client in
            try await client.execute("CREATE TABLE \(identifier: table) (id int8 PRIMARY KEY)")
            let secret = 4_111_111_111_111_111
            try await client.execute("INSERT INTO \(identifier: table) VALUES (\(secret))")
            let error = await #expect(throws: PostgresError.self) {
                try await client.execute("INSERT INTO \(identifier: table) VALUES (\(secret))")
            }
            let unique = try #require(error)
            #expect(unique.kind == .server)
            #expect(unique.sqlState == "23505")
            #expect(unique.constraint == "\(table)_pkey")
            #expect(unique.table == table)
            #expect(
                unique.description
                    == "postgres error 23505 (unique_violation): duplicate key value violates unique constraint \"\(table)_pkey\""
            )
            #expect(!unique.description.contains("\n"))
            #expect(!unique.description.contains("\(secret)"))
            #expect(!unique.isConnectionFailure && !unique.isSerializationFailure && !unique.isDeadlock)
            try await client.execute("DROP TABLE \(identifier: table)")
        }
    }

    @Test func dataExceptionsDoNotEchoTheBindValue() async throws {
        try await TestDatabase.withClient(poolSize: 1) { client in
            let error = await #expect(throws: PostgresError.self) {
                try await client.query("SELECT \("4111111111111111-not-a-number")::int8")
            }
            #expect(error?.sqlState == "22P02")
            #expect(error?.message.contains("4111") == false)
            #expect(error?.description.hasPrefix("postgres error 22P02 (invalid_text_representation): invalid input syntax") == true)
        }
    }

    @Test(arguments: [
        "postgresql://nobody@127.0.0.1:\(TestEnvironment.databasePort)/mingus",
        "postgresql://mingus@127.0.0.1:1/mingus",
        "not a url ://",
    ])
    func badConnectionSettingsGiveOneLineConnectionErrors(url: String) async throws {
        let error = await #expect(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(configuration: PostgresConfiguration(url: url, connectTimeout: .seconds(2)))
        }
        let failure = try #require(error)
        #expect(failure.kind == .connection)
        #expect(failure.isConnectionFailure)
        #expect(failure.description.hasPrefix("cannot connect to PostgreSQL"))
        #expect(!failure.description.contains("\n"))
        switch url {
        case let url where url.contains("nobody"):
            #expect(failure.description == "cannot connect to PostgreSQL at 127.0.0.1:\(TestEnvironment.databasePort): FATAL: role \"nobody\" does not exist")
        case let url where url.contains(":1/"):
            #expect(failure.description.hasPrefix("cannot connect to PostgreSQL at 127.0.0.1:1: Connection refused"))
        default:
            #expect(failure.description.contains("neither a postgresql:// URL nor key=value pairs"))
        }
    }

    @Test func clientSurfacesConnectionErrorsToo() async throws {
        let client = PostgresClient(configuration: PostgresConfiguration(url: "postgresql://mingus@127.0.0.1:1/mingus", poolSize: 1))
        for _ in 0..<2 {  // A failed open gives its slot back.
            let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
            #expect(error?.kind == .connection)
        }
        await client.shutdown()
    }

    @Test func closedConnectionsAndClientsSayClosed() async throws {
        let connection = try await PostgresConnection.connect(configuration: TestDatabase.configuration())
        #expect(!connection.isBroken)
        await connection.close()
        #expect(connection.isBroken)
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        #expect(error?.kind == .closed)

        let client = PostgresClient(configuration: TestDatabase.configuration())
        await client.shutdown()
        let clientError = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(clientError?.kind == .closed)
    }
}
