import Crypto
public import Foundation
import MingusCore
public import MingusPostgres
public import MingusSecurity

extension KeyPurpose {
    /// Seals dashboard users' TOTP secrets (the user id is the authenticated context).
    public static let dashboardTOTP = KeyPurpose("dashboard-totp")
}

/// A person who signs in to the dashboard, as `mingusctl dashboard user list` shows them.
public struct DashboardUser: Sendable, Equatable {
    public var id: UUID
    public var username: String
    public var roles: Set<Role>
    public var failedAttempts: Int
    public var lockedUntil: Date?
    public var disabledAt: Date?
    public var createdAt: Date
    public var lastSignInAt: Date?

    /// Whether the user may act with `role` (`admin` holds every role).
    public func has(_ role: Role) -> Bool { roles.contains(role) || roles.contains(.admin) }

    /// How the audit trail names this user.
    public var actor: String { "dashboard:\(username)" }
}

/// What a new user (or one whose second factor was reset) needs once, printed by `mingusctl`:
/// the TOTP secret in base32 and as an `otpauth://` URI, and single-use recovery codes.
public struct DashboardEnrollment: Sendable {
    public var totpSecret: String
    public var provisioningURI: String
    public var recoveryCodes: [String]
}

/// A change to dashboard users that cannot be made, with a message for the operator.
public struct DashboardUserError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Dashboard users, their TOTP secrets and recovery codes (`dashboard_users`,
/// `dashboard_recovery_codes`): every statement on them except sign-in's, which
/// ``DashboardAuthenticator`` makes.
public struct DashboardUsers: Sendable {
    /// Recovery codes given per enrollment.
    public static let recoveryCodeCount = 10
    /// The issuer authenticator apps show.
    public static let issuer = "Mingus"

    let database: PostgresClient

    public init(database: PostgresClient) {
        self.database = database
    }

    /// Creates a user with `password` (at least ``PasswordHash/minimumLength`` characters) and a
    /// new TOTP secret sealed with `keyring`'s `dashboard-totp` key.
    public func create(username: String, roles: Set<Role>, password: String, keyring: Keyring, createdBy: String,
                       parameters: PasswordHash.Parameters = .recommended) async throws -> (user: DashboardUser, enrollment: DashboardEnrollment) {
        guard username.range(of: "^[a-z0-9][a-z0-9._-]{1,62}$", options: .regularExpression) != nil else {
            throw DashboardUserError("a username is 2-63 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
        }
        guard password.count >= PasswordHash.minimumLength else {
            throw DashboardUserError("a password has at least \(PasswordHash.minimumLength) characters")
        }
        guard !roles.isEmpty else { throw DashboardUserError("give at least one role") }
        let id = UUID()
        let hash = try await PasswordHash.make(password, parameters: parameters)
        let secret = TOTP.makeSecret()
        let sealed = try keyring.seal(secret, purpose: .dashboardTOTP, context: id.uuidString.lowercased())
        let codes = Self.makeRecoveryCodes()
        do {
            try await database.withTransaction { db in
                try await db.execute("""
                    INSERT INTO dashboard_users (id, username, roles, password_hash, totp_secret, totp_key_version, created_by)
                    VALUES (\(id), \(username), \(roles.map(\.rawValue).sorted()), \(hash.encoded), \(sealed.combined),
                            \(sealed.version), \(createdBy))
                    """)
                try await Self.storeRecoveryCodes(codes, user: id, on: db)
            }
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw DashboardUserError("a dashboard user named '\(username)' exists already")
        }
        guard let user = try await find(username) else { throw DashboardUserError("the user just created cannot be read back") }
        return (user, Self.enrollment(secret: secret, username: username, codes: codes))
    }

    /// The user named `username`, nil when there is none.
    public func find(_ username: String) async throws -> DashboardUser? {
        try await database.query("SELECT \(unescaped: Self.columns) FROM dashboard_users WHERE username = \(username)").first.map { try Self.user($0) }
    }

    /// Every user, by name.
    public func list() async throws -> [DashboardUser] {
        try await database.query("SELECT \(unescaped: Self.columns) FROM dashboard_users ORDER BY username").map { try Self.user($0) }
    }

    /// Disables a user and ends their sessions; false when no enabled user has that name.
    public func disable(_ username: String, at now: Date = Date()) async throws -> Bool {
        try await database.withTransaction { db in
            guard let row = try await db.query("""
                UPDATE dashboard_users SET disabled_at = \(now) WHERE username = \(username) AND disabled_at IS NULL RETURNING id
                """).first else { return false }
            try await Self.endSessions(of: try row.decode(UUID.self, at: 0), reason: "disabled", at: now, on: db)
            return true
        }
    }

    /// Enables a disabled user again; false when no disabled user has that name.
    public func enable(_ username: String) async throws -> Bool {
        try await database.execute("""
            UPDATE dashboard_users SET disabled_at = NULL, failed_attempts = 0, locked_until = NULL
            WHERE username = \(username) AND disabled_at IS NOT NULL
            """) > 0
    }

    /// Lifts a lockout and clears the failed attempts; false when there is no such user.
    public func unlock(_ username: String) async throws -> Bool {
        try await database.execute("""
            UPDATE dashboard_users SET failed_attempts = 0, locked_until = NULL WHERE username = \(username)
            """) > 0
    }

    /// Gives a user a new TOTP secret and new recovery codes (the old ones stop working), and ends
    /// their sessions; nil when there is no such user.
    public func resetMFA(_ username: String, keyring: Keyring, at now: Date = Date()) async throws -> DashboardEnrollment? {
        guard let user = try await find(username) else { return nil }
        let secret = TOTP.makeSecret()
        let sealed = try keyring.seal(secret, purpose: .dashboardTOTP, context: user.id.uuidString.lowercased())
        let codes = Self.makeRecoveryCodes()
        try await database.withTransaction { db in
            try await db.execute("""
                UPDATE dashboard_users SET totp_secret = \(sealed.combined), totp_key_version = \(sealed.version), totp_last_step = 0
                WHERE id = \(user.id)
                """)
            try await db.execute("DELETE FROM dashboard_recovery_codes WHERE user_id = \(user.id)")
            try await Self.storeRecoveryCodes(codes, user: user.id, on: db)
            try await Self.endSessions(of: user.id, reason: "mfa_reset", at: now, on: db)
        }
        return Self.enrollment(secret: secret, username: username, codes: codes)
    }

    /// Sets a new password; false when there is no such user.
    public func setPassword(_ username: String, password: String, parameters: PasswordHash.Parameters = .recommended) async throws -> Bool {
        guard password.count >= PasswordHash.minimumLength else {
            throw DashboardUserError("a password has at least \(PasswordHash.minimumLength) characters")
        }
        let hash = try await PasswordHash.make(password, parameters: parameters)
        return try await database.execute("UPDATE dashboard_users SET password_hash = \(hash.encoded) WHERE username = \(username)") > 0
    }

    // MARK: - Helpers

    static let columns = "id, username, roles, failed_attempts, locked_until, disabled_at, created_at, last_sign_in_at"

    static func user(_ row: PostgresRow, offset o: Int = 0) throws -> DashboardUser {
        DashboardUser(id: try row.decode(UUID.self, at: o), username: try row.decode(String.self, at: o + 1),
                      roles: Set(try row.decode([String].self, at: o + 2).map(Role.init(rawValue:))),
                      failedAttempts: try row.decode(Int.self, at: o + 3), lockedUntil: try row.decode(Date?.self, at: o + 4),
                      disabledAt: try row.decode(Date?.self, at: o + 5), createdAt: try row.decode(Date.self, at: o + 6),
                      lastSignInAt: try row.decode(Date?.self, at: o + 7))
    }

    static func endSessions(of user: UUID, reason: String, at now: Date, on db: PostgresConnection) async throws {
        try await db.execute("""
            UPDATE dashboard_sessions SET ended_at = \(now), end_reason = \(reason) WHERE user_id = \(user) AND ended_at IS NULL
            """)
    }

    /// Ten codes of ten base32 characters (50 random bits each), written `abcde-fghij`.
    static func makeRecoveryCodes() -> [String] {
        (0..<recoveryCodeCount).map { _ in
            let text = Base32.encode(TOTP.makeSecret()).lowercased().prefix(10)
            return "\(text.prefix(5))-\(text.suffix(5))"
        }
    }

    /// The stored form of a recovery code: SHA-256 of its characters without dashes or spaces, lower case.
    static func recoveryCodeHash(_ code: String) -> [UInt8] {
        let normalized = code.lowercased().filter { $0 != "-" && $0 != " " }
        return Array(SHA256.hash(data: Array(normalized.utf8)))
    }

    static func storeRecoveryCodes(_ codes: [String], user: UUID, on db: PostgresConnection) async throws {
        try await db.execute("""
            INSERT INTO dashboard_recovery_codes (user_id, code_hash)
            SELECT \(user), h FROM unnest(\(codes.map(recoveryCodeHash))::bytea[]) AS h
            """)
    }

    static func enrollment(secret: [UInt8], username: String, codes: [String]) -> DashboardEnrollment {
        DashboardEnrollment(totpSecret: Base32.encode(secret), provisioningURI: TOTP.provisioningURI(secret: secret, account: username, issuer: issuer),
                            recoveryCodes: codes)
    }
}
