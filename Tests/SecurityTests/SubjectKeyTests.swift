import Foundation
import MingusPostgres
import MingusSecurity
import TestSupport
import Testing

@Suite("Per-subject keys and cryptographic erase")
struct SubjectKeyTests {
    /// A migrated database of its own and a fresh key-encrypting key.
    func withSubjectKeys(_ body: (SubjectKeys, PostgresClient, KeyEncryptingKey) async throws -> Void) async throws {
        try await TestEnvironment.withFreshDatabase { url in
            let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 4))
            _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
            let kek = try KeyEncryptingKey.create(at: FileManager.default.temporaryDirectory
                .appendingPathComponent(TestEnvironment.uniqueName("subject-keys")).appendingPathComponent("financial.key"))
            do {
                try await body(SubjectKeys(kek: kek, database: database), database, kek)
            } catch {
                await database.shutdown()
                throw error
            }
            await database.shutdown()
        }
    }

    @Test("a subject's values open with its key only, in their own context, from any process holding the key-encrypting key")
    func sealAndOpen() async throws {
        try await withSubjectKeys { keys, database, kek in
            let sealed = try await keys.seal(Array("diagnosis: J45".utf8), subject: "user-1", context: "health_records/1")
            #expect(String(decoding: try await keys.open(sealed, subject: "user-1", context: "health_records/1"), as: UTF8.self) == "diagnosis: J45")
            #expect(!sealed.contains(subsequence: Array("J45".utf8)))
            await #expect(throws: KeyringError.self) { try await keys.open(sealed, subject: "user-1", context: "health_records/2") }
            _ = try await keys.key("user-2")
            await #expect(throws: KeyringError.self) { try await keys.open(sealed, subject: "user-2", context: "health_records/1") }
            // Another instance (another process) opens it; concurrent first uses of one subject agree on one key.
            let other = SubjectKeys(kek: kek, database: database)
            #expect(try await other.open(sealed, subject: "user-1", context: "health_records/1") == Array("diagnosis: J45".utf8))
            let made = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                for _ in 0..<8 { group.addTask { try await other.seal([1, 2, 3], subject: "user-3", context: "c") } }
                return try await group.reduce(into: [[UInt8]]()) { $0.append($1) }
            }
            for value in made { #expect(try await keys.open(value, subject: "user-3", context: "c") == [1, 2, 3]) }
            // The row holds the key only wrapped.
            let wrapped = try await database.query("SELECT wrapped FROM mingus_subject_keys WHERE subject_id = 'user-1'")[0].decode([UInt8].self, at: 0)
            #expect(wrapped.count == 12 + 32 + 16)
            // A wrapped key moved to another subject's row does not unwrap.
            try await database.execute("""
                INSERT INTO mingus_subject_keys (subject_id, wrapped, kek_id) VALUES ('user-4', \(wrapped), \(kek.id))
                """)
            await #expect(throws: KeyringError.self) { try await keys.key("user-4") }
        }
    }

    @Test("erasing a subject's key makes its data unreadable for good, is audited, and cannot be undone")
    func erase() async throws {
        try await withSubjectKeys { keys, database, _ in
            let sealed = try await keys.seal(Array("balance 1200".utf8), subject: "user-1", context: "r/1")
            let erasure = try await keys.erase("user-1", actor: "dpo@example.com", reason: "GDPR Art. 17 request 42")
            guard case .erased = erasure else { Issue.record("expected .erased, got \(erasure)"); return }
            let error = await #expect(throws: SubjectKeyErased.self) { try await keys.open(sealed, subject: "user-1", context: "r/1") }
            #expect(error?.subject == "user-1")
            await #expect(throws: SubjectKeyErased.self) { try await keys.seal([1], subject: "user-1", context: "r/2") }
            guard case .alreadyErased = try await keys.erase("user-1", actor: "dpo@example.com", reason: "again") else {
                Issue.record("a second erase must say it was already erased"); return
            }
            // A subject that never had a key gets a tombstone: no key is ever made for it.
            guard case .noKey = try await keys.erase("user-9", actor: "dpo@example.com", reason: "erasure before any data") else {
                Issue.record("expected .noKey"); return
            }
            await #expect(throws: SubjectKeyErased.self) { try await keys.seal([1], subject: "user-9", context: "r") }

            #expect(try await database.query("SELECT count(*) FROM mingus_subject_keys WHERE wrapped IS NOT NULL AND erased_at IS NOT NULL")[0]
                .decode(Int.self, at: 0) == 0)
            #expect(try await database.query("SELECT count(*) FROM audit_events WHERE action = 'subject_key.erase'")[0].decode(Int.self, at: 0) == 3)
            // Neither restoring a wrapped key nor removing the tombstone is accepted.
            await #expect(throws: (any Error).self) {
                try await database.execute("UPDATE mingus_subject_keys SET wrapped = '\\x00', kek_id = 'k', erased_at = NULL WHERE subject_id = 'user-1'")
            }
            await #expect(throws: (any Error).self) { try await database.execute("DELETE FROM mingus_subject_keys WHERE subject_id = 'user-1'") }
            #expect(try await AuditVerifier(database: database, publicKeys: []).verify().isIntact)
        }
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { Array(self[$0..<($0 + subsequence.count)]) == subsequence }
    }
}
