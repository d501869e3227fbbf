public import Crypto
import Foundation
import MingusCore
public import MingusHTTP
import MingusLogs
public import MingusPostgres
import MingusSecurity

/// The four parts of the compliance score and their weights (percent, summing to 100).
public enum ScorePart: String, Codable, Sendable, CaseIterable {
    case pciDss = "pci_dss"
    case paymentProcessing = "payment_processing"
    case securityControls = "security_controls"
    case dataProtection = "data_protection"

    /// The part's weight in the overall score, in percent.
    public var weight: Int {
        switch self {
        case .pciDss: 40
        case .paymentProcessing: 25
        case .securityControls: 20
        case .dataProtection: 15
        }
    }

    /// A human title.
    public var title: String {
        switch self {
        case .pciDss: "PCI DSS"
        case .paymentProcessing: "Payment processing"
        case .securityControls: "Security controls"
        case .dataProtection: "Data protection"
        }
    }
}

/// What one automated check found: passed or not, a one-line summary and the evidence (counts,
/// table and column names, ids; never card data or secrets).
public struct CheckOutcome: Sendable {
    public var passed: Bool
    public var summary: String
    public var evidence: [String: JSONValue]

    public init(passed: Bool, summary: String, evidence: [String: JSONValue]) {
        self.passed = passed
        self.summary = summary
        self.evidence = evidence
    }
}

/// The limits the automated checks apply (environment variables of the security worker, which
/// runs them; defaults in parentheses):
///
/// - `MINGUS_COMPLIANCE_EVIDENCE_MAX_AGE_HOURS` (48): a result older than this no longer counts.
/// - `MINGUS_KEY_CRYPTOPERIOD_DAYS` (365): the cryptoperiod of every data key purpose.
/// - `MINGUS_COMPLIANCE_CHECKPOINT_MAX_AGE_HOURS` (26): the newest signed audit checkpoint's age.
/// - `MINGUS_COMPLIANCE_SWEEP_MAX_AGE_HOURS` (48): the newest completed retention sweep's age.
/// - `MINGUS_COMPLIANCE_API_KEY_IDLE_DAYS` (90): an API key unused this long is flagged.
/// - `MINGUS_COMPLIANCE_MAX_ADMIN_KEYS` (2): active keys holding `admin`.
/// - `MINGUS_COMPLIANCE_AUDIT_QUIET_HOURS` (24): the audit trail's newest event's age.
/// - `MINGUS_COMPLIANCE_PENDING_MAX_MINUTES` (60): a payment pending longer is stuck.
/// - `MINGUS_COMPLIANCE_SAMPLE_ROWS` (2000): rows sampled per table by the card data scans.
public struct ComplianceSettings: Sendable, Equatable {
    public var evidenceMaxAge: Duration = .seconds(48 * 3600)
    public var cryptoperiod: Duration = .seconds(365 * 86400)
    public var checkpointMaxAge: Duration = .seconds(26 * 3600)
    public var sweepMaxAge: Duration = .seconds(48 * 3600)
    public var apiKeyIdle: Duration = .seconds(90 * 86400)
    public var maxAdminKeys = 2
    public var auditQuiet: Duration = .seconds(24 * 3600)
    public var pendingMax: Duration = .seconds(3600)
    public var sampleRows = 2000

    public init() {}

    /// Reads the variables above; a value that is not a positive whole number is an error naming it.
    public init(environment: [String: String]) throws {
        func number(_ name: String, _ fallback: Int) throws -> Int {
            guard let text = environment[name], !text.isEmpty else { return fallback }
            guard let value = Int(text), value > 0 else {
                throw ComplianceConfigurationError(variable: name, message: "must be a positive whole number, not '\(text)'")
            }
            return value
        }
        evidenceMaxAge = .seconds(try number("MINGUS_COMPLIANCE_EVIDENCE_MAX_AGE_HOURS", 48) * 3600)
        cryptoperiod = .seconds(try number("MINGUS_KEY_CRYPTOPERIOD_DAYS", 365) * 86400)
        checkpointMaxAge = .seconds(try number("MINGUS_COMPLIANCE_CHECKPOINT_MAX_AGE_HOURS", 26) * 3600)
        sweepMaxAge = .seconds(try number("MINGUS_COMPLIANCE_SWEEP_MAX_AGE_HOURS", 48) * 3600)
        apiKeyIdle = .seconds(try number("MINGUS_COMPLIANCE_API_KEY_IDLE_DAYS", 90) * 86400)
        maxAdminKeys = try number("MINGUS_COMPLIANCE_MAX_ADMIN_KEYS", 2)
        auditQuiet = .seconds(try number("MINGUS_COMPLIANCE_AUDIT_QUIET_HOURS", 24) * 3600)
        pendingMax = .seconds(try number("MINGUS_COMPLIANCE_PENDING_MAX_MINUTES", 60) * 60)
        sampleRows = try number("MINGUS_COMPLIANCE_SAMPLE_ROWS", 2000)
    }
}

