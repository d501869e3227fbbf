import Foundation
@testable import MingusAlerts
import MingusPostgres
import Testing
import TestSupport

@Suite("Alert rate limits shared through PostgreSQL")
struct RateLimiterTests {
    /// Two limiters on one database stand for two worker processes: all they share is the table.
    @Test("two workers share one bucket per target: the burst, then one slot per interval between them; a 429 pauses both")
    func sharedBucket() async throws {
        let (name, url) = try await TestEnvironment.createDatabase()
        let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 2))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
        let first = RateLimiter(database: database)
        let second = RateLimiter(database: database)
        // One request every 10 s with a burst of 2: a busy machine cannot blur slots 10 s apart.
        let limit = RateLimit(perSecond: 0.1, burst: 2)
        #expect(try await first.reserve("slack", limit) == .zero)
        #expect(try await second.reserve("slack", limit) == .zero)
        let third = try await first.reserve("slack", limit)
        let fourth = try await second.reserve("slack", limit)
        #expect(third > .seconds(5) && third <= .seconds(10), "\(third)")
        #expect(fourth > .seconds(15) && fourth <= .seconds(20), "\(fourth)")
        // Another target has its own bucket.
        #expect(try await second.reserve("teams", limit) == .zero)
        // A 429 seen by one worker holds the target back for the other too.
        try await first.pause("teams", limit, for: .seconds(60))
        let paused = try await second.reserve("teams", limit)
        #expect(paused > .seconds(55) && paused <= .seconds(60), "\(paused)")
        await database.shutdown()
        try await TestEnvironment.dropDatabase(name)
    }
}
