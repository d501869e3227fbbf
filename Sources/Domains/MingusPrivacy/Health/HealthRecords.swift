public import Foundation
import MingusCore
import MingusHTTP
import MingusRuntime
public import MingusPostgres
public import MingusSecurity

extension KeyPurpose {
    /// Pseudonym tokens of de-identified health data (deterministic AES-256-GCM).
    public static let healthPseudonym = KeyPurpose("health-pseudonym")
}

extension Role {
    /// Records health data, relationships and disclosures.
    public static let hipaaWrite = Role("hipaa:write")
    /// Reads health records (fields per the caller's access profile), asks for break-glass access,
    /// de-identifies.
    public static let hipaaRead = Role("hipaa:read")
    /// Access profile: amounts, codes, dates and providers of health records, not notes.
    public static let hipaaBilling = Role("hipaa:billing")
    /// Access profile: every field of health records.
    public static let hipaaClinical = Role("hipaa:clinical")
    /// Reads the accounting of disclosures, violations and the dashboard; reviews break-glass use.
    public static let hipaaAudit = Role("hipaa:audit")
}

/// The fields of a health record, sealed together under the subject's key.
public struct HealthFields: Codable, Sendable, Equatable {
    public var serviceDate: String?
    public var amountMinor: Int64?
    public var currency: String?
    public var codes: [String]?
    public var provider: String?
    public var notes: String?
    public var measurements: [String: Double]?

    public init(serviceDate: String? = nil, amountMinor: Int64? = nil, currency: String? = nil, codes: [String]? = nil,
                provider: String? = nil, notes: String? = nil, measurements: [String: Double]? = nil) {
        self.serviceDate = serviceDate
        self.amountMinor = amountMinor
        self.currency = currency
        self.codes = codes
        self.provider = provider
        self.notes = notes
        self.measurements = measurements
    }

    /// The field names a profile may list.
    public static let names = ["service_date", "amount_minor", "currency", "codes", "provider", "notes", "measurements"]

    /// Only the fields in `visible`.
    func keeping(_ visible: Set<String>) -> HealthFields {
        HealthFields(serviceDate: visible.contains("service_date") ? serviceDate : nil,
                     amountMinor: visible.contains("amount_minor") ? amountMinor : nil,
                     currency: visible.contains("currency") ? currency : nil,
                     codes: visible.contains("codes") ? codes : nil,
                     provider: visible.contains("provider") ? provider : nil,
                     notes: visible.contains("notes") ? notes : nil,
                     measurements: visible.contains("measurements") ? measurements : nil)
    }
}

/// Minimum necessary (164.502(b)): which fields of a health record each role sees. The one
/// place every read path asks; a caller holding several profile roles sees their union, and
/// `admin` sees everything.
///
/// Configuration: `MINGUS_HIPAA_FIELD_ACCESS`, `role=field,field;role=*` (default
/// ``defaultText``). Roles must be declared by a domain; fields are ``HealthFields/names``.
public struct FieldAccessPolicy: Sendable, Equatable {
    public var fields: [Role: Set<String>]

    public static let defaultText = "hipaa:clinical=*;hipaa:billing=service_date,amount_minor,currency,codes,provider;hipaa:read=service_date"

    public init(fields: [Role: Set<String>]) {
        self.fields = fields
    }

