import Crypto
import MingusCore
public import Foundation
public import Logging
public import MingusHTTP
public import MingusPostgres
public import MingusSecurity

/// The dashboard's sign-in rules.
///
/// Sessions end after ``idleTimeout`` without a request (PCI DSS 8.2.8: 15 minutes) and at
/// ``absoluteLifetime`` after sign-in whatever the activity (12 hours: one working day, so a
/// stolen cookie does not live on). ``maxFailedAttempts`` failures in a row lock the account for
/// ``lockout`` (8.3.4: at most 10 attempts, at least 30 minutes).
public struct DashboardPolicy: Sendable {
    public var idleTimeout: Duration = .seconds(15 * 60)
    public var absoluteLifetime: Duration = .seconds(12 * 3600)
    public var maxFailedAttempts = 10
    public var lockout: Duration = .seconds(30 * 60)
    /// Mark the cookie `Secure`: on when the gateway serves TLS (`MINGUS_TLS_CERT_FILE`) or sits
    /// behind a TLS-terminating proxy (`MINGUS_DASHBOARD_SECURE_COOKIE=true`).
    public var secureCookie = false
    /// How long the figures (panels and JSON answers) are reused: polling costs one computation
    /// per figure and second, whatever the number of readers. Zero turns the reuse off.
    public var figuresLifetime: Duration = .seconds(1)
    /// The time; tests move it.
    public var clock: @Sendable () -> Date = { Date() }

    public init() {}

    /// The policy for the gateway's environment (see ``secureCookie``).
    public init(environment: [String: String]) {
        let tls = !(environment["MINGUS_TLS_CERT_FILE"] ?? "").isEmpty
        secureCookie = tls || environment["MINGUS_DASHBOARD_SECURE_COOKIE"] == "true"
    }
}

/// A signed-in dashboard user, as a request sees them.
public struct DashboardSession: Sendable {
    public var user: DashboardUser
    /// Proves a form came from a page of this session (hidden field `csrf_token`).
    public var csrfToken: String
    public var createdAt: Date
    public var expiresAt: Date
}

/// How a sign-in ended. Failures do not say which factor was wrong.
public enum SignInOutcome: Sendable {
    /// The session token for the cookie.
    case signedIn(token: String, user: DashboardUser)
    case refused
}

/// Signs dashboard users in and out and resolves session cookies (`dashboard_users`,
/// `dashboard_sessions`). Every sign-in, failure, lockout, logout and expiry is an audit event
/// (component `gateway`, actor `dashboard:<username>`).
public struct DashboardAuthenticator: Sendable {
    let database: PostgresClient
    let keys: KeyringCache
    let audit: AuditBatcher
    let logger: Logger
    /// The rules, clock included.
    public let policy: DashboardPolicy
    /// Verified against when the user does not exist, so that an unknown name takes as long as
    /// a wrong password.
    private let decoy: PasswordHash?

