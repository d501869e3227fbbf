import Crypto
import Foundation
import MingusPostgres
import MingusSecurity
import TestSupport
import Testing

/// A test's own audit component (streams `<component>/0` … `<component>/15`) on a database of
/// its own, so that tampered chains never stay behind in the shared one.
private struct AuditFixture {
    let component = TestEnvironment.uniqueName("audit")
    let databaseName: String
    let databaseURL: String
    let database: PostgresClient

    init() async throws {
        let (name, url) = try await TestEnvironment.createDatabase()
        databaseName = name
        databaseURL = url
        database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 8))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
    }

    func finish() async throws {
        await database.shutdown()
        try await TestEnvironment.dropDatabase(databaseName)
    }

    /// Appends `count` events for `resources` distinct resources from concurrent tasks.
    func append(_ count: Int, resources: Int = 40) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    try await database.withTransaction { db -> Void in
                        _ = try await AuditTrail.append(AuditEvent(
                            actor: "apikey:test", action: "payment.process", resource: "payment/\(index % resources)",
                            outcome: index % 7 == 0 ? .failure : .success, origin: "127.0.0.1",
                            details: ["index": "\(index)", "note": "line\nbreak \"quoted\""]), component: component, on: db)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    func verify(keys: [Curve25519.Signing.PublicKey] = []) async throws -> AuditVerification {
        try await AuditVerifier(database: database, publicKeys: keys).verify(streamPrefix: component + "/")
    }

    /// The stream with the most events, and its length.
    func longestStream() async throws -> (stream: String, length: Int64) {
        let row = try await database.query("""
            SELECT stream, head_seq FROM audit_streams WHERE stream LIKE \(component + "/%") ORDER BY head_seq DESC, stream LIMIT 1
            """)[0]
        return (try row.decode(String.self, at: 0), try row.decode(Int64.self, at: 1))
    }

    /// Runs SQL as a superuser with the append-only triggers switched off, as an attacker would.
    func tamper(_ sql: String) async throws {
        try await database.withConnection { db in
            try await db.executeScript("SET session_replication_role = replica; \(sql); SET session_replication_role = origin;")
        }
    }
}

@Suite("Audit trail")
struct AuditTrailTests {
    @Test("concurrent appends form intact chains across the component's streams")
    func intact() async throws {
        let fixture = try await AuditFixture()
        try await fixture.append(300)
        let result = try await fixture.verify()
        #expect(result.isIntact, "\(result.firstBreak?.description ?? "")")
        #expect(result.events == 300)
        #expect(result.streams > 1 && result.streams <= 16, "events spread over streams: \(result.streams)")
        try await fixture.finish()
    }