/// A compliance setting with a bad value.
public struct ComplianceConfigurationError: Error, CustomStringConvertible {
    public var variable: String
    public var message: String
    public var description: String { "\(variable) \(message)" }
}

/// What a check run reads with: the job's transaction, a pool for the audit verifier, the limits.
public struct CheckEnvironment: Sendable {
    public var database: PostgresConnection
    public var pool: PostgresClient
    public var settings: ComplianceSettings
    /// Public keys whose audit checkpoints are trusted (verified).
    public var auditKeys: [Curve25519.Signing.PublicKey]

    public init(database: PostgresConnection, pool: PostgresClient, settings: ComplianceSettings, auditKeys: [Curve25519.Signing.PublicKey]) {
        self.database = database
        self.pool = pool
        self.settings = settings
        self.auditKeys = auditKeys
    }
}

/// One automated check: what it tests, the score part it counts in, the requirements it
/// evidences, and how it runs.
///
/// The evidence lives in other domains' tables; each check reads it with the read-only queries
/// below (one statement or two each, documented on the check), never writing there.
public struct ComplianceCheck: Sendable {
    public var name: String
    public var title: String
    /// How the check tests the control, in a sentence (shown in the security controls).
    public var test: String
    public var part: ScorePart
    let run: @Sendable (CheckEnvironment, ScanCache) async throws -> CheckOutcome

    /// The registry's requirements this check evidences.
    public var requirements: [String] { PCIRequirements.all.filter { $0.checks.contains(name) }.map(\.id) }
}

/// The sampled text values of every table, read once per run and shared by the card data checks
/// (which run one after another).
actor ScanCache {
    struct Sample: Sendable {
        var tables: Int
        var rows: Int
        /// (table, column, value)
        var values: [(table: String, column: String, value: String)]
    }

    private var cached: Sample?

    func sample(_ environment: CheckEnvironment) async throws -> Sample {
        if let cached { return cached }
        let sample = try await ComplianceChecks.sampleTextColumns(environment)
        cached = sample
        return sample
    }
}

/// The automated checks, in the order they run.
public enum ComplianceChecks {
    /// Every check, by name.
    public static let all: [ComplianceCheck] = [
        auditChainIntact, auditCheckpointRecent, auditActivity, panNotStoredInClear, cvvNotStored, panFingerprintKeyed,
        keyCryptoperiod, retentionSweeps, apiKeysInactive, apiKeyAuthentication, rolesLeastPrivilege, breachObligations, paymentsSettled,
    ]

    /// The check named `name`, nil when there is none.
    public static func check(_ name: String) -> ComplianceCheck? { all.first { $0.name == name } }

    // MARK: - Audit trail (10.3, 10.5.1, 10.2.1.x)

