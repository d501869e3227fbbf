import Foundation
import MingusPostgres
import TestSupport
import Testing

/// Shared set-up for the tests that talk to the real database.
enum TestDatabase {
    /// The test database's configuration, or another database on the same server.
    static func configuration(poolSize: Int = 4, url: String = TestEnvironment.databaseURL) -> PostgresConfiguration {
        PostgresConfiguration(url: url, poolSize: poolSize, applicationName: "mingus-tests")
    }

    /// Runs `body` with a fresh client, shutting it down afterwards.
    static func withClient<T>(
        poolSize: Int = 4,
        url: String = TestEnvironment.databaseURL,
        _ body: (PostgresClient) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: configuration(poolSize: poolSize, url: url))
        do {
            let value = try await body(client)
            await client.shutdown()
            return value
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Runs `body` with the URL of a new, empty database, dropped afterwards.
    static func withFreshDatabase(_ body: (String) async throws -> Void) async throws {
        try await TestEnvironment.withFreshDatabase(body)
    }

    /// `count(*)` of a table.
    static func count(_ table: String, on client: PostgresClient) async throws -> Int {
        let rows = try await client.query("SELECT count(*) FROM \(identifier: table)")
        return try #require(rows.first).decode(Int.self, at: 0)
    }
}

/// An error tests throw on purpose.
struct IntentionalFailure: Error {}