    @Test("events appended in batches chain exactly like single ones, interleaved on the same streams")
    func batches() async throws {
        let fixture = try await AuditFixture()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for batch in 0..<40 {
                group.addTask {
                    try await fixture.database.withTransaction { db -> Void in
                        let events = (0..<(batch % 5 + 1)).map { index in
                            AuditEvent(actor: "apikey:batch", action: "payment.authorized", resource: "payment/\(batch)-\(index)",
                                       outcome: .success, origin: "worker",
                                       details: ["batch": "\(batch)", "quote": "\"q\" \\ \u{1}", "unicode": "zürich ✓"])
                        }
                        let first = try await AuditTrail.append(events, component: fixture.component, on: db)
                        // A single event after a batch in the same transaction continues its stream.
                        let single = try await AuditTrail.append(AuditEvent(actor: "apikey:single", action: "x", resource: "r/\(batch)",
                                                                            outcome: .failure), component: fixture.component, on: db)
                        #expect(single.stream == first?.stream)
                        #expect(single.seq == (first?.firstSeq ?? 0) + Int64(events.count))
                    }
                }
            }
            try await group.waitForAll()
        }
        let none = try await fixture.database.withConnection { try await AuditTrail.append([], component: fixture.component, on: $0) }
        #expect(none == nil)
        let result = try await fixture.verify()
        #expect(result.isIntact, "\(result.firstBreak?.description ?? "")")
        #expect(result.events == (0..<40).reduce(0) { $0 + $1 % 5 + 2 })
        let details = try await fixture.database.query("""
            SELECT details->>'quote', details->>'unicode' FROM audit_events WHERE actor = 'apikey:batch' LIMIT 1
            """)[0]
        #expect(try details.decode(String.self, at: 0) == "\"q\" \\ \u{1}")
        #expect(try details.decode(String.self, at: 1) == "zürich ✓")
        try await fixture.finish()
    }

    @Test("UPDATE, DELETE and TRUNCATE of audit events are refused")
    func appendOnly() async throws {
        let fixture = try await AuditFixture()
        try await fixture.append(3)
        let stream = try await fixture.longestStream().stream
        for statement in [
            "UPDATE audit_events SET actor = 'someone else' WHERE stream = '\(stream)'",
            "DELETE FROM audit_events WHERE stream = '\(stream)'",
            "TRUNCATE audit_events",
        ] {
            let error = await #expect(throws: PostgresError.self) {
                try await fixture.database.withConnection { try await $0.executeScript(statement) }
            }
            #expect(error?.sqlState == "42501", "\(statement)")
            #expect(error?.message.contains("append-only") == true)
        }
        #expect(try await fixture.verify().events == 3)
        try await fixture.finish()
    }

    @Test("an edited entry is reported as the first broken one")
    func editedRow() async throws {
        let fixture = try await AuditFixture()
        try await fixture.append(120)
        let (stream, length) = try await fixture.longestStream()
        try await fixture.tamper("UPDATE audit_events SET outcome = 'success', details = '{}' WHERE stream = '\(stream)' AND seq = 3")
        let broken = try #require(try await fixture.verify().firstBreak)
        #expect(broken.stream == stream && broken.seq == 3, "\(broken)")
        #expect(broken.reason.contains("edited"))
        #expect(length >= 4)

        let cli = try WorkerProcess("mingusctl", arguments: ["audit", "verify", "--stream-prefix", fixture.component + "/"],
                                      environment: ["MINGUS_DATABASE_URL": fixture.databaseURL])
        #expect(try await cli.wait(timeout: .seconds(60)) == 1)
        #expect(cli.output.contains("BROKEN stream \(stream) entry 3"), "\(cli.output)")
        try await fixture.finish()
    }

    @Test("a deleted entry is reported")
    func deletedRow() async throws {
        let fixture = try await AuditFixture()
        try await fixture.append(120)
        let (stream, _) = try await fixture.longestStream()
        try await fixture.tamper("DELETE FROM audit_events WHERE stream = '\(stream)' AND seq = 2")
        let broken = try #require(try await fixture.verify().firstBreak)
        #expect(broken.stream == stream && broken.seq == 2, "\(broken)")
        #expect(broken.reason.contains("missing"))
        try await fixture.finish()
    }

    @Test("two swapped entries are reported")
    func swappedRows() async throws {
        let fixture = try await AuditFixture()
        try await fixture.append(120)
        let (stream, _) = try await fixture.longestStream()
        // Swap the positions of entries 2 and 3, each keeping its own content and hashes.
        try await fixture.tamper("""
            UPDATE audit_events SET seq = -seq WHERE stream = '\(stream)' AND seq IN (2, 3);
            UPDATE audit_events SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE stream = '\(stream)' AND seq IN (-2, -3)
            """)
        let broken = try #require(try await fixture.verify().firstBreak)
        #expect(broken.stream == stream && broken.seq == 2, "\(broken)")
        try await fixture.finish()
    }

    @Test("a truncated tail is reported by the stream head, and by a signed checkpoint when the head is rewritten too")
    func truncatedTail() async throws {
        let fixture = try await AuditFixture()
        let keyURL = FileManager.default.temporaryDirectory.appendingPathComponent("\(fixture.component)/audit-signing.key")
        let signer = try AuditSigner.createKey(at: keyURL)
        #expect(try AuditSigner.publicKey(contentsOf: keyURL.appendingPathExtension("pub")).rawRepresentation == signer.publicKey.rawRepresentation)
        let mode = try FileManager.default.attributesOfItem(atPath: keyURL.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        try await fixture.append(120)
        _ = try await signer.checkpoint(fixture.database)
        let intact = try await fixture.verify(keys: [signer.publicKey])
        #expect(intact.isIntact && intact.checkpoints >= 1, "\(intact)")

        let (stream, length) = try await fixture.longestStream()
        try await fixture.tamper("DELETE FROM audit_events WHERE stream = '\(stream)' AND seq > \(length - 2)")
        let byHead = try #require(try await fixture.verify(keys: [signer.publicKey]).firstBreak)
        #expect(byHead.stream == stream && byHead.reason.contains("truncated"), "\(byHead)")

        // The attacker rewrites the head as well: the chain and the head agree, the checkpoint does not.
        try await fixture.tamper("""
            UPDATE audit_streams SET head_seq = \(length - 2),
                head_hash = (SELECT hash FROM audit_events WHERE stream = '\(stream)' AND seq = \(length - 2))
            WHERE stream = '\(stream)'
            """)
        #expect(try await fixture.verify().isIntact, "without a trusted key only the chains and heads are checked")
        let byCheckpoint = try #require(try await fixture.verify(keys: [signer.publicKey]).firstBreak)
        #expect(byCheckpoint.stream == stream && byCheckpoint.seq == length - 1, "\(byCheckpoint)")
        #expect(byCheckpoint.reason.contains("checkpoint"))
        try await fixture.finish()
    }
}
