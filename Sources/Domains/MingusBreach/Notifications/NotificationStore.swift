public import Foundation
public import MingusHTTP
public import MingusPostgres
import MingusSecurity

/// How far a breach's notifications are: recipients uploaded and where each stands, and the
/// latest run. `remaining` is every recipient not yet `sent` or `failed`.
public struct NotificationProgress: Encodable, Sendable {
    public var recipients: Int
    public var sent: Int
    public var failed: Int
    public var remaining: Int
    /// Recipients sent again after a worker died between handing their message to the SMTP
    /// server and recording the reply (same Message-ID; the server may hold two copies).
    public var uncertainResends: Int
    @Nullable public var run: RunView?

    /// No recipient and no run.
    public static let empty = NotificationProgress(recipients: 0, sent: 0, failed: 0, remaining: 0, uncertainResends: 0, run: nil)

    /// One notification run.
    public struct RunView: Encodable, Sendable {
        public var id: String
        public var status: String
        public var requestedBy: String
        public var startedAt: Date
        @Nullable public var finishedAt: Date?
        public var chunks: Int
    }
}

/// A recipient ready to be stored: sealed name and address, keyed fingerprint.
struct SealedRecipient: Sendable {
    var id: UUID
    var externalID: String
    var jurisdiction: String
    var name: Data
    var email: Data
    var keyVersion: Int
    var fingerprint: Data
    var fingerprintVersion: Int
    var line: Int

    static func nameContext(_ id: UUID) -> String { "breach-recipient/\(id.uuidString.lowercased())/name" }
    static func emailContext(_ id: UUID) -> String { "breach-recipient/\(id.uuidString.lowercased())/email" }

    /// Seals `record` with the newest `breach-recipients` key; the address is fingerprinted
    /// (lower-cased) with the newest `breach-fingerprint` key.
    init(_ record: RecipientRecord, keyring: Keyring) throws {
        id = UUID()
        externalID = record.id
        jurisdiction = record.jurisdiction
        let name = try keyring.seal(Array(record.name.utf8), purpose: .breachRecipients, context: Self.nameContext(id))
        let email = try keyring.seal(Array(record.email.utf8), purpose: .breachRecipients, context: Self.emailContext(id))
        self.name = Data(name.combined)
        self.email = Data(email.combined)
        keyVersion = name.version
        guard let fingerprint = keyring.fingerprints(Array(record.email.lowercased().utf8), purpose: .breachFingerprint).first else {
            throw KeyringError("no breach-fingerprint data key (mingusctl keys init)")
        }
        self.fingerprint = Data(fingerprint.value)
        fingerprintVersion = fingerprint.version
        line = record.line
    }
}

/// A recipient claimed for sending, still sealed.
struct ClaimedRecipient: Sendable {
    var id: UUID
    var externalID: String
    var jurisdiction: String
    var name: Data
    var email: Data
    var keyVersion: Int
    var uncertainResends: Int
}

/// A letter to a regulator or the media, stored for review.
public struct LetterView: Encodable, Sendable {
    public var id: String
    public var runId: String
    public var obligationId: String
    public var regime: String
    public var audience: String
    public var subject: String
    public var body: String
    public var renderedAt: Date
}

/// The SQL of recipients, notification runs and letters.
public enum NotificationStore {
    /// Stores `batch` (one transaction: COPY into a session-local staging table, then one
    /// INSERT … ON CONFLICT DO NOTHING on the address fingerprint) and returns the upload lines of
    /// the rows stored; the others repeat an address already listed for the breach.
    static func insert(_ batch: [SealedRecipient], breach: UUID, on client: PostgresClient) async throws -> Set<Int> {
        try await client.withTransaction { connection in
            try await connection.execute("""
                CREATE TEMP TABLE IF NOT EXISTS breach_recipients_upload (
                    id uuid, external_id text, jurisdiction text, name_sealed bytea, email_sealed bytea, key_version int,
                    email_fingerprint bytea, fingerprint_version int, upload_line bigint) ON COMMIT DELETE ROWS
                """)
            try await connection.copyFrom(
                table: "breach_recipients_upload",
                columns: ["id", "external_id", "jurisdiction", "name_sealed", "email_sealed", "key_version", "email_fingerprint",
                          "fingerprint_version", "upload_line"],
                rows: batch.lazy.map { row -> [(any PostgresEncodable)?] in
                    [row.id, row.externalID, row.jurisdiction, row.name, row.email, row.keyVersion, row.fingerprint,
                     row.fingerprintVersion, row.line]
                })
            let stored = try await connection.query("""
                INSERT INTO breach_recipients (id, breach_id, external_id, jurisdiction, name_sealed, email_sealed, key_version,
                                               email_fingerprint, fingerprint_version, upload_line)
                SELECT id, \(breach), external_id, jurisdiction, name_sealed, email_sealed, key_version, email_fingerprint,
                       fingerprint_version, upload_line
                FROM breach_recipients_upload ORDER BY upload_line
                ON CONFLICT (breach_id, email_fingerprint) DO NOTHING
                RETURNING upload_line
                """)
            return Set(try stored.map { try $0.decode(Int.self, at: 0) })
        }
    }

