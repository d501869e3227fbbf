public import MingusRuntime

extension DataTable {
    /// The dashboard's tables: its users, their recovery codes and sessions.
    static let dashboard: [DataTable] = [
        DataTable("dashboard_users", "People who sign in to the dashboard: roles, password hash, sealed TOTP secret, lockout",
                  categories: [.security, .personal], lawfulBasis: .legitimateInterests,
                  retention: .unbounded("disabled users are kept as evidence of who had access"))
            .columns(.internal, "id roles totp_key_version totp_last_step failed_attempts locked_until disabled_at created_at last_sign_in_at")
            .columns(.confidential, "username created_by")
            .column("password_hash", .highlyRestricted, .hashed)
            .column("totp_secret", .highlyRestricted, .encrypted(.dashboardTOTP)),
        DataTable("dashboard_recovery_codes", "Each user's single-use recovery codes, hashed", categories: [.security],
                  retention: .rule("replaced when the user's second factor is reset"))
            .columns(.internal, "user_id used_at")
            .column("code_hash", .highlyRestricted, .hashed),
        DataTable("dashboard_sessions", "Sign-in sessions: a hash of the cookie's token, when they end and why",
                  categories: [.security, .personal], lawfulBasis: .legitimateInterests,
                  retention: .rule("deleted a day after they expire"))
            .columns(.internal, "user_id created_at last_seen_at expires_at ended_at end_reason")
            .columns(.confidential, "origin")
            .column("token_hash", .highlyRestricted, .hashed),
    ]
}