    /// Parses the configuration text; errors name the setting and the part at fault.
    public static func parse(_ text: String, variable: String = "MINGUS_HIPAA_FIELD_ACCESS") throws -> FieldAccessPolicy {
        var fields: [Role: Set<String>] = [:]
        for entry in text.split(separator: ";", omittingEmptySubsequences: true) {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, Role.isWellFormed(parts[0]) else {
                throw ConfigurationError(variable: variable, message: "'\(entry)' is not role=field,field")
            }
            let names = parts[1] == "*" ? Set(HealthFields.names)
                                        : Set(parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            if let unknown = names.first(where: { !HealthFields.names.contains($0) }) {
                throw ConfigurationError(variable: variable, message: "'\(unknown)' is not a health record field (\(HealthFields.names.joined(separator: ", ")))")
            }
            fields[Role(parts[0]), default: []].formUnion(names)
        }
        return FieldAccessPolicy(fields: fields)
    }

    /// From the environment, or the default.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FieldAccessPolicy {
        try parse(environment["MINGUS_HIPAA_FIELD_ACCESS"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultText)
    }

    /// The fields `identity` sees.
    public func visible(to identity: APIKeyIdentity) -> Set<String> {
        if identity.roles.contains(.admin) { return Set(HealthFields.names) }
        return identity.roles.reduce(into: Set<String>()) { $0.formUnion(fields[$1] ?? []) }
    }

    /// The profile roles `identity` holds, for the audit trail.
    public func profile(of identity: APIKeyIdentity) -> String {
        if identity.roles.contains(.admin) { return "admin" }
        return identity.roles.filter { fields[$0] != nil }.map(\.rawValue).sorted().joined(separator: ",")
    }
}

extension Role {
    /// `word` or `word:word`, lower-case: the shape of every role.
    static func isWellFormed(_ text: String) -> Bool {
        text.range(of: "^[a-z]+(:[a-z]+)?$", options: .regularExpression) != nil
    }
}

/// A health record as one caller may see it: metadata always, fields per its profile.
public struct HealthRecordView: Encodable, Sendable, Equatable {
    public var id: UUID
    public var subjectId: String
    public var kind: String
    public var recordedAt: Date
    public var recordedBy: String
    public var serviceDate: String?
    public var amountMinor: Int64?
    public var currency: String?
    public var codes: [String]?
    public var provider: String?
    public var notes: String?
    public var measurements: [String: Double]?
    /// Fields this caller may not see (minimum necessary).
    public var withheldFields: [String]

    init(id: UUID, subjectId: String, kind: String, recordedAt: Date, recordedBy: String, fields: HealthFields, visible: Set<String>) {
        let kept = fields.keeping(visible)
        self.id = id
        self.subjectId = subjectId
        self.kind = kind
        self.recordedAt = recordedAt
        self.recordedBy = recordedBy
        serviceDate = kept.serviceDate
        amountMinor = kept.amountMinor
        currency = kept.currency
        codes = kept.codes
        provider = kept.provider
        notes = kept.notes
        measurements = kept.measurements
        withheldFields = HealthFields.names.filter { !visible.contains($0) }
    }
}

/// Why a health data access was refused.
public struct HealthAccessRefused: Error, Sendable, Equatable {
    /// `consent_refused` (with the ledger's reason), `key_erased`.
    public var code: String
    public var reason: String
}

/// `health_records` and the rest of the HIPAA tables: all their SQL.
public enum HealthStore {
    /// The consent purpose of a record kind: tracking needs the subject's consent
    /// (`health_tracking`); expenses are processed under the contract (`health_expenses`).
    public static func purpose(of kind: String) -> String {
        kind == "tracking" ? "health_tracking" : "health_expenses"
    }

    static func context(_ id: UUID) -> String { "health_records/\(id.uuidString.lowercased())" }

    /// Seals and inserts a record inside the caller's transaction.
    public static func insert(id: UUID, subject: String, kind: String, fields: HealthFields, actor: String,
                              key: SubjectKey, on db: PostgresConnection) async throws -> Date {
        let sealed = try key.seal(Array(try JSONEncoder().encode(fields)), context: context(id))
        return try await db.query("""
            INSERT INTO health_records (id, subject_id, kind, sealed, recorded_by) VALUES (\(id), \(subject), \(kind), \(sealed), \(actor))
            RETURNING recorded_at
            """)[0].decode(Date.self, at: 0)
    }

    /// A sealed row as stored.
    struct Row: Sendable {
        var id: UUID
        var subject: String
        var kind: String
        var sealed: [UInt8]
        var recordedBy: String
        var recordedAt: Date

        func open(with key: SubjectKey) throws -> HealthFields {
            try JSONDecoder().decode(HealthFields.self, from: Data(key.open(sealed, context: HealthStore.context(id))))
        }
    }

    /// What a read needs to know about the caller and the subject, besides the rows.
    struct Basis: Sendable {
        var relationship: String?
        var breakGlass: UUID?
        /// The subject's key row: wrapped key, key-encrypting key id, erasure time, whether there is one.
        var key: (wrapped: [UInt8]?, kekID: String?, erasedAt: Date?, exists: Bool)
    }

