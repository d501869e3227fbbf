import Crypto
import Synchronization
public import Foundation
import MingusCore
public import MingusPostgres

/// A permission an API key can hold, such as `payments:write` (`<domain>:<verb>`).
///
/// Roles are declared by the domain whose routes check them (`extension Role { static let
/// paymentsWrite = Role("payments:write") }`) and listed in its domain description; ``admin``
/// holds every role.
public struct Role: DeclaredName {
    public let rawValue: String

    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// Holds every other role.
    public static let admin = Role("admin")
    /// Searches the audit trail (`GET /api/financial/audit`).
    public static let auditRead = Role("audit:read")
}

/// Who is calling: the API key's id, name and roles.
public struct APIKeyIdentity: Sendable, Equatable {
    public var id: String
    public var name: String
    public var roles: Set<Role>

    /// Whether the key may act with `role`.
    public func has(_ role: Role) -> Bool { roles.contains(role) || roles.contains(.admin) }

    /// How the audit trail names this caller.
    public var actor: String { "apikey:\(name)" }
}

/// API keys, stored only as SHA-256 hashes of their secrets (`mingus_api_keys`).
public struct APIKeyStore: Sendable {
    private let database: PostgresClient

    public init(database: PostgresClient) {
        self.database = database
    }

    /// Creates a key; the returned text is the only time the secret exists outside the caller.
    public func create(name: String, roles: Set<Role>) async throws -> (identity: APIKeyIdentity, key: String) {
        let id = Hex.random(bytes: 6)
        let secret = Self.randomSecret()
        try await database.execute("""
            INSERT INTO mingus_api_keys (id, name, secret_hash, roles)
            VALUES (\(id), \(name), \(Array(SHA256.hash(data: Array(secret.utf8)))), \(roles.map(\.rawValue).sorted()))
            """)
        return (APIKeyIdentity(id: id, name: name, roles: roles), "mgk_\(id)_\(secret)")
    }

    /// The identity of a presented key, or nil when it is malformed, unknown, revoked or wrong.
    public func verify(_ presented: String) async throws -> APIKeyIdentity? {
        let parts = presented.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "mgk", parts[1].count == 12, !parts[2].isEmpty else { return nil }
        let id = String(parts[1])
        let rows = try await database.query("""
            SELECT name, secret_hash, roles, last_used_at IS NULL OR last_used_at < now() - interval '1 minute'
            FROM mingus_api_keys WHERE id = \(id) AND revoked_at IS NULL
            """)
        guard let row = rows.first else { return nil }
        let expected = try row.decode([UInt8].self, at: 1)
        let actual = Array(SHA256.hash(data: Array(parts[2].utf8)))
        // Constant time: every byte is compared whatever the first difference.
        guard expected.count == actual.count, zip(expected, actual).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0 else { return nil }
        // Written at most once a minute: concurrent requests of one key must not queue on its row.
        if try row.decode(Bool.self, at: 3) {
            try await database.execute("UPDATE mingus_api_keys SET last_used_at = now() WHERE id = \(id)")
        }
        let roles = Set(try row.decode([String].self, at: 2).map(Role.init(rawValue:)))
        return APIKeyIdentity(id: id, name: try row.decode(String.self, at: 0), roles: roles)
    }

    /// Every key, without secrets: id, name, roles, created, last used, revoked.
    public func list() async throws -> [(identity: APIKeyIdentity, createdAt: Date, lastUsedAt: Date?, revokedAt: Date?)] {
        try await database.query("""
            SELECT id, name, roles, created_at, last_used_at, revoked_at FROM mingus_api_keys ORDER BY created_at
            """).map { row in
            (APIKeyIdentity(id: try row.decode(String.self, at: 0), name: try row.decode(String.self, at: 1),
                            roles: Set(try row.decode([String].self, at: 2).map(Role.init(rawValue:)))),
             try row.decode(Date.self, at: 3), try row.decode(Date?.self, at: 4), try row.decode(Date?.self, at: 5))
        }
    }

    /// Revokes a key by id or name; returns how many keys it revoked.
    @discardableResult
    public func revoke(_ idOrName: String) async throws -> Int {
        try await database.execute("""
            UPDATE mingus_api_keys SET revoked_at = now() WHERE (id = \(idOrName) OR name = \(idOrName)) AND revoked_at IS NULL
            """)
    }

    private static func randomSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "-")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Presented API keys and what they verified to, remembered for ``lifetime`` so that a busy
/// caller's requests do not each read `mingus_api_keys`.
///
/// A revoked key so stops working within the lifetime, as Kong's credential cache does within
/// its `db_update_frequency`; a wrong secret is remembered as wrong for as long. Entries are
/// keyed by the SHA-256 of the presented text, never the text. A lifetime of zero turns the
/// cache off.
public final class APIKeyCache: Sendable {
    private struct Entry: Sendable {
        var identity: APIKeyIdentity?
        var expires: ContinuousClock.Instant
    }

    private let store: APIKeyStore
    /// How long a verification is trusted.
    public let lifetime: Duration
    private let capacity: Int
    private let entries = Mutex<[[UInt8]: Entry]>([:])

    public init(store: APIKeyStore, lifetime: Duration, capacity: Int = 10_000) {
        self.store = store
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// The identity of a presented key, as ``APIKeyStore/verify(_:)`` answers it at most
    /// ``lifetime`` ago.
    public func verify(_ presented: String) async throws -> APIKeyIdentity? {
        guard lifetime > .zero else { return try await store.verify(presented) }
        let digest = Array(SHA256.hash(data: Array(presented.utf8)))
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[digest] }), entry.expires > now { return entry.identity }
        let identity = try await store.verify(presented)
        entries.withLock { entries in
            if entries.count >= capacity { entries = entries.filter { $0.value.expires > now } }
            if entries.count >= capacity { entries.removeAll() }
            entries[digest] = Entry(identity: identity, expires: now + lifetime)
        }
        return identity
    }
}
