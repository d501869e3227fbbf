public import MingusSecurity

/// How much harm disclosing a column's data could do, from least to most. The README defines each
/// level; every column of every table has one (a test compares the declarations with the schema).
public enum DataClassification: String, Codable, Sendable, CaseIterable, Comparable {
    /// Meant to be published (cookie category titles, published policy texts).
    case `public`
    /// Operational data about the system: ids, states, timestamps, counters, configuration.
    case `internal`
    /// Data about people or the business whose disclosure harms someone: user and actor ids,
    /// amounts, addresses of clients, free text people typed.
    case confidential
    /// Regulated data: tokens and masked card numbers, fingerprints, consent and request
    /// records, evidence of breaches.
    case restricted
    /// Cardholder data, health data, what a data subject asked in their own words, and secrets
    /// (wrapped keys, key hashes); stored only encrypted or hashed.
    case highlyRestricted = "highly_restricted"

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

/// How a column's content is protected at rest beyond the database's access control.
public enum ColumnProtection: Sendable, Equatable {
    /// Stored as written.
    case none
    /// AES-256-GCM under a versioned data key of `purpose` (``Keyring``).
    case encrypted(KeyPurpose)
    /// AES-256-GCM under the data subject's own key (``SubjectKeys``): erased with the key.
    case subjectKey
    /// AES-256-GCM under the key-encrypting key (data and subject keys themselves).
    case wrapped
    /// A keyed hash (HMAC-SHA256 under a data key of `purpose`): finds equal values, reveals none.
    case keyedHash(KeyPurpose)
    /// A one-way hash of a secret (API key secrets, request hashes).
    case hashed
    /// Only a masked form is stored (the last four digits of a card number).
    case masked
    /// A random token stands for the value, which lives encrypted elsewhere.
    case tokenized
    /// Card numbers and secrets are replaced before storing (the logs' redaction).
    case redacted

    /// The name the inventory shows.
    public var name: String {
        switch self {
        case .none: "none"
        case .encrypted: "encrypted"
        case .subjectKey: "subject_key"
        case .wrapped: "wrapped"
        case .keyedHash: "keyed_hash"
        case .hashed: "hashed"
        case .masked: "masked"
        case .tokenized: "tokenized"
        case .redacted: "redacted"
        }
    }

    /// The data key purpose behind it, if any.
    public var keyPurpose: KeyPurpose? {
        switch self {
        case .encrypted(let purpose), .keyedHash(let purpose): purpose
        default: nil
        }
    }

    /// Whether the stored value alone does not reveal the data.
    public var isProtected: Bool { self != .none }
}

/// What kind of data a table holds, for the inventory's readers.
public enum DataCategory: String, Codable, Sendable {
    /// Card and payment data (PCI DSS).
    case cardholder
    /// Financial records and amounts (SOX, GLBA).
    case financial
    /// Data about identifiable people (GDPR).
    case personal
    /// Health information (HIPAA).
    case health
    /// Security events, incidents and audit evidence.
    case security
    /// The system's own bookkeeping.
    case operational
}

/// The lawful basis for processing personal data (GDPR Art. 6(1)); `nil` where a table holds none.
public enum LawfulBasis: String, Codable, Sendable {
    case consent
    case contract
    case legalObligation = "legal_obligation"
    case vitalInterests = "vital_interests"
    case publicTask = "public_task"
    case legitimateInterests = "legitimate_interests"
}

/// How long a table's rows are kept.
public enum DataRetention: Sendable, Equatable {
    /// Retention policies of the retention worker, by data type (`payment`); their current
    /// periods and actions are read from the policies.
    case policies([String])
    /// A rule stated in words (`kept with the breach it belongs to`).
    case rule(String)
    /// Nothing deletes the rows yet: the inventory reports the table as growing without bound.
    case unbounded(String)
}

/// One column of the inventory.
public struct DataColumn: Sendable, Equatable {
    public var name: String
    public var classification: DataClassification
    public var protection: ColumnProtection

    public init(_ name: String, _ classification: DataClassification, protection: ColumnProtection = .none) {
        self.name = name
        self.classification = classification
        self.protection = protection
    }
}

/// One table as a domain declares it: what it holds, why, for how long, and every column's
/// classification and protection.
public struct DataTable: Sendable {
    public var name: String
    /// What the rows are, in a few words.
    public var summary: String
    public var categories: [DataCategory]
    public var lawfulBasis: LawfulBasis?
    public var retention: DataRetention
    public var columns: [DataColumn]

    public init(_ name: String, _ summary: String, categories: [DataCategory], lawfulBasis: LawfulBasis? = nil,
                retention: DataRetention, columns: [DataColumn] = []) {
        self.name = name
        self.summary = summary
        self.categories = categories
        self.lawfulBasis = lawfulBasis
        self.retention = retention
        self.columns = columns
    }

    /// Adds unprotected columns, named in one space-separated list, at one classification.
    public func columns(_ classification: DataClassification, _ names: String) -> DataTable {
        var table = self
        table.columns += names.split(separator: " ").map { DataColumn(String($0), classification) }
        return table
    }

    /// Adds one column with its protection.
    public func column(_ name: String, _ classification: DataClassification, _ protection: ColumnProtection) -> DataTable {
        var table = self
        table.columns.append(DataColumn(name, classification, protection: protection))
        return table
    }