    /// The breach's notification progress; nil when the breach does not exist.
    public static func progress(of breach: UUID, on client: PostgresClient) async throws -> NotificationProgress? {
        let exists = try await client.query("SELECT 1 FROM breaches WHERE id = \(breach)")
        guard !exists.isEmpty else { return nil }
        let counts = try await client.query("""
            SELECT state, count(*), coalesce(sum(uncertain_resends), 0) FROM breach_recipients WHERE breach_id = \(breach) GROUP BY state
            """)
        var progress = NotificationProgress.empty
        for row in counts {
            let count = try row.decode(Int.self, at: 1)
            progress.recipients += count
            progress.uncertainResends += try row.decode(Int.self, at: 2)
            switch try row.decode(String.self, at: 0) {
            case "sent": progress.sent += count
            case "failed": progress.failed += count
            default: progress.remaining += count
            }
        }
        let runs = try await client.query("""
            SELECT id, status, requested_by, started_at, finished_at, chunks FROM breach_notification_runs
            WHERE breach_id = \(breach) ORDER BY started_at DESC LIMIT 1
            """)
        progress.run = try runs.first.map { row in
            NotificationProgress.RunView(
                id: try row.decode(UUID.self, at: 0).uuidString.lowercased(), status: try row.decode(String.self, at: 1),
                requestedBy: try row.decode(String.self, at: 2), startedAt: try row.decode(Date.self, at: 3),
                finishedAt: try row.decode(Date?.self, at: 4), chunks: try row.decode(Int.self, at: 5))
        }
        return progress
    }

    /// The letters rendered for review, oldest first.
    public static func letters(of breach: UUID, on client: PostgresClient) async throws -> [LetterView] {
        try await client.query("""
            SELECT id, run_id, obligation_id, regime, audience, subject, body, rendered_at FROM breach_letters
            WHERE breach_id = \(breach) ORDER BY rendered_at, regime
            """).map { row in
            LetterView(id: try row.decode(UUID.self, at: 0).uuidString.lowercased(), runId: try row.decode(UUID.self, at: 1).uuidString.lowercased(),
                       obligationId: try row.decode(UUID.self, at: 2).uuidString.lowercased(), regime: try row.decode(String.self, at: 3),
                       audience: try row.decode(String.self, at: 4), subject: try row.decode(String.self, at: 5),
                       body: try row.decode(String.self, at: 6), renderedAt: try row.decode(Date.self, at: 7))
        }
    }

    // MARK: - The worker's side

    /// Rows of `run` a worker that died left behind: `claimed` ones never reached the SMTP
    /// server and go back to `pending`; `sending` ones may have, and go back to `pending` with
    /// `uncertain_resends` counted. Returns how many of each.
    static func recover(run: UUID, breach: UUID, on connection: PostgresConnection) async throws -> (claimed: Int, uncertain: Int) {
        let claimed = try await connection.execute("""
            UPDATE breach_recipients SET state = 'pending', updated_at = clock_timestamp()
            WHERE breach_id = \(breach) AND state = 'claimed' AND run_id = \(run)
            """)
        let uncertain = try await connection.execute("""
            UPDATE breach_recipients SET state = 'pending', uncertain_resends = uncertain_resends + 1, updated_at = clock_timestamp()
            WHERE breach_id = \(breach) AND state = 'sending' AND run_id = \(run)
            """)
        return (claimed, uncertain)
    }

    /// Claims up to `limit` pending recipients of the breach for `run` (committed at once).
    static func claim(run: UUID, breach: UUID, limit: Int, on client: PostgresClient) async throws -> [ClaimedRecipient] {
        try await client.withTransaction { connection in
            try await connection.query("""
                UPDATE breach_recipients r SET state = 'claimed', run_id = \(run), updated_at = clock_timestamp()
                FROM (SELECT id FROM breach_recipients WHERE breach_id = \(breach) AND state = 'pending'
                      LIMIT \(limit) FOR UPDATE SKIP LOCKED) picked
                WHERE r.id = picked.id
                RETURNING r.id, r.external_id, r.jurisdiction, r.name_sealed, r.email_sealed, r.key_version, r.uncertain_resends
                """).map { row in
                ClaimedRecipient(id: try row.decode(UUID.self, at: 0), externalID: try row.decode(String.self, at: 1),
                                 jurisdiction: try row.decode(String.self, at: 2), name: try row.decode(Data.self, at: 3),
                                 email: try row.decode(Data.self, at: 4), keyVersion: try row.decode(Int.self, at: 5),
                                 uncertainResends: try row.decode(Int.self, at: 6))
            }
        }
    }

    /// Whether any recipient of the breach is still to be sent.
    static func hasPending(breach: UUID, on connection: PostgresConnection) async throws -> Bool {
        try await !connection.query("SELECT 1 FROM breach_recipients WHERE breach_id = \(breach) AND state = 'pending' LIMIT 1").isEmpty
    }
}
