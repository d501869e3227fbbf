import Foundation
import Logging
import MingusHTTP
import MingusPostgres
import MingusSecurity
import ServiceLifecycle
import TestSupport
import Testing

/// The gateway's group-committed audit writer, on a database of its own.
@Suite("Audit events committed in batches")
struct AuditBatcherTests {
    /// Gives `body` a batcher on a fresh, migrated database.
    func withBatcher(_ body: @Sendable (AuditBatcher, PostgresClient, _ url: String) async throws -> Void) async throws {
        try await TestEnvironment.withFreshDatabase { url in
            let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 4))
            _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
            let batcher = AuditBatcher(database: database, component: "batch", logger: Logger(label: "test"))
            do {
                try await body(batcher, database, url)
            } catch {
                await database.shutdown()
                throw error
            }
            await database.shutdown()
        }
    }

    func count(_ actor: String, on database: PostgresClient) async throws -> Int {
        try await database.query("SELECT count(*)::int FROM audit_events WHERE actor = \(actor)")[0].decode(Int.self, at: 0)
    }

    @Test("each append returns once its event is committed; 400 concurrent events all land and the chains verify")
    func concurrentAppends() async throws {
        try await withBatcher { batcher, database, _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<400 {
                    group.addTask {
                        let actor = "caller-\(index)"
                        try await batcher.append(AuditEvent(actor: actor, action: "http.get", resource: "/api/x", outcome: .success))
                        // Committed before append returned: another connection sees it at once.
                        #expect(try await count(actor, on: database) == 1)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await database.query("SELECT count(*)::int FROM audit_events WHERE stream LIKE 'batch/%'")[0].decode(Int.self, at: 0) == 400)
            let verification = try await AuditVerifier(database: database, publicKeys: []).verify(streamPrefix: "batch/")
            #expect(verification.firstBreak == nil, "\(verification)")
        }
    }

    @Test("an event that cannot be stored fails alone; the events batched with it commit")
    func oneBadEventFailsAlone() async throws {
        try await withBatcher { batcher, database, url in
            // A held lock on the stream heads stops the first batch (one event) in flight, so the
            // 50 events appended meanwhile wait together: the bad one goes out in one batch with
            // the 49 others, and the batch's failure is what is tested.
            let blocker = try await PostgresConnection.connect(configuration: PostgresConfiguration(url: url))
            try await blocker.executeScript("BEGIN; LOCK TABLE audit_streams IN SHARE MODE")
            async let lead: Void = batcher.append(AuditEvent(actor: "lead", action: "http.get", resource: "/api/x", outcome: .success))
            #expect(try await eventually {
                try await database.query("SELECT count(*)::int FROM pg_locks WHERE NOT granted AND relation = 'audit_streams'::regclass")[0]
                    .decode(Int.self, at: 0) == 1
            })
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        // PostgreSQL text cannot hold U+0000: this one event cannot be written.
                        let actor = index == 25 ? "bad\u{0}actor" : "good-\(index)"
                        do {
                            try await batcher.append(AuditEvent(actor: actor, action: "http.get", resource: "/api/x", outcome: .success))
                            return true
                        } catch {
                            return false
                        }
                    }
                }
                #expect(try await eventually { batcher.waitingCount == 50 })
                try await blocker.executeScript("COMMIT")
                var stored = 0
                var failed = 0
                for try await ok in group { if ok { stored += 1 } else { failed += 1 } }
                #expect(stored == 49)
                #expect(failed == 1)
            }
            try await lead
            await blocker.close()
            #expect(try await database.query("SELECT count(*)::int FROM audit_events WHERE actor LIKE 'good-%'")[0].decode(Int.self, at: 0) == 49)
            #expect(try await count("lead", on: database) == 1)
            let verification = try await AuditVerifier(database: database, publicKeys: []).verify(streamPrefix: "batch/")
            #expect(verification.firstBreak == nil, "\(verification)")
        }
    }
}
