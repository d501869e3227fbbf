import Foundation
import MingusCore
public import MingusSecurity
public import MingusPostgres

/// The token vault (`card_tokens`): one random token per distinct card, found again through a
/// keyed fingerprint, the number kept only as AES-256-GCM ciphertext.
public enum CardVault {
    /// The tokens of `pans`, in order (one card, one token): a card's existing token when it is
    /// vaulted (under any fingerprint key version), else a new one with the number sealed under
    /// the newest `pan` key. Three statements at most
    /// however many there are: one lookup of every fingerprint, one insert of the cards not yet
    /// vaulted, and a second lookup for cards another transaction vaulted meanwhile.
    public static func tokenize(_ pans: [PAN], keyring: Keyring, on db: PostgresConnection) async throws -> [String] {
        guard !pans.isEmpty else { return [] }
        var cardOfDigits: [String: Int] = [:]
        var cards: [(pan: PAN, fingerprints: [(version: Int, value: [UInt8])])] = []
        for pan in pans where cardOfDigits[pan.digits] == nil {
            let fingerprints = keyring.fingerprints(Array(pan.digits.utf8), purpose: .fingerprint)
            guard !fingerprints.isEmpty else { throw KeyringError("no fingerprint data key: run mingusctl keys init") }
            cardOfDigits[pan.digits] = cards.count
            cards.append((pan, fingerprints))
        }
        var tokens = [String?](repeating: nil, count: cards.count)

        // A plain read: payments of one card in concurrent transactions must not queue on its row.
        func lookUp(_ indices: [Int], newestOnly: Bool) async throws {
            var owners: [Int] = [], versions: [Int] = [], values: [[UInt8]] = []
            for index in indices {
                for fingerprint in newestOnly ? Array(cards[index].fingerprints.prefix(1)) : cards[index].fingerprints {
                    owners.append(index)
                    versions.append(fingerprint.version)
                    values.append(fingerprint.value)
                }
            }
            let rows = try await db.query("""
                SELECT wanted.owner, card_tokens.token
                FROM unnest(\(owners)::int[], \(versions)::int[], \(values)::bytea[]) AS wanted (owner, version, fingerprint)
                JOIN card_tokens ON card_tokens.fingerprint_version = wanted.version AND card_tokens.fingerprint = wanted.fingerprint
                """)
            for row in rows { tokens[try row.decode(Int.self, at: 0)] = try row.decode(String.self, at: 1) }
        }
        try await lookUp(Array(cards.indices), newestOnly: false)

        // New cards, in fingerprint order so that concurrent batches take their locks in one order.
        let missing = cards.indices.filter { tokens[$0] == nil }.sorted {
            cards[$0].fingerprints[0].value.lexicographicallyPrecedes(cards[$1].fingerprints[0].value)
        }
        if !missing.isEmpty {
            var fresh: [String] = [], fingerprints: [[UInt8]] = [], fingerprintVersions: [Int] = []
            var ciphertexts: [[UInt8]] = [], keyVersions: [Int] = [], brands: [String] = [], masks: [String] = []
            for index in missing {
                let (pan, cardFingerprints) = cards[index]
                let token = "tok_" + Hex.random(bytes: 16)
                let sealed = try keyring.seal(Array(pan.digits.utf8), purpose: .pan, context: storageContext(token))
                fresh.append(token)
                fingerprints.append(cardFingerprints[0].value)
                fingerprintVersions.append(cardFingerprints[0].version)
                ciphertexts.append(sealed.combined)
                keyVersions.append(sealed.version)
                brands.append(pan.brand.rawValue)
                masks.append(pan.masked)
            }
            let inserted = try await db.query("""
                INSERT INTO card_tokens (token, fingerprint, fingerprint_version, pan_ciphertext, pan_key_version, card_brand, masked_pan)
                SELECT * FROM unnest(\(fresh)::text[], \(fingerprints)::bytea[], \(fingerprintVersions)::int[], \(ciphertexts)::bytea[],
                                     \(keyVersions)::int[], \(brands)::text[], \(masks)::text[])
                ON CONFLICT (fingerprint_version, fingerprint) DO NOTHING
                RETURNING token
                """)
            let stored = Set(try inserted.map { try $0.decode(String.self, at: 0) })
            for (position, index) in missing.enumerated() where stored.contains(fresh[position]) {
                tokens[index] = fresh[position]
            }
            // Another transaction vaulted some of these cards first.
            let raced = missing.filter { tokens[$0] == nil }
            if !raced.isEmpty { try await lookUp(raced, newestOnly: true) }
        }
        return try pans.map { pan in
            guard let token = tokens[cardOfDigits[pan.digits]!] else {
                throw VaultMiss()
            }
            return token
        }
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

/// A card was neither found in the vault nor stored (retrying the job reads the vault again).
struct VaultMiss: Error, CustomStringConvertible {
    var description: String { "a card was neither found in the vault nor stored" }
}
