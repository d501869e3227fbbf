import Crypto
public import Foundation
public import MingusPostgres

/// Why a subject's data cannot be sealed or opened any more.
public struct SubjectKeyErased: Error, CustomStringConvertible, Equatable {
    public var subject: String
    public var erasedAt: Date
    public var description: String { "the data key of subject \(subject) was erased at \(erasedAt)" }
}

/// One subject's data key, unwrapped in memory: seals and opens that subject's values.
public struct SubjectKey: Sendable {
    public let subject: String
    let key: SymmetricKey

    /// Seals `plaintext`; `context` (e.g. a table and row id) is authenticated with the subject,
    /// so a value copied to another row or subject does not open.
    public func seal(_ plaintext: [UInt8], context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: additionalData(context))
        guard let combined = box.combined else { throw KeyringError("AES-GCM produced no combined form") }
        return Array(combined)
    }

    public func open(_ sealed: [UInt8], context: String) throws -> [UInt8] {
        do {
            return Array(try AES.GCM.open(try AES.GCM.SealedBox(combined: sealed), using: key, authenticating: additionalData(context)))
        } catch {
            throw KeyringError("cannot open a value of subject \(subject): altered, or sealed for another subject or context")
        }
    }

    private func additionalData(_ context: String) -> [UInt8] {
        Array("mingus-subject|\(subject)|\(context)".utf8)
    }
}

/// Per-subject data keys (`mingus_subject_keys`), wrapped by the key-encrypting key: data sealed
/// under a subject's key is erased by erasing the key (cryptographic erase, NIST SP 800-88), which
/// reaches every copy of the ciphertext at once — replicas, archives, backups of the data.
///
/// A key is made the first time a subject's value is sealed. ``erase(_:actor:reason:)`` overwrites
/// the wrapped key with NULL, keeps the row as a tombstone (no key is ever made again for that
/// subject) and appends an audit event; a `VACUUM` of the table then removes the old row version
/// from the table's pages. Database backups taken before the erasure still hold the wrapped key
/// until they expire: their retention bounds how long an erased key can be recovered, with the
/// key-encrypting key. Nothing caches unwrapped subject keys across calls, so an erasure holds for
/// every process from the moment it commits.
public struct SubjectKeys: Sendable {
    let kek: KeyEncryptingKey
    let database: PostgresClient

    public init(kek: KeyEncryptingKey, database: PostgresClient) {
        self.kek = kek
        self.database = database
    }

    /// The keys of `subjects` (made for those without one when `create`); throws
    /// ``SubjectKeyErased`` for the first erased subject among them.
    public func keys(_ subjects: [String], create: Bool = true) async throws -> [String: SubjectKey] {
        let wanted = Array(Set(subjects))
        if create {
            let fresh = try wanted.map { subject -> (String, [UInt8]) in (subject, try wrap(SymmetricKey(size: .bits256), for: subject)) }
            if !fresh.isEmpty {
                try await database.execute("""
                    INSERT INTO mingus_subject_keys (subject_id, wrapped, kek_id)
                    SELECT s, w, \(kek.id) FROM unnest(\(fresh.map(\.0))::text[], \(fresh.map(\.1))::bytea[]) AS f (s, w)
                    ON CONFLICT (subject_id) DO NOTHING
                    """)
            }
        }
        var keys: [String: SubjectKey] = [:]
        for row in try await database.query("""
            SELECT subject_id, wrapped, kek_id, erased_at FROM mingus_subject_keys WHERE subject_id = ANY(\(wanted))
            """) {
            let subject = try row.decode(String.self, at: 0)
            if let erased = try row.decode(Date?.self, at: 3) {
                throw SubjectKeyErased(subject: subject, erasedAt: erased)
            }
            let kekID = try row.decode(String.self, at: 2)
            guard kekID == kek.id else {
                throw KeyringError("the key of subject \(subject) is wrapped by key-encrypting key \(kekID), not by \(kek.id)")
            }
            keys[subject] = SubjectKey(subject: subject, key: try unwrap(try row.decode([UInt8].self, at: 1), for: subject))
        }
        return keys
    }

    /// The key of `subject` from its `mingus_subject_keys` columns read by the caller's own
    /// query (`wrapped`, `kek_id`, `erased_at`): nil when it has no row; throws
    /// ``SubjectKeyErased`` once erased. Saves a round trip where a query joins the key table.
    public func key(_ subject: String, wrapped: [UInt8]?, kekID: String?, erasedAt: Date?, hasRow: Bool) throws -> SubjectKey? {
        guard hasRow else { return nil }
        if let erasedAt { throw SubjectKeyErased(subject: subject, erasedAt: erasedAt) }
        guard let wrapped, let kekID else { throw KeyringError("the key row of subject \(subject) has no wrapped key") }
        guard kekID == kek.id else {
            throw KeyringError("the key of subject \(subject) is wrapped by key-encrypting key \(kekID), not by \(kek.id)")
        }
        return SubjectKey(subject: subject, key: try unwrap(wrapped, for: subject))
    }

