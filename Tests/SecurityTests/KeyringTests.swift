import Foundation
import MingusPayments
import MingusSecurity
import MingusPostgres
import TestSupport
import Testing

/// Runs `body` with a migrated database of its own and a fresh key-encrypting key file.
private func withKeys(_ body: (PostgresClient, KeyEncryptingKey, URL) async throws -> Void) async throws {
    try await TestEnvironment.withFreshDatabase { url in
        let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 2))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
        let keyURL = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("keys")).appendingPathComponent("financial.key")
        let kek = try KeyEncryptingKey.create(at: keyURL)
        do {
            try await body(database, kek, keyURL)
        } catch {
            await database.shutdown()
            throw error
        }
        await database.shutdown()
    }
}

@Suite("Key management")
struct KeyringTests {
    @Test("the key-encrypting key file is created with mode 0600, read back, and never overwritten")
    func keyFile() async throws {
        try await withKeys { _, kek, url in
            let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            #expect(try KeyEncryptingKey(contentsOf: url).id == kek.id)
            #expect(throws: KeyringError.self) { try KeyEncryptingKey.create(at: url) }
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
            let error = #expect(throws: KeyringError.self) { try KeyEncryptingKey(contentsOf: url) }
            #expect(error?.message.contains("readable by others") == true)
        }
    }

    @Test("after a rotation new values use the new version and old ciphertext still opens")
    func rotation() async throws {
        try await withKeys { database, kek, _ in
            #expect(try await Keyring.rotate(.pan, kek: kek, database: database) == 1)
            let first = try await Keyring.load(kek: kek, database: database)
            let old = try first.seal(Array("4242424242424242".utf8), purpose: .pan, context: "payment/1")
            #expect(old.version == 1)
            #expect(!old.encoded.contains("4242"))

            #expect(try await Keyring.rotate(.pan, kek: kek, database: database) == 2)
            let second = try await Keyring.load(kek: kek, database: database)
            let new = try second.seal(Array("5555555555554444".utf8), purpose: .pan, context: "payment/2")
            #expect(new.version == 2)
            #expect(try second.open(old, purpose: .pan, context: "payment/1") == Array("4242424242424242".utf8))
            #expect(try second.open(try SealedValue(encoded: new.encoded), purpose: .pan, context: "payment/2") == Array("5555555555554444".utf8))
            #expect(second.versions(.pan) == [2, 1])
        }
    }

    @Test("altered ciphertext, another row's context, another purpose and a wrong key-encrypting key all fail clearly")
    func failures() async throws {
        try await withKeys { database, kek, _ in
            try await Keyring.rotate(.records, kek: kek, database: database)
            try await Keyring.rotate(.pan, kek: kek, database: database)
            let keyring = try await Keyring.load(kek: kek, database: database)
            var sealed = try keyring.seal(Array("secret".utf8), purpose: .records, context: "record/7")
            #expect(throws: KeyringError.self) { try keyring.open(sealed, purpose: .records, context: "record/8") }
            #expect(throws: KeyringError.self) { try keyring.open(sealed, purpose: .pan, context: "record/7") }
            sealed.combined[sealed.combined.count - 1] ^= 0x01
            let error = #expect(throws: KeyringError.self) { try keyring.open(sealed, purpose: .records, context: "record/7") }
            #expect(error?.description.contains("secret") == false)

            let other = try KeyEncryptingKey.create(at: FileManager.default.temporaryDirectory
                .appendingPathComponent(TestEnvironment.uniqueName("other")).appendingPathComponent("financial.key"))
            await #expect(throws: KeyringError.self) { _ = try await Keyring.load(kek: other, database: database) }
        }
    }

    @Test("fingerprints are keyed: equal inputs match, other keys give other values")
    func fingerprints() async throws {
        try await withKeys { database, kek, _ in
            try await Keyring.rotate(.fingerprint, kek: kek, database: database)
            let keyring = try await Keyring.load(kek: kek, database: database)
            let one = keyring.fingerprints(Array("4242424242424242".utf8), purpose: .fingerprint)
            #expect(one.count == 1 && one[0].value.count == 32)
            #expect(keyring.fingerprints(Array("4242424242424242".utf8), purpose: .fingerprint)[0].value == one[0].value)
            #expect(keyring.fingerprints(Array("4012888888881881".utf8), purpose: .fingerprint)[0].value != one[0].value)
            try await Keyring.rotate(.fingerprint, kek: kek, database: database)
            let rotated = try await Keyring.load(kek: kek, database: database).fingerprints(Array("4242424242424242".utf8), purpose: .fingerprint)
            #expect(rotated.map(\.version) == [2, 1])
            #expect(rotated[1].value == one[0].value)
            #expect(rotated[0].value != one[0].value)
        }
    }
}