    /// Recomputes every audit stream's hash chain and the signed checkpoints with
    /// ``AuditVerifier`` (the same code as `mingusctl audit verify`).
    static let auditChainIntact = ComplianceCheck(
        name: "audit_chain_intact", title: "Audit trail hash chains verify",
        test: "Recomputes every audit stream's SHA-256 hash chain, its head and every trusted Ed25519-signed checkpoint",
        part: .securityControls
    ) { environment, _ in
        let verification = try await AuditVerifier(database: environment.pool, publicKeys: environment.auditKeys).verify()
        var evidence: [String: JSONValue] = [
            "streams": .integer(Int64(verification.streams)), "events": .integer(Int64(verification.events)),
            "trusted_checkpoints": .integer(Int64(verification.checkpoints)),
            "untrusted_checkpoints": .integer(Int64(verification.untrustedCheckpoints)),
            "rebased_streams": .integer(Int64(verification.rebasedStreams)),
        ]
        if let broken = verification.firstBreak {
            evidence["first_break"] = .object(["stream": .string(broken.stream), "seq": .integer(broken.seq), "reason": .string(broken.reason)])
            return CheckOutcome(passed: false, summary: "the audit trail does not verify: \(broken)", evidence: evidence)
        }
        return CheckOutcome(passed: true, summary: "\(verification.events) events in \(verification.streams) streams verify", evidence: evidence)
    }

    /// Reads `audit_checkpoints` (newest `created_at`, count).
    static let auditCheckpointRecent = ComplianceCheck(
        name: "audit_checkpoint_recent", title: "A recent signed audit checkpoint exists",
        test: "The newest Ed25519-signed checkpoint of the audit stream heads is younger than the configured age",
        part: .securityControls
    ) { environment, _ in
        let row = try await environment.database.query("""
            SELECT max(created_at), count(*), extract(epoch FROM now() - max(created_at))::float8 FROM audit_checkpoints
            """)[0]
        let newest = try row.decode(Date?.self, at: 0)
        let count = try row.decode(Int64.self, at: 1)
        let limit = environment.settings.checkpointMaxAge.inSeconds
        var evidence: [String: JSONValue] = ["checkpoints": .integer(count), "max_age_seconds": .number(limit)]
        guard let newest, let age = try row.decode(Double?.self, at: 2) else {
            return CheckOutcome(passed: false, summary: "no audit checkpoint was ever signed", evidence: evidence)
        }
        evidence["newest_at"] = .string(iso(newest))
        evidence["age_seconds"] = .number(age.rounded())
        return age <= limit
            ? CheckOutcome(passed: true, summary: "newest checkpoint \(Int(age / 60)) minutes old", evidence: evidence)
            : CheckOutcome(passed: false, summary: "newest checkpoint \(Int(age / 3600)) hours old (limit \(Int(limit / 3600)) hours)", evidence: evidence)
    }

    /// Reads `audit_events` through its indexes: the newest event, and the events of operators
    /// (`mingusctl`, actor `operator:…`) and of credential changes (`apikey.*`, `keys.*`).
    static let auditActivity = ComplianceCheck(
        name: "audit_activity", title: "Audit logging is active",
        test: "The audit trail received events recently, and records operators' administrative actions (mingusctl, actor operator:…)",
        part: .securityControls
    ) { environment, _ in
        let row = try await environment.database.query("""
            SELECT (SELECT max(occurred_at) FROM audit_events),
                   (SELECT count(*) FROM audit_events WHERE actor >= 'operator:' AND actor < 'operator;'),
                   (SELECT count(*) FROM audit_events WHERE action LIKE 'apikey.%' OR action LIKE 'keys.%')
            """)[0]
        let newest = try row.decode(Date?.self, at: 0)
        let operatorEvents = try row.decode(Int64.self, at: 1)
        var evidence: [String: JSONValue] = [
            "operator_events": .integer(operatorEvents),
            "credential_events": .integer(try row.decode(Int64.self, at: 2)),
            "max_quiet_seconds": .number(environment.settings.auditQuiet.inSeconds),
        ]
        guard let newest else { return CheckOutcome(passed: false, summary: "the audit trail is empty", evidence: evidence) }
        evidence["newest_event_at"] = .string(iso(newest))
        let quiet = Date().timeIntervalSince(newest)
        guard operatorEvents > 0 else {
            return CheckOutcome(passed: false, summary: "no administrative action of an operator (mingusctl) was ever recorded", evidence: evidence)
        }
        return quiet <= environment.settings.auditQuiet.inSeconds
            ? CheckOutcome(passed: true, summary: "audit events are being recorded (newest \(Int(quiet)) s ago)", evidence: evidence)
            : CheckOutcome(passed: false, summary: "no audit event for \(Int(quiet / 3600)) hours", evidence: evidence)
    }