    /// The key of `subject` (made if it has none).
    public func key(_ subject: String) async throws -> SubjectKey {
        guard let key = try await keys([subject])[subject] else { throw KeyringError("no key for subject \(subject)") }
        return key
    }

    /// The key of `subject` if it has one and it is not erased; nil when it never had one.
    public func existingKey(_ subject: String) async throws -> SubjectKey? {
        try await keys([subject], create: false)[subject]
    }

    /// What ``erase(_:actor:reason:)`` did.
    public enum Erasure: Sendable, Equatable {
        /// The key was destroyed now.
        case erased(at: Date)
        /// It was destroyed before.
        case alreadyErased(at: Date)
        /// The subject never had a key; a tombstone now keeps one from being made.
        case noKey(at: Date)
    }

    /// Destroys the key of `subject` (or records that it may never have one) and audits it, in one
    /// transaction; then vacuums the table so the old row version leaves its pages.
    @discardableResult
    public func erase(_ subject: String, actor: String, reason: String) async throws -> Erasure {
        let erasure = try await database.withTransaction { db -> Erasure in
            let erasure: Erasure
            let tombstone = try await db.query("""
                INSERT INTO mingus_subject_keys (subject_id, wrapped, kek_id, erased_at, erased_by, erase_reason)
                VALUES (\(subject), NULL, NULL, now(), \(actor), \(reason)) ON CONFLICT (subject_id) DO NOTHING RETURNING erased_at
                """)
            if let row = tombstone.first {
                erasure = .noKey(at: try row.decode(Date.self, at: 0))
            } else if let at = try await db.query("""
                SELECT erased_at FROM mingus_subject_keys WHERE subject_id = \(subject) FOR UPDATE
                """)[0].decode(Date?.self, at: 0) {
                erasure = .alreadyErased(at: at)
            } else {
                let at = try await db.query("""
                    UPDATE mingus_subject_keys SET wrapped = NULL, kek_id = NULL, erased_at = now(), erased_by = \(actor),
                        erase_reason = \(reason)
                    WHERE subject_id = \(subject) RETURNING erased_at
                    """)[0].decode(Date.self, at: 0)
                erasure = .erased(at: at)
            }
            let outcome: String = switch erasure {
            case .erased: "key erased"
            case .alreadyErased: "already erased"
            case .noKey: "had no key; none will be made"
            }
            _ = try await AuditTrail.append(AuditEvent(actor: actor, action: "subject_key.erase", resource: "subjects/\(subject)",
                                                       outcome: .success, details: ["result": outcome, "reason": reason]),
                                            component: "keyring", on: db)
            return erasure
        }
        if case .erased = erasure {
            try await database.execute("VACUUM mingus_subject_keys")
        }
        return erasure
    }

    /// Seals `plaintext` under the key of `subject` (made if it has none).
    public func seal(_ plaintext: [UInt8], subject: String, context: String) async throws -> [UInt8] {
        try await key(subject).seal(plaintext, context: context)
    }

    /// Opens a value sealed under the key of `subject`; throws ``SubjectKeyErased`` once it is erased.
    public func open(_ sealed: [UInt8], subject: String, context: String) async throws -> [UInt8] {
        guard let key = try await existingKey(subject) else { throw KeyringError("subject \(subject) has no data key") }
        return try key.open(sealed, context: context)
    }

    private func wrappingContext(_ subject: String) -> [UInt8] {
        Array("mingus-subject-key|\(subject)".utf8)
    }

    private func wrap(_ key: SymmetricKey, for subject: String) throws -> [UInt8] {
        let box = try key.withUnsafeBytes { try AES.GCM.seal(Data($0), using: kek.key, authenticating: wrappingContext(subject)) }
        guard let combined = box.combined else { throw KeyringError("AES-GCM produced no combined form") }
        return Array(combined)
    }

    private func unwrap(_ wrapped: [UInt8], for subject: String) throws -> SymmetricKey {
        do {
            return SymmetricKey(data: try AES.GCM.open(try AES.GCM.SealedBox(combined: wrapped), using: kek.key,
                                                       authenticating: wrappingContext(subject)))
        } catch {
            throw KeyringError("cannot unwrap the key of subject \(subject): wrong key-encrypting key or altered row")
        }
    }
}