    /// Up to `limit` of `subject`'s records after `cursor` (or one record, `id`), the caller's
    /// relationship with the subject and its break-glass grant in force, in one statement.
    /// The filters given choose the statement's text, so each combination is prepared and
    /// planned on its own: one statement with `($1 IS NULL OR r.id = $1)` filters gets a generic
    /// plan that scans every record.
    static func read(subject: String?, id: UUID?, after cursor: (Date, UUID)?, limit: Int, actor: String,
                     on db: PostgresConnection) async throws -> (rows: [Row], basis: [String: Basis]) {
        let after = cursor?.0 ?? Date(timeIntervalSince1970: 0), afterID = cursor?.1 ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        let rows = try await db.query("""
            SELECT r.id, r.subject_id, r.kind, r.sealed, r.recorded_by, r.recorded_at,
                   (SELECT relationship FROM health_relationships l WHERE l.subject_id = r.subject_id AND l.actor = \(actor)),
                   (SELECT g.id FROM health_break_glass g WHERE g.subject_id = r.subject_id AND g.actor = \(actor) AND g.expires_at > now()
                    ORDER BY g.expires_at DESC LIMIT 1),
                   k.wrapped, k.kek_id, k.erased_at, k.subject_id IS NOT NULL
            FROM health_records r LEFT JOIN mingus_subject_keys k ON k.subject_id = r.subject_id
            WHERE \(id)::uuid \(unescaped: id == nil ? "IS NULL" : "= r.id") AND \(subject)::text \(unescaped: subject == nil ? "IS NULL" : "= r.subject_id")
              AND (r.recorded_at, r.id) > (\(after), \(afterID))
            ORDER BY r.recorded_at, r.id LIMIT \(limit)
            """)
        var basis: [String: Basis] = [:]
        let stored = try rows.map { row in
            let stored = Row(id: try row.decode(UUID.self, at: 0), subject: try row.decode(String.self, at: 1), kind: try row.decode(String.self, at: 2),
                             sealed: try row.decode([UInt8].self, at: 3), recordedBy: try row.decode(String.self, at: 4),
                             recordedAt: try row.decode(Date.self, at: 5))
            basis[stored.subject] = Basis(relationship: try row.decode(String?.self, at: 6), breakGlass: try row.decode(UUID?.self, at: 7),
                                          key: (try row.decode([UInt8]?.self, at: 8), try row.decode(String?.self, at: 9),
                                                try row.decode(Date?.self, at: 10), try row.decode(Bool.self, at: 11)))
            return stored
        }
        return (stored, basis)
    }
}

/// The one read path of health records: consent, minimum necessary, break-glass and the audit
/// event of every access (who, what, when, why). Routes, exports and the benchmark go through it.
public struct HealthAccess: Sendable {
    public let database: PostgresClient
    public let subjectKeys: SubjectKeys
    public let policy: FieldAccessPolicy

    public init(database: PostgresClient, subjectKeys: SubjectKeys, policy: FieldAccessPolicy) {
        self.database = database
        self.subjectKeys = subjectKeys
        self.policy = policy
    }

    /// Why health data is accessed (164.506, 164.512): the audit trail's `why`.
    public static let purposes = ["treatment", "payment", "health_care_operations", "subject_request", "emergency", "legal"]

    /// A read's answer and its audit event (to append before answering).
    public struct Read: Sendable {
        public var records: [HealthRecordView]
        public var events: [AuditEvent]
        /// Break-glass grants used by this read (each use raises an alert).
        public var breakGlass: [UUID]
        public var nextCursor: (Date, UUID)?
    }