    /// The most sensitive classification among its columns.
    public var classification: DataClassification { columns.map(\.classification).max() ?? .internal }
}

/// The declared inventory checked against the schema it describes.
public enum DataInventory {
    /// What differs between `tables` and the `schema` (table → column names): tables and columns
    /// nobody classified, declarations of tables or columns that do not exist, anything declared
    /// twice, and `highly_restricted` columns stored as written. Empty when they agree.
    public static func problems(_ tables: [DataTable], schema: [String: Set<String>]) -> [String] {
        var problems: [String] = []
        var declared: [String: DataTable] = [:]
        for table in tables {
            if declared[table.name] != nil { problems.append("\(table.name): declared twice") }
            declared[table.name] = table
            guard let existing = schema[table.name] else {
                problems.append("\(table.name): declared but no such table")
                continue
            }
            var seen: Set<String> = []
            for column in table.columns {
                if !seen.insert(column.name).inserted { problems.append("\(table.name).\(column.name): declared twice") }
                if !existing.contains(column.name) { problems.append("\(table.name).\(column.name): declared but no such column") }
                if column.classification == .highlyRestricted && !column.protection.isProtected {
                    problems.append("\(table.name).\(column.name): highly_restricted but stored as written")
                }
            }
            for column in existing.subtracting(seen).sorted() {
                problems.append("\(table.name).\(column): not classified")
            }
        }
        for name in Set(schema.keys).subtracting(declared.keys).sorted() {
            problems.append("\(name): table not in the inventory (\(schema[name]!.count) columns unclassified)")
        }
        return problems
    }
}

extension DataTable {
    /// The platform's tables: the audit trail, keys, API keys, and the runtime's inbox, outbox and
    /// schedules.
    public static let platform: [DataTable] = [
        DataTable("audit_events", "The tamper-evident audit trail: who did what to which resource, from where",
                  categories: [.security, .personal], lawfulBasis: .legalObligation, retention: .policies(["audit_event"]))
            .columns(.internal, "stream seq occurred_at action outcome prev_hash hash")
            .columns(.confidential, "actor resource origin details"),
        DataTable("audit_streams", "Each audit stream's head", categories: [.security], retention: .rule("one row per stream"))
            .columns(.internal, "stream head_seq head_hash"),
        DataTable("audit_stream_bases", "Where each stream starts after retention cut it", categories: [.security],
                  retention: .rule("one row per stream"))
            .columns(.internal, "stream base_seq base_hash checkpoint_id moved_at"),
        DataTable("audit_checkpoints", "Signed checkpoints of every stream's head", categories: [.security],
                  retention: .unbounded("checkpoints are kept"))
            .columns(.internal, "id created_at heads key_id signature"),
        DataTable("mingus_api_keys", "API keys: name, roles, and a hash of the secret", categories: [.security],
                  retention: .unbounded("revoked keys are kept as evidence"))
            .columns(.internal, "id name roles created_at revoked_at last_used_at")
            .column("secret_hash", .highlyRestricted, .hashed),
        DataTable("mingus_data_keys", "Data keys per purpose and version, wrapped by the key-encrypting key",
                  categories: [.security], retention: .rule("retired versions are kept until nothing is sealed under them"))
            .columns(.internal, "purpose version kek_id created_at retired_at")
            .column("wrapped", .highlyRestricted, .wrapped),
        DataTable("mingus_subject_keys", "Each data subject's own key, wrapped; destroyed to crypto-erase",
                  categories: [.security, .personal], lawfulBasis: .legalObligation, retention: .rule("the key is destroyed on erasure; the row is kept as proof"))
            .columns(.internal, "kek_id created_at erased_at")
            .columns(.confidential, "subject_id erased_by erase_reason")
            .column("wrapped", .highlyRestricted, .wrapped),
        DataTable("gateway_idempotency_keys", "Answers to requests sent with an Idempotency-Key", categories: [.operational],
                  retention: .policies(["idempotency_key"]))
            .columns(.internal, "api_key_id idempotency_key resource_id response_status locked_until created_at expires_at")
            .column("request_hash", .internal, .hashed)
            .columns(.confidential, "response_body"),
        DataTable("mingus_inbox", "Ids of messages already applied (effectively-once delivery)", categories: [.operational],
                  retention: .unbounded("message ids are not pruned yet"))
            .columns(.internal, "message_id queue type processed_at"),
        DataTable("mingus_outbox", "Messages waiting to be published", categories: [.operational],
                  retention: .rule("deleted once the broker confirms them"))
            .columns(.internal, "id message_id exchange routing_key type trace_id created_at")
            .columns(.confidential, "body"),
        DataTable("mingus_scheduled_jobs", "Jobs due later (deadlines, reminders)", categories: [.operational],
                  retention: .unbounded("fired jobs are kept"))
            .columns(.internal, "id message_id run_at routing_key type created_at fired_at")
            .columns(.confidential, "body"),
        DataTable("mingus_periodic_schedules", "Periodic jobs and when they next run", categories: [.operational],
                  retention: .rule("configuration"))
            .columns(.internal, "name cron routing_key type body next_run_at last_run_at enabled"),
        DataTable("mingus_processes", "Running processes and their last heartbeat", categories: [.operational],
                  retention: .unbounded("stopped processes are kept"))
            .columns(.internal, "instance kind host pid started_at last_seen_at ready problems stopped_at"),
        DataTable("mingus_schema_migrations", "Migrations applied", categories: [.operational], retention: .rule("one row per migration"))
            .columns(.internal, "version name checksum applied_at"),
    ]
}