    // MARK: - Card data (3.3.1, 3.4.1, 3.5.1, 3.5.1.1)

    /// Reads the catalog for the text, JSON and text-array columns of every table in the current
    /// schema (a partitioned table through its parent, its size the sum of its partitions'), then
    /// a sample of each table's rows (all rows of a small table, `TABLESAMPLE SYSTEM` of a large
    /// one, at most `sampleRows`), values cast to text.
    static func sampleTextColumns(_ environment: CheckEnvironment) async throws -> ScanCache.Sample {
        let db = environment.database
        let tables = try await db.query("""
            SELECT quote_ident(c.relname), array_agg(quote_ident(a.attname)::text ORDER BY a.attnum),
                   greatest(max(c.reltuples), (SELECT coalesce(sum(p.reltuples), 0) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                                               WHERE i.inhparent = c.oid))::float8
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
              AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'json'::regtype, 'jsonb'::regtype,
                                 'text[]'::regtype, 'varchar[]'::regtype)
            GROUP BY c.oid, c.relname ORDER BY c.relname
            """)
        let limit = environment.settings.sampleRows
        var sample = ScanCache.Sample(tables: 0, rows: 0, values: [])
        for table in tables {
            let name = try table.decode(String.self, at: 0)
            let columns = try table.decode([String].self, at: 1)
            let estimate = try table.decode(Double.self, at: 2)
            // Identifiers come quoted from the catalog (quote_ident); nothing else is interpolated.
            let select = columns.map { "coalesce(\($0)::text, '')" }.joined(separator: ", ")
            var sql = "SELECT ARRAY[\(select)] FROM \(name)"
            if estimate > Double(limit) * 4 {
                let percent = min(100, max(0.01, Double(limit) * 200 / estimate))
                sql += " TABLESAMPLE SYSTEM (\(String(format: "%.4f", percent)))"
            }
            sql += " LIMIT \(limit)"
            let rows = try await db.query(PostgresQuery(unsafeSQL: sql))
            sample.tables += 1
            sample.rows += rows.count
            for row in rows {
                let values = try row.decode([String].self, at: 0)
                for (column, value) in zip(columns, values) where !value.isEmpty {
                    sample.values.append((name, column, value))
                }
            }
        }
        return sample
    }

    static func findings(_ hits: [String: Int]) -> JSONValue {
        .array(hits.sorted { $0.key < $1.key }.map { place, rows in
            let parts = place.split(separator: ".", maxSplits: 1).map(String.init)
            return .object(["table": .string(parts[0]), "column": .string(parts.count > 1 ? parts[1] : ""), "rows": .integer(Int64(rows))])
        })
    }

    /// Scans the sampled text values with the logs worker's card number detector (12–19 digits,
    /// Luhn-valid, major industry identifier 2–6), and reads the logs worker's card redactions of
    /// the last 24 hours (`log_anomalies` of kind `card_number`) as evidence.
    static let panNotStoredInClear = ComplianceCheck(
        name: "pan_not_stored_in_clear", title: "No card number stored in clear",
        test: "Scans sampled rows of every text, JSON and text-array column (log lines included) for Luhn-valid card numbers",
        part: .dataProtection
    ) { environment, cache in
        let sample = try await cache.sample(environment)
        let redactor = LogRedactor()
        var hits: [String: Int] = [:]
        for item in sample.values where item.value.utf8.count >= 12 && redactor.redact(item.value).found.card > 0 {
            hits["\(item.table).\(item.column)", default: 0] += 1
        }
        let redacted = try await environment.database.query("""
            SELECT coalesce(sum(lines), 0)::bigint FROM log_anomalies WHERE kind = 'card_number' AND detected_at > now() - interval '24 hours'
            """)[0].decode(Int64.self, at: 0)
        let evidence: [String: JSONValue] = [
            "tables_scanned": .integer(Int64(sample.tables)), "rows_scanned": .integer(Int64(sample.rows)),
            "findings": findings(hits), "log_card_redactions_24h": .integer(redacted),
        ]
        if hits.isEmpty {
            return CheckOutcome(passed: true, summary: "no card number in \(sample.rows) sampled rows of \(sample.tables) tables"
                                + (redacted > 0 ? "; the logs worker redacted \(redacted) log lines with card numbers at intake" : ""), evidence: evidence)
        }
        return CheckOutcome(passed: false, summary: "card numbers in clear in \(hits.keys.sorted().joined(separator: ", "))", evidence: evidence)
    }