    /// Reads `subject`'s records (or record `id`) for `caller`, fields per its profile (every field
    /// under break-glass). Tracking records need the subject's consent: without it the read is
    /// refused (``HealthAccessRefused``) unless break-glass is in force, and the refusal is audited too.
    public func read(subject: String?, id: UUID?, after cursor: (Date, UUID)? = nil, limit: Int = 100, caller: APIKeyIdentity,
                     why: String, origin: String) async throws -> Read {
        let actor = caller.actor
        let (rows, basis) = try await database.withConnection { db in
            try await HealthStore.read(subject: subject, id: id, after: cursor, limit: limit, actor: actor, on: db)
        }
        let subjects = Array(Set(rows.map(\.subject))).sorted()
        var consent: [String: ConsentDecision] = [:]
        for subject in subjects where rows.contains(where: { $0.subject == subject && $0.kind == "tracking" }) {
            consent[subject] = try await ConsentLedger.mayProcess(subject, for: "health_tracking", on: database)
        }
        var keys: [String: SubjectKey] = [:]
        do {
            for subject in subjects {
                guard let row = basis[subject]?.key else { continue }
                keys[subject] = try subjectKeys.key(subject, wrapped: row.wrapped, kekID: row.kekID, erasedAt: row.erasedAt, hasRow: row.exists)
            }
        } catch let erased as SubjectKeyErased {
            throw HealthAccessRefused(code: "key_erased", reason: erased.description)
        }
        let profileFields = policy.visible(to: caller)
        let profile = policy.profile(of: caller)
        var views: [HealthRecordView] = [], events: [AuditEvent] = [], grants: [UUID] = []
        for subject in subjects {
            let own = rows.filter { $0.subject == subject }
            let grant = basis[subject]?.breakGlass
            if let decision = consent[subject], !decision.allowed, grant == nil {
                events.append(AuditEvent(actor: actor, action: "hipaa.record.read", resource: "hipaa/subjects/\(subject)", outcome: .denied, origin: origin,
                                         details: ["why": why, "profile": profile, "consent": decision.reason, "records": "0"]))
                if id != nil || subjects.count == 1 {
                    throw RefusedRead(refusal: HealthAccessRefused(code: "consent_refused", reason: decision.reason), events: events)
                }
                continue
            }
            guard let key = keys[subject] else { continue }
            let visible = grant == nil ? profileFields : Set(HealthFields.names)
            for row in own {
                views.append(HealthRecordView(id: row.id, subjectId: subject, kind: row.kind, recordedAt: row.recordedAt, recordedBy: row.recordedBy,
                                              fields: try row.open(with: key), visible: visible))
            }
            var details = ["why": why, "profile": profile, "records": "\(own.count)",
                           "record_ids": own.prefix(20).map { $0.id.uuidString.lowercased() }.joined(separator: ","),
                           "fields": visible.sorted().joined(separator: ","), "relationship": basis[subject]?.relationship ?? "none"]
            if let decision = consent[subject] { details["consent"] = decision.reason }
            if let grant {
                details["break_glass"] = grant.uuidString.lowercased()
                grants.append(grant)
            }
            events.append(AuditEvent(actor: actor, action: "hipaa.record.read", resource: "hipaa/subjects/\(subject)", outcome: .success,
                                     origin: origin, details: details))
        }
        let next = rows.count == limit ? rows.last.map { ($0.recordedAt, $0.id) } : nil
        return Read(records: views, events: events, breakGlass: grants, nextCursor: next)
    }

    /// A refused read with the events that record the refusal.
    public struct RefusedRead: Error, Sendable {
        public var refusal: HealthAccessRefused
        public var events: [AuditEvent]
    }
}

/// The subject's health records for GDPR access exports, opened with the subject's key; each
/// page read is a `hipaa.record.export` audit event, so the accounting of disclosures shows it.
struct HealthRecordsProvider: SubjectDataProvider {
    var domain: String { "hipaa" }
    var table: String { "health_records" }
    var summary: String { "Health expenses and tracking entries recorded for the subject, every field." }
    var columns: [String] { ["id", "kind", "recorded_at", "recorded_by", "fields"] }

    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?) {
        var after: (Date, UUID)?
        if let cursor, cursor.count == 2, let micros = Int64(cursor[0]), let id = UUID(uuidString: cursor[1]) {
            after = (Date(timeIntervalSince1970: Double(micros) / 1_000_000), id)
        }
        let rows = try await context.database.withConnection { db in
            try await HealthStore.read(subject: subject, id: nil, after: after, limit: limit, actor: "privacy-worker", on: db).rows
        }
        guard !rows.isEmpty else { return ([], nil) }
        guard let key = try await SubjectKeys(kek: context.keys.keyEncryptingKey, database: context.database).existingKey(subject) else { return ([], nil) }
        let values = try rows.map { row -> [ExportValue] in
            let fields = String(decoding: try JSONEncoder.api.encode(try row.open(with: key)), as: UTF8.self)
            return [.text(row.id.uuidString.lowercased()), .text(row.kind), .text(APITime.format(row.recordedAt)), .text(row.recordedBy), .json(fields)]
        }
        try await context.database.withConnection { db in
            _ = try await AuditTrail.append(AuditEvent(actor: "privacy-worker", action: "hipaa.record.export", resource: "hipaa/subjects/\(subject)",
                                                       outcome: .success,
                                                       details: ["why": "subject_request", "records": "\(rows.count)",
                                                                 "record_ids": rows.prefix(20).map { $0.id.uuidString.lowercased() }.joined(separator: ","),
                                                                 "recipient": "the subject (GDPR access export)"]),
                                            component: "hipaa", on: db)
        }
        let next = rows.count == limit ? rows.last.map { [String(PageCursor.micros($0.recordedAt)), $0.id.uuidString.lowercased()] } : nil
        return (values, next)
    }
}
