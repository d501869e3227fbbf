import Foundation
import MingusCore
public import MingusSecurity
public import MingusPostgres

/// The token vault (`card_tokens`): one random token per distinct card, found again through a
/// keyed fingerprint, the number kept only as AES-256-GCM ciphertext.
public enum CardVault {
    /// The token of `pan`: the existing one when the card is vaulted (under any fingerprint key
    /// version), else a new one with the number sealed under the newest `pan` key.
    public static func tokenize(_ pan: PAN, keyring: Keyring, on db: PostgresConnection) async throws -> String {
        let fingerprints = keyring.fingerprints(Array(pan.digits.utf8), purpose: .fingerprint)
        guard let newest = fingerprints.first else {
            throw KeyringError("no fingerprint data key: run mingusctl keys init")
        }
        // A plain read: payments of one card in concurrent transactions must not queue on its row.
        for fingerprint in fingerprints {
            let rows = try await db.query("""
                SELECT token FROM card_tokens WHERE fingerprint_version = \(fingerprint.version) AND fingerprint = \(fingerprint.value)
                """)
            if let row = rows.first { return try row.decode(String.self, at: 0) }
        }
        let token = "tok_" + Hex.random(bytes: 16)
        let sealed = try keyring.seal(Array(pan.digits.utf8), purpose: .pan, context: storageContext(token))
        let inserted = try await db.query("""
            INSERT INTO card_tokens (token, fingerprint, fingerprint_version, pan_ciphertext, pan_key_version, card_brand, masked_pan)
            VALUES (\(token), \(newest.value), \(newest.version), \(sealed.combined), \(sealed.version), \(pan.brand.rawValue), \(pan.masked))
            ON CONFLICT (fingerprint_version, fingerprint) DO NOTHING
            RETURNING token
            """)
        if let row = inserted.first { return try row.decode(String.self, at: 0) }
        // Another transaction vaulted the same card first.
        return try await db.query("""
            SELECT token FROM card_tokens WHERE fingerprint_version = \(newest.version) AND fingerprint = \(newest.value)
            """)[0].decode(String.self, at: 0)
    }

    /// The card number behind `token`, opened inside the payments worker only.
    public static func detokenize(_ token: String, keyring: Keyring, on db: PostgresConnection) async throws -> PAN? {
        guard let row = try await db.query("SELECT pan_ciphertext, pan_key_version FROM card_tokens WHERE token = \(token)").first else {
            return nil
        }
        let sealed = SealedValue(version: try row.decode(Int.self, at: 1), combined: try row.decode([UInt8].self, at: 0))
        let digits = try keyring.open(sealed, purpose: .pan, context: storageContext(token))
        return try PAN(String(decoding: digits, as: UTF8.self))
    }

    /// Moves up to `limit` vault rows whose number or fingerprint uses an older key version to the
    /// newest versions; returns how many moved. Rows are locked with SKIP LOCKED, so several
    /// rewrap jobs can run at once.
    public static func rewrap(limit: Int, keyring: Keyring, on db: PostgresConnection) async throws -> Int {
        let panVersion = try keyring.currentVersion(.pan)
        let fingerprintVersion = try keyring.currentVersion(.fingerprint)
        let rows = try await db.query("""
            SELECT token, pan_ciphertext, pan_key_version FROM card_tokens
            WHERE pan_key_version < \(panVersion) OR fingerprint_version < \(fingerprintVersion)
            ORDER BY token LIMIT \(limit) FOR UPDATE SKIP LOCKED
            """)
        for row in rows {
            let token = try row.decode(String.self, at: 0)
            let old = SealedValue(version: try row.decode(Int.self, at: 2), combined: try row.decode([UInt8].self, at: 1))
            let digits = try keyring.open(old, purpose: .pan, context: storageContext(token))
            let sealed = try keyring.seal(digits, purpose: .pan, context: storageContext(token))
            guard let fingerprint = keyring.fingerprints(digits, purpose: .fingerprint).first else { throw KeyringError("no fingerprint data key") }
            try await db.execute("""
                UPDATE card_tokens SET pan_ciphertext = \(sealed.combined), pan_key_version = \(sealed.version),
                       fingerprint = \(fingerprint.value), fingerprint_version = \(fingerprint.version)
                WHERE token = \(token)
                """)
        }
        return rows.count
    }

    /// The authenticated context of a vaulted number: ciphertext copied to another token does not open.
    static func storageContext(_ token: String) -> String { "card_token:\(token)" }
}