    static let cvvName = try! NSRegularExpression(pattern: "(^|_)(cvv2?|cvc2?|cid|csc|card_verification(_code|_value)?|security_code)($|_)")
    static let cvvValue = try! NSRegularExpression(
        pattern: "(?i)\"?\\b(cvv2?|cvc2?|csc|card_verification_(code|value)|security_code)\"?\\s*[:=]\\s*\"?[0-9]{3,4}\\b")

    static func matches(_ expression: NSRegularExpression, _ text: String) -> Bool {
        expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Reads the catalog for columns named like a card verification code, and scans the sampled
    /// text values for one written as a field (`"cvv": "123"`, `cvc=123`).
    static let cvvNotStored = ComplianceCheck(
        name: "cvv_not_stored", title: "No card verification code stored",
        test: "No column is named like a card verification code, and no sampled value holds one as a field",
        part: .paymentProcessing
    ) { environment, cache in
        let columns = try await environment.database.query("""
            SELECT c.relname::text, a.attname::text FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
            """).compactMap { row -> String? in
            let table = try row.decode(String.self, at: 0), column = try row.decode(String.self, at: 1)
            return matches(cvvName, column.lowercased()) ? "\(table).\(column)" : nil
        }
        let sample = try await cache.sample(environment)
        var hits: [String: Int] = [:]
        for item in sample.values where matches(cvvValue, item.value) {
            hits["\(item.table).\(item.column)", default: 0] += 1
        }
        let evidence: [String: JSONValue] = [
            "columns_named_like_cvv": .array(columns.sorted().map { .string($0) }), "values_found": findings(hits),
            "rows_scanned": .integer(Int64(sample.rows)),
        ]
        if columns.isEmpty && hits.isEmpty {
            return CheckOutcome(passed: true, summary: "no card verification code column or value", evidence: evidence)
        }
        return CheckOutcome(passed: false, summary: "card verification codes may be stored: "
                            + (columns + hits.keys.sorted()).joined(separator: ", "), evidence: evidence)
    }

    /// Reads `mingus_data_keys` (the current `fingerprint` key) and `card_tokens` (fingerprints
    /// that are not 32-byte HMAC-SHA256 values, or made with a version that is not a stored key).
    static let panFingerprintKeyed = ComplianceCheck(
        name: "pan_fingerprint_keyed", title: "Card fingerprints are keyed hashes",
        test: "A current fingerprint data key exists and every stored card fingerprint is a 32-byte HMAC-SHA256 under a stored key version",
        part: .paymentProcessing
    ) { environment, _ in
        let row = try await environment.database.query("""
            SELECT (SELECT max(version) FROM mingus_data_keys WHERE purpose = 'fingerprint' AND retired_at IS NULL),
                   (SELECT count(*) FROM card_tokens t WHERE octet_length(t.fingerprint) <> 32
                        OR NOT EXISTS (SELECT 1 FROM mingus_data_keys k WHERE k.purpose = 'fingerprint' AND k.version = t.fingerprint_version)),
                   (SELECT count(*) FROM card_tokens)
            """)[0]
        let version = try row.decode(Int?.self, at: 0)
        let bad = try row.decode(Int64.self, at: 1)
        var evidence: [String: JSONValue] = ["tokens": .integer(try row.decode(Int64.self, at: 2)), "unkeyed_fingerprints": .integer(bad)]
        if let version { evidence["fingerprint_key_version"] = .integer(Int64(version)) }
        guard version != nil else { return CheckOutcome(passed: false, summary: "no current fingerprint data key", evidence: evidence) }
        return bad == 0
            ? CheckOutcome(passed: true, summary: "card fingerprints are HMAC-SHA256 under fingerprint key v\(version!)", evidence: evidence)
            : CheckOutcome(passed: false, summary: "\(bad) card fingerprints are not keyed hashes under a stored key", evidence: evidence)
    }

    // MARK: - Keys (3.6.1, 3.7.4)

    /// Reads `mingus_data_keys`: the encrypting (newest unretired) version of each purpose and its age.
    static let keyCryptoperiod = ComplianceCheck(
        name: "key_cryptoperiod", title: "Data keys are within their cryptoperiod",
        test: "The encrypting version of every data key purpose is younger than the cryptoperiod",
        part: .securityControls
    ) { environment, _ in
        let rows = try await environment.database.query("""
            SELECT DISTINCT ON (purpose) purpose, version, created_at, extract(epoch FROM now() - created_at)::float8
            FROM mingus_data_keys WHERE retired_at IS NULL ORDER BY purpose, version DESC
            """)
        let limit = environment.settings.cryptoperiod.inSeconds
        var keys: [JSONValue] = []
        var expired: [String] = []
        for row in rows {
            let purpose = try row.decode(String.self, at: 0), version = try row.decode(Int.self, at: 1)
            let age = try row.decode(Double.self, at: 3)
            keys.append(.object(["purpose": .string(purpose), "version": .integer(Int64(version)),
                                 "created_at": .string(iso(try row.decode(Date.self, at: 2))), "age_days": .integer(Int64(age / 86400))]))
            if age > limit { expired.append("\(purpose) v\(version)") }
        }
        let evidence: [String: JSONValue] = ["keys": .array(keys), "cryptoperiod_days": .integer(Int64(limit / 86400))]
        if rows.isEmpty { return CheckOutcome(passed: false, summary: "no data keys exist", evidence: evidence) }
        return expired.isEmpty
            ? CheckOutcome(passed: true, summary: "\(rows.count) data keys within their \(Int(limit / 86400))-day cryptoperiod", evidence: evidence)
            : CheckOutcome(passed: false, summary: "past their cryptoperiod: \(expired.joined(separator: ", "))", evidence: evidence)
    }

    // MARK: - Retention (3.2.1)

    /// Reads `retention_sweeps` and `retention_sweep_results`: the newest completed real sweep,
    /// and per data type whether everything eligible and not held was archived or deleted.
    static let retentionSweeps = ComplianceCheck(
        name: "retention_sweeps", title: "Retention sweeps run and leave nothing past its date",
        test: "A real retention sweep completed recently, finished every data type, and left nothing eligible that was not held",
        part: .dataProtection
    ) { environment, _ in
        let db = environment.database
        guard let sweep = try await db.query("""
            SELECT id, finished_at, extract(epoch FROM now() - finished_at)::float8 FROM retention_sweeps
            WHERE NOT dry_run AND status = 'completed' AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1
            """).first else {
            return CheckOutcome(passed: false, summary: "no retention sweep has completed", evidence: [:])
        }
        let id = try sweep.decode(UUID.self, at: 0)
        let age = try sweep.decode(Double.self, at: 2)
        let failed = try await db.query("""
            SELECT count(*) FROM retention_sweeps WHERE status = 'failed' AND created_at > now() - interval '7 days'
            """)[0].decode(Int64.self, at: 0)
        var left: [String] = []
        var types: [JSONValue] = []
        for row in try await db.query("""
            SELECT data_type, eligible, held, archived, deleted, finished FROM retention_sweep_results WHERE sweep_id = \(id) ORDER BY data_type
            """) {
            let type = try row.decode(String.self, at: 0)
            let eligible = try row.decode(Int64.self, at: 1), held = try row.decode(Int64.self, at: 2)
            let archived = try row.decode(Int64.self, at: 3), deleted = try row.decode(Int64.self, at: 4)
            let finished = try row.decode(Bool.self, at: 5)
            let remaining = max(0, eligible - held - max(archived, deleted))
            if remaining > 0 || !finished { left.append(type) }
            types.append(.object(["data_type": .string(type), "eligible": .integer(eligible), "held": .integer(held),
                                  "archived": .integer(archived), "deleted": .integer(deleted), "finished": .bool(finished),
                                  "left_past_date": .integer(remaining)]))
        }
        let limit = environment.settings.sweepMaxAge.inSeconds
        let evidence: [String: JSONValue] = [
            "sweep_id": .string(id.uuidString.lowercased()), "finished_at": .string(iso(try sweep.decode(Date.self, at: 1))),
            "age_seconds": .number(age.rounded()), "max_age_seconds": .number(limit), "data_types": .array(types),
            "failed_sweeps_7d": .integer(failed),
        ]
        if age > limit {
            return CheckOutcome(passed: false, summary: "the newest completed sweep is \(Int(age / 3600)) hours old", evidence: evidence)
        }
        if !left.isEmpty {
            return CheckOutcome(passed: false, summary: "data past its date and not held remains: \(left.joined(separator: ", "))", evidence: evidence)
        }
        return CheckOutcome(passed: true, summary: "sweep \(Int(age / 60)) minutes ago left nothing past its date unheld", evidence: evidence)
    }

    // MARK: - API keys (7.2, 8.2.6, 8.3)

    /// Reads `mingus_api_keys`: active keys whose last use (or creation) is older than the idle limit.
    static let apiKeysInactive = ComplianceCheck(
        name: "api_keys_inactive", title: "No idle API keys",
        test: "Every active API key was used (or created) within the idle limit",
        part: .securityControls
    ) { environment, _ in
        let idleDays = Int(environment.settings.apiKeyIdle.inSeconds / 86400)
        let rows = try await environment.database.query("""
            SELECT id, name, coalesce(last_used_at, created_at) FROM mingus_api_keys
            WHERE revoked_at IS NULL AND coalesce(last_used_at, created_at) < now() - make_interval(days => \(idleDays)::int)
            ORDER BY 3 LIMIT 100
            """)
        let active = try await environment.database.query("SELECT count(*) FROM mingus_api_keys WHERE revoked_at IS NULL")[0].decode(Int64.self, at: 0)
        let idle: [JSONValue] = try rows.map {
            .object(["id": .string(try $0.decode(String.self, at: 0)), "name": .string(try $0.decode(String.self, at: 1)),
                     "last_used_at": .string(iso(try $0.decode(Date.self, at: 2)))])
        }
        let evidence: [String: JSONValue] = ["active_keys": .integer(active), "idle_keys": .array(idle), "idle_days": .integer(Int64(idleDays))]
        return idle.isEmpty
            ? CheckOutcome(passed: true, summary: "all \(active) active API keys used within \(idleDays) days", evidence: evidence)
            : CheckOutcome(passed: false, summary: "\(idle.count) active API keys unused for \(idleDays) days", evidence: evidence)
    }

    /// Reads `mingus_api_keys`: every active key's secret is stored as a 32-byte SHA-256 hash.
    static let apiKeyAuthentication = ComplianceCheck(
        name: "api_key_authentication", title: "API keys authenticate with hashed secrets",
        test: "Every active API key is stored only as a 32-byte SHA-256 hash of its 256-bit secret",
        part: .securityControls
    ) { environment, _ in
        let row = try await environment.database.query("""
            SELECT count(*), count(*) FILTER (WHERE octet_length(secret_hash) <> 32) FROM mingus_api_keys WHERE revoked_at IS NULL
            """)[0]
        let active = try row.decode(Int64.self, at: 0), bad = try row.decode(Int64.self, at: 1)
        let evidence: [String: JSONValue] = ["active_keys": .integer(active), "keys_without_hash": .integer(bad)]
        return bad == 0
            ? CheckOutcome(passed: true, summary: "\(active) active API keys stored as SHA-256 hashes", evidence: evidence)
            : CheckOutcome(passed: false, summary: "\(bad) active API keys are not stored as a SHA-256 hash", evidence: evidence)
    }

    /// Reads `mingus_api_keys`: roles held by active keys, keys holding none, keys holding `admin`.
    static let rolesLeastPrivilege = ComplianceCheck(
        name: "roles_least_privilege", title: "API keys hold least-privilege roles",
        test: "Every active API key holds at least one role, and no more than the allowed number hold admin",
        part: .securityControls
    ) { environment, _ in
        let db = environment.database
        var roles: [String: JSONValue] = [:]
        for row in try await db.query("""
            SELECT role, count(*) FROM mingus_api_keys, unnest(roles) AS role WHERE revoked_at IS NULL GROUP BY role ORDER BY role
            """) {
            roles[try row.decode(String.self, at: 0)] = .integer(try row.decode(Int64.self, at: 1))
        }
        let row = try await db.query("""
            SELECT count(*) FILTER (WHERE cardinality(roles) = 0), count(*) FILTER (WHERE 'admin' = ANY (roles))
            FROM mingus_api_keys WHERE revoked_at IS NULL
            """)[0]
        let none = try row.decode(Int64.self, at: 0), admins = try row.decode(Int64.self, at: 1)
        let max = environment.settings.maxAdminKeys
        let evidence: [String: JSONValue] = ["keys_by_role": .object(roles), "keys_without_roles": .integer(none),
                                             "admin_keys": .integer(admins), "max_admin_keys": .integer(Int64(max))]
        if none > 0 { return CheckOutcome(passed: false, summary: "\(none) active API keys hold no role", evidence: evidence) }
        if admins > max { return CheckOutcome(passed: false, summary: "\(admins) active API keys hold admin (at most \(max))", evidence: evidence) }
        return CheckOutcome(passed: true, summary: "\(roles.count) roles in use; \(admins) admin keys", evidence: evidence)
    }

    // MARK: - Breach response (12.10.1)

    /// Reads `breach_obligations`: open obligations past their deadline (or target).
    static let breachObligations = ComplianceCheck(
        name: "breach_obligations", title: "No breach notification obligation overdue",
        test: "No open breach notification obligation is past its deadline or target",
        part: .dataProtection
    ) { environment, _ in
        let db = environment.database
        let overdue = try await db.query("""
            SELECT id, breach_id, regime, coalesce(deadline, target) FROM breach_obligations
            WHERE status = 'open' AND coalesce(deadline, target) < now() ORDER BY 4 LIMIT 100
            """)
        let open = try await db.query("SELECT count(*) FROM breach_obligations WHERE status = 'open'")[0].decode(Int64.self, at: 0)
        let list: [JSONValue] = try overdue.map {
            .object(["id": .string(try $0.decode(UUID.self, at: 0).uuidString.lowercased()),
                     "breach_id": .string(try $0.decode(UUID.self, at: 1).uuidString.lowercased()),
                     "regime": .string(try $0.decode(String.self, at: 2)), "due_at": .string(iso(try $0.decode(Date.self, at: 3)))])
        }
        let evidence: [String: JSONValue] = ["open_obligations": .integer(open), "overdue": .array(list)]
        return list.isEmpty
            ? CheckOutcome(passed: true, summary: "\(open) open obligations, none overdue", evidence: evidence)
            : CheckOutcome(passed: false, summary: "\(list.count) breach obligations overdue", evidence: evidence)
    }

    // MARK: - Payment processing

    /// Reads `payment_data`: payments still pending past the limit.
    static let paymentsSettled = ComplianceCheck(
        name: "payments_settled", title: "Payments are decided without delay",
        test: "No payment stays pending longer than the limit",
        part: .paymentProcessing
    ) { environment, _ in
        let minutes = Int(environment.settings.pendingMax.inSeconds / 60)
        let row = try await environment.database.query("""
            SELECT count(*), min(created_at) FROM payment_data
            WHERE status = 'pending' AND created_at < now() - make_interval(mins => \(minutes)::int)
            """)[0]
        let stuck = try row.decode(Int64.self, at: 0)
        var evidence: [String: JSONValue] = ["stuck_payments": .integer(stuck), "pending_limit_minutes": .integer(Int64(minutes))]
        if let oldest = try row.decode(Date?.self, at: 1) { evidence["oldest_stuck_at"] = .string(iso(oldest)) }
        return stuck == 0
            ? CheckOutcome(passed: true, summary: "no payment pending longer than \(minutes) minutes", evidence: evidence)
            : CheckOutcome(passed: false, summary: "\(stuck) payments pending longer than \(minutes) minutes", evidence: evidence)
    }
}

/// RFC 3339 UTC, as the API writes times.
func iso(_ date: Date) -> String {
    date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}