    public init(database: PostgresClient, keys: KeyringCache, audit: AuditBatcher, policy: DashboardPolicy, logger: Logger) {
        self.database = database
        self.keys = keys
        self.audit = audit
        self.policy = policy
        self.logger = logger
        decoy = PasswordHash(encoded: "scrypt$32768$8$3$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    }

    /// Checks username, password and second factor (a TOTP code, or an unused recovery code).
    public func signIn(username: String, password: String, code: String, origin: String) async throws -> SignInOutcome {
        let now = policy.clock()
        let name = username.lowercased()
        func record(_ action: String, _ outcome: AuditEvent.Outcome, _ details: [String: String]) async {
            await append(AuditEvent(actor: "dashboard:\(name.prefix(63))", action: action, resource: "dashboard/users/\(name.prefix(63))",
                                    outcome: outcome, origin: origin, details: details))
        }
        guard let row = try await database.query("""
            SELECT id, password_hash, totp_secret, totp_key_version, totp_last_step, locked_until, disabled_at
            FROM dashboard_users WHERE username = \(name)
            """).first else {
            _ = try await decoy?.verify(password)
            await record("dashboard.login", .failure, ["reason": "credentials"])
            return .refused
        }
        let id = try row.decode(UUID.self, at: 0)
        if let lockedUntil = try row.decode(Date?.self, at: 5), lockedUntil > now {
            await record("dashboard.login", .denied, ["reason": "locked", "locked_until": APITime.format(lockedUntil)])
            return .refused
        }
        if try row.decode(Date?.self, at: 6) != nil {
            await record("dashboard.login", .denied, ["reason": "disabled"])
            return .refused
        }
        var factor = "password"
        var ok = false
        if let hash = PasswordHash(encoded: try row.decode(String.self, at: 1)), try await hash.verify(password) {
            factor = "code"
            ok = try await verifySecondFactor(user: id, code: code, sealed: try row.decode([UInt8].self, at: 2),
                                              version: try row.decode(Int.self, at: 3), now: now)
        }
        guard ok else {
            let after = try await database.query("""
                UPDATE dashboard_users SET
                    failed_attempts = CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_attempts + 1 END,
                    locked_until = CASE WHEN (CASE WHEN locked_until IS NOT NULL THEN 1 ELSE failed_attempts + 1 END) >= \(policy.maxFailedAttempts)
                                        THEN \(now)::timestamptz + \(Int64(policy.lockout.inSeconds))::bigint * interval '1 second' END
                WHERE id = \(id) RETURNING failed_attempts, locked_until
                """)[0]
            let attempts = try after.decode(Int.self, at: 0)
            await record("dashboard.login", .failure, ["reason": "credentials", "factor": factor, "failed_attempts": "\(attempts)"])
            if let lockedUntil = try after.decode(Date?.self, at: 1) {
                await record("dashboard.lockout", .success, ["failed_attempts": "\(attempts)", "locked_until": APITime.format(lockedUntil)])
            }
            return .refused
        }
        let token = Self.randomToken()
        let expires = now.addingTimeInterval(policy.absoluteLifetime.inSeconds)
        let user = try await database.withTransaction { db in
            try await db.execute("""
                INSERT INTO dashboard_sessions (token_hash, user_id, created_at, last_seen_at, expires_at, origin)
                VALUES (\(Self.tokenHash(token)), \(id), \(now), \(now), \(expires), \(origin))
                """)
            // Sessions that ended a day ago or more are of no further use.
            try await db.execute("DELETE FROM dashboard_sessions WHERE expires_at < \(now)::timestamptz - interval '1 day'")
            return try DashboardUsers.user(try await db.query("""
                UPDATE dashboard_users SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = \(now) WHERE id = \(id)
                RETURNING \(unescaped: DashboardUsers.columns)
                """)[0])
        }
        await record("dashboard.login", .success, ["factor": code.count == 6 ? "totp" : "recovery_code"])
        return .signedIn(token: token, user: user)
    }

    /// The session of a cookie's token, nil when it is unknown, ended, idle for longer than the
    /// idle timeout, past its absolute limit, or its user is disabled. Marks the session seen
    /// (at most every 30 seconds, so polling does not write on every request).
    public func session(token: String, origin: String) async throws -> DashboardSession? {
        guard token.utf8.count == 43 else { return nil }
        let now = policy.clock()
        let hash = Self.tokenHash(token)
        guard let row = try await database.query("""
            SELECT s.created_at, s.last_seen_at, s.expires_at, s.ended_at IS NULL, u.disabled_at IS NULL,
                   \(unescaped: DashboardUsers.columns.split(separator: ",").map { "u." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
            FROM dashboard_sessions s JOIN dashboard_users u ON u.id = s.user_id WHERE s.token_hash = \(hash)
            """).first else { return nil }
        guard try row.decode(Bool.self, at: 3), try row.decode(Bool.self, at: 4) else { return nil }
        let createdAt = try row.decode(Date.self, at: 0)
        let lastSeen = try row.decode(Date.self, at: 1)
        let expiresAt = try row.decode(Date.self, at: 2)
        let user = try DashboardUsers.user(row, offset: 5)
        let idle = now.timeIntervalSince(lastSeen) >= policy.idleTimeout.inSeconds
        if idle || now >= expiresAt {
            let reason = now >= expiresAt ? "absolute" : "idle"
            if try await database.execute("""
                UPDATE dashboard_sessions SET ended_at = \(now), end_reason = \(reason) WHERE token_hash = \(hash) AND ended_at IS NULL
                """) > 0 {
                await append(AuditEvent(actor: user.actor, action: "dashboard.session.expired", resource: "dashboard/sessions",
                                        outcome: .success, origin: origin, details: ["reason": reason]))
            }
            return nil
        }
        if now.timeIntervalSince(lastSeen) >= 30 {
            try await database.execute("UPDATE dashboard_sessions SET last_seen_at = \(now) WHERE token_hash = \(hash) AND ended_at IS NULL")
        }
        return DashboardSession(user: user, csrfToken: Self.csrfToken(for: token), createdAt: createdAt, expiresAt: expiresAt)
    }

    /// Ends the session of `token` (a logout); audited when it was live.
    public func signOut(token: String, user: DashboardUser, origin: String) async throws {
        let now = policy.clock()
        if try await database.execute("""
            UPDATE dashboard_sessions SET ended_at = \(now), end_reason = 'logout' WHERE token_hash = \(Self.tokenHash(token)) AND ended_at IS NULL
            """) > 0 {
            await append(AuditEvent(actor: user.actor, action: "dashboard.logout", resource: "dashboard/sessions", outcome: .success, origin: origin))
        }
    }

    /// Appends a dashboard event that is not a sign-in (a refused form, a missing role).
    public func record(_ event: AuditEvent) async {
        await append(event)
    }

    // MARK: - Second factor

    private func verifySecondFactor(user: UUID, code: String, sealed: [UInt8], version: Int, now: Date) async throws -> Bool {
        let code = code.trimmingCharacters(in: .whitespaces)
        if code.count == 6, code.allSatisfy(\.isASCII), code.allSatisfy(\.isNumber) {
            let keyring = try await keys.current(having: version, of: .dashboardTOTP)
            let secret = try keyring.open(SealedValue(version: version, combined: sealed), purpose: .dashboardTOTP, context: user.uuidString.lowercased())
            // The newest matching step not used yet; taking it is atomic, so a code works once.
            for step in TOTP(secret: secret).matchingSteps(code, at: now) {
                if try await database.execute("""
                    UPDATE dashboard_users SET totp_last_step = \(step) WHERE id = \(user) AND totp_last_step < \(step)
                    """) > 0 { return true }
            }
            return false
        }
        guard (10...12).contains(code.count) else { return false }
        return try await database.execute("""
            UPDATE dashboard_recovery_codes SET used_at = \(now)
            WHERE user_id = \(user) AND code_hash = \(DashboardUsers.recoveryCodeHash(code)) AND used_at IS NULL
            """) > 0
    }

    private func append(_ event: AuditEvent) async {
        do {
            try await audit.append(event)
        } catch {
            logger.error("cannot write a dashboard audit event", metadata: ["mingus.error": "\(String(reflecting: error))", "mingus.audit.action": "\(event.action)"])
        }
    }

    // MARK: - Tokens

    /// 32 random bytes, base64url without padding (43 characters).
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return base64URL((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    static func tokenHash(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(token.utf8)))
    }

    /// Derived from the session token (never stored): HMAC-SHA256 of a label under the token.
    static func csrfToken(for token: String) -> String {
        base64URL(Array(HMAC<SHA256>.authenticationCode(for: Array("mingus-dashboard-csrf".utf8), using: SymmetricKey(data: Array(token.utf8)))))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
