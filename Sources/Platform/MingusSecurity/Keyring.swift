import Crypto
public import Foundation
import MingusCore
public import MingusPostgres

/// What a data key protects. Each purpose has its own versioned keys.
///
/// Purposes are declared by the domain that seals with them (payments declares `pan`,
/// `records`, `transit` and `fingerprint`).
public struct KeyPurpose: DeclaredName {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }
}

/// A failure of key management or encryption, without any key or plaintext in it.
public struct KeyringError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Ciphertext with the data key version that sealed it (AES-256-GCM: nonce, ciphertext, tag).
public struct SealedValue: Sendable, Equatable {
    public var version: Int
    public var combined: [UInt8]

    public init(version: Int, combined: [UInt8]) {
        self.version = version
        self.combined = combined
    }

    /// A text form for messages: `v<version>.<base64>`.
    public var encoded: String { "v\(version).\(Data(combined).base64EncodedString())" }

    /// Parses ``encoded``.
    public init(encoded text: String) throws {
        let parts = text.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, parts[0].hasPrefix("v"), let version = Int(parts[0].dropFirst()), version > 0,
              let data = Data(base64Encoded: String(parts[1])) else {
            throw KeyringError("not a sealed value (expected v<version>.<base64>)")
        }
        self.init(version: version, combined: Array(data))
    }
}

/// The key-encrypting key: 32 random bytes in a file readable by its owner only.
public struct KeyEncryptingKey: Sendable {
    let key: SymmetricKey
    /// A short public name: the first 16 hex digits of SHA-256 over the key.
    public let id: String

    init(key: SymmetricKey) {
        self.key = key
        id = String(Hex.encode(key.withUnsafeBytes { SHA256.hash(data: Data($0)) }).prefix(16))
    }

    /// Reads the key file; refuses a file others can read.
    public init(contentsOf url: URL) throws {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw KeyringError("\(url.path) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
        }
        let text = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Data(base64Encoded: text), raw.count == 32 else {
            throw KeyringError("\(url.path) does not hold a 32-byte base64 key")
        }
        self.init(key: SymmetricKey(data: raw))
    }

    /// Creates a new key file with mode 0600; never overwrites one.
    @discardableResult
    public static func create(at url: URL) throws -> KeyEncryptingKey {
        let manager = FileManager.default
        guard !manager.fileExists(atPath: url.path) else {
            throw KeyringError("\(url.path) already exists; a key-encrypting key is never overwritten")
        }
        try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                                    attributes: [.posixPermissions: 0o700])
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() }
        guard manager.createFile(atPath: url.path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw KeyringError("cannot create \(url.path)")
        }
        return KeyEncryptingKey(key: key)
    }
}

/// Every data key, unwrapped in memory: the newest version of each purpose seals, every version
/// opens. Keys are stored wrapped by the ``KeyEncryptingKey`` in `mingus_data_keys`.
public struct Keyring: Sendable {
    private let keys: [KeyPurpose: [Int: SymmetricKey]]

    /// Loads and unwraps every data key that is not retired.
    public static func load(kek: KeyEncryptingKey, database: PostgresClient) async throws -> Keyring {
        var keys: [KeyPurpose: [Int: SymmetricKey]] = [:]
        for row in try await database.query("SELECT purpose, version, wrapped, kek_id FROM mingus_data_keys WHERE retired_at IS NULL") {
            let purpose = KeyPurpose(try row.decode(String.self, at: 0))
            let version = try row.decode(Int.self, at: 1)
            let kekID = try row.decode(String.self, at: 3)
            guard kekID == kek.id else {
                throw KeyringError("data key \(purpose.rawValue) v\(version) is wrapped by key-encrypting key \(kekID), not by \(kek.id)")
            }
            let wrapped = try row.decode([UInt8].self, at: 2)
            do {
                let box = try AES.GCM.SealedBox(combined: wrapped)
                let raw = try AES.GCM.open(box, using: kek.key, authenticating: Array(wrappingContext(purpose, version).utf8))
                keys[purpose, default: [:]][version] = SymmetricKey(data: raw)
            } catch {
                throw KeyringError("cannot unwrap data key \(purpose.rawValue) v\(version): wrong key-encrypting key or altered row")
            }
        }
        return Keyring(keys: keys)
    }

    /// Adds a new version for `purpose` (the first when there is none); returns its number.
    @discardableResult
    public static func rotate(_ purpose: KeyPurpose, kek: KeyEncryptingKey, database: PostgresClient) async throws -> Int {
        try await database.withTransaction { db in
            try await db.execute("SELECT pg_advisory_xact_lock(hashtext('mingus_data_keys'))")
            let version = try await db.query(
                "SELECT coalesce(max(version), 0) + 1 FROM mingus_data_keys WHERE purpose = \(purpose.rawValue)"
            )[0].decode(Int.self, at: 0)
            let key = SymmetricKey(size: .bits256)
            let wrapped = try key.withUnsafeBytes { raw in
                try AES.GCM.seal(Data(raw), using: kek.key, authenticating: Array(wrappingContext(purpose, version).utf8))
            }
            guard let combined = wrapped.combined else { throw KeyringError("AES-GCM produced no combined form") }
            try await db.execute("""
                INSERT INTO mingus_data_keys (purpose, version, wrapped, kek_id)
                VALUES (\(purpose.rawValue), \(version), \(Array(combined)), \(kek.id))
                """)
            return version
        }
    }

    /// Binds a wrapped key to its purpose and version, so a row moved elsewhere does not unwrap.
    private static func wrappingContext(_ purpose: KeyPurpose, _ version: Int) -> String {
        "mingus-data-key|\(purpose.rawValue)|\(version)"
    }

    /// The newest version of `purpose`.
    public func currentVersion(_ purpose: KeyPurpose) throws -> Int {
        guard let version = keys[purpose]?.keys.max() else {
            throw KeyringError("no \(purpose.rawValue) data key: run mingusctl keys rotate --purpose \(purpose.rawValue)")
        }
        return version
    }

    /// Versions of `purpose` that can open ciphertext, newest first.
    public func versions(_ purpose: KeyPurpose) -> [Int] {
        (keys[purpose]?.keys).map { $0.sorted(by: >) } ?? []
    }

    /// Seals `plaintext` with the newest key of `purpose`; `context` (e.g. a row id) is
    /// authenticated, so ciphertext copied to another row does not open.
    public func seal(_ plaintext: [UInt8], purpose: KeyPurpose, context: String) throws -> SealedValue {
        let version = try currentVersion(purpose)
        let box = try AES.GCM.seal(plaintext, using: key(purpose, version), authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw KeyringError("AES-GCM produced no combined form") }
        return SealedValue(version: version, combined: Array(combined))
    }

    /// Seals `plaintext` so that the same plaintext and context always give the same ciphertext:
    /// the nonce is an HMAC of both under a subkey (as in SIV), so equal values can be matched on
    /// their sealed form, which only the key opens (``open(_:purpose:context:)``). It reveals
    /// which values are equal, nothing else.
    public func sealDeterministic(_ plaintext: [UInt8], purpose: KeyPurpose, context: String) throws -> SealedValue {
        let version = try currentVersion(purpose)
        let key = try key(purpose, version)
        let nonceKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Array("mingus-deterministic-nonce".utf8), outputByteCount: 32)
        var mac = HMAC<SHA256>(key: nonceKey)
        mac.update(data: Array(context.utf8))
        mac.update(data: [0])
        mac.update(data: plaintext)
        let nonce = try AES.GCM.Nonce(data: Array(mac.finalize()).prefix(12))
        let box = try AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: Array(context.utf8))
        guard let combined = box.combined else { throw KeyringError("AES-GCM produced no combined form") }
        return SealedValue(version: version, combined: Array(combined))
    }

    /// Opens a sealed value with the key version it names.
    public func open(_ sealed: SealedValue, purpose: KeyPurpose, context: String) throws -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(combined: sealed.combined)
            return Array(try AES.GCM.open(box, using: key(purpose, sealed.version), authenticating: Array(context.utf8)))
        } catch let error as KeyringError {
            throw error
        } catch {
            throw KeyringError("cannot open a \(purpose.rawValue) value sealed with v\(sealed.version): altered, or sealed for another context")
        }
    }

    /// HMAC-SHA256 of `data` with every key version of `purpose`, newest first: a keyed hash
    /// (PCI DSS 3.5.1.1) that finds an equal value without storing it.
    public func fingerprints(_ data: [UInt8], purpose: KeyPurpose) -> [(version: Int, value: [UInt8])] {
        versions(purpose).compactMap { version in
            keys[purpose]?[version].map { (version, Array(HMAC<SHA256>.authenticationCode(for: data, using: $0))) }
        }
    }

    private func key(_ purpose: KeyPurpose, _ version: Int) throws -> SymmetricKey {
        guard let key = keys[purpose]?[version] else {
            throw KeyringError("no \(purpose.rawValue) data key v\(version) (retired or never made)")
        }
        return key
    }
}
