import Foundation
import HTTPTypes
public import Hummingbird
import MingusAlerts
import MingusBreach
import MingusCore
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
import MingusSecurity

/// `/api/hipaa/…`: health records under minimum necessary, break-glass access, relationships,
/// disclosures and their accounting (164.528), de-identification, violations and the dashboard.
///
/// Records are written here, sealed under the subject's key, once the consent ledger allows the
/// processing. Every read, write and disclosure is an audit event of its own (who, what, when,
/// why) committed before the answer. Reads the field access profiles from
/// `MINGUS_HIPAA_FIELD_ACCESS` (see ``FieldAccessPolicy``).
public struct HealthRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher
    let keys: KeyringCache
    let audit: AuditBatcher
    let access: HealthAccess

    public init(_ gateway: GatewayServices, policy: FieldAccessPolicy) {
        database = gateway.database
        publisher = gateway.publisher
        keys = gateway.keys
        audit = gateway.audit
        access = HealthAccess(database: gateway.database, subjectKeys: SubjectKeys(kek: gateway.keys.keyEncryptingKey, database: gateway.database),
                              policy: policy)
    }

    static let bodyLimit = 16 * 1024
    static let deidentifyLimit = 8 * 1024 * 1024
    /// Rows one `POST /deidentify` takes.
    static let deidentifyRows = 10_000
    /// The longest break-glass grant, in minutes.
    static let breakGlassMinutes: ClosedRange<Int64> = 1...240

    /// The routes, to mount at `/api/hipaa`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .hipaaWrite)
        let read = routes.group(requiring: .hipaaRead)
        let auditor = routes.group(requiring: .hipaaAudit)
        write.post("records") { request, context in try await record(request, context) }
        write.post("relationships") { request, context in try await relate(request, context) }
        write.post("subjects/:subject_id/disclosures") { request, context in try await disclose(request, context) }
        read.get("subjects/:subject_id/records") { request, context in
            let subject = try PrivacyInput.subjectParameter(context.parameters.get("subject_id"))
            return try await readRecords(subject: subject, id: nil, request, context)
        }
        read.get("records/:id") { request, context in try await readRecords(subject: nil, id: try context.uuidParameter("id"), request, context) }
        read.post("break-glass") { request, context in try await breakGlass(request, context) }
        read.post("deidentify") { request, context in try await deidentify(request, context) }
        auditor.get("subjects/:subject_id/disclosures") { request, context in
            try await accounting(try PrivacyInput.subjectParameter(context.parameters.get("subject_id")), request.uri.queryParameters)
        }
        auditor.get("violations") { request, _ in try await violations(request.uri.queryParameters) }
        auditor.post("violations/scan") { _, context in
            let id = UUID().uuidString.lowercased()
            try await publisher.publish(type: HealthScanJob.type, id: "hipaa-scan/\(id)", body: HealthScanJob(), traceID: nil)
            _ = try context.caller()
            return APIResponse(.accepted, ScanAccepted(status: "accepted", scanId: id))
        }
        auditor.get("dashboard") { _, _ in APIResponse(try await dashboard()) }
        return routes
    }

    // MARK: - Answers

    struct RecordCreated: Encodable, Sendable {
        var id: UUID
        var subjectId: String
        var kind: String
        var recordedAt: Date
    }

    struct Records: Encodable, Sendable {
        var subjectId: String?
        var records: [HealthRecordView]
        var breakGlass: Bool
        var nextCursor: String?
    }

    struct Relationship: Encodable, Sendable {
        var subjectId: String
        var actor: String
        var relationship: String
    }

    struct Disclosed: Encodable, Sendable {
        var subjectId: String
        var recipient: String
        var purpose: String
        var disclosedAt: Date
    }

    struct Grant: Encodable, Sendable {
        var id: UUID
        var subjectId: String
        var actor: String
        var reason: String
        var grantedAt: Date
        var expiresAt: Date
    }

    struct Entry: Encodable, Sendable {
        var occurredAt: Date
        var kind: String
        var action: String
        var actor: String
        var outcome: String
        var why: String?
        var recipient: String?
        var description: String?
        var records: Int?
        var recordIds: [String]?
        var breakGlass: Bool
    }

    struct Accounting: Encodable, Sendable {
        var subjectId: String
        var from: Date
        var entries: [Entry]
        var nextCursor: String?
    }

    struct ScanAccepted: Encodable, Sendable {
        var status: String
        var scanId: String
    }

    // MARK: - Records

    private func record(_ request: Request, _ context: APIRequestContext) async throws -> APIResponse<RecordCreated> {
        let caller = try context.caller()
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit,
                                                  allowed: ["subject_id", "kind", "service_date", "amount_minor", "currency", "codes", "provider", "notes", "measurements"])
        let subject = try PrivacyInput.subject(body)
        let kind = try PrivacyInput.oneOf(try body.string("kind"), "kind", ["expense", "tracking"])
        var fields = HealthFields()
        if let date = try body.optionalString("service_date") {
            guard date.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) != nil, APITime.parse(date + "T00:00:00Z") != nil else {
                throw APIError.invalidField("service_date", rule: "format", "service_date must be a date, YYYY-MM-DD")
            }
            fields.serviceDate = date
        }
        fields.amountMinor = try PrivacyInput.integer(body, "amount_minor", 0...1_000_000_000_000)
        if let currency = try body.optionalString("currency") {
            guard currency.range(of: "^[A-Z]{3}$", options: .regularExpression) != nil else {
                throw APIError.invalidField("currency", rule: "format", "currency must be an ISO 4217 code")
            }
            fields.currency = currency
        }
        if (fields.amountMinor == nil) != (fields.currency == nil) {
            throw APIError.invalidField(fields.amountMinor == nil ? "amount_minor" : "currency", rule: "required", "amount_minor and currency go together")
        }
        if let codes = try PrivacyInput.strings(body, "codes") {
            guard codes.count <= 32, codes.allSatisfy({ $0.range(of: #"^[A-Za-z0-9.\-]{1,16}$"#, options: .regularExpression) != nil }) else {
                throw APIError.invalidField("codes", rule: "format", "codes holds at most 32 codes (ICD-10, CPT) of 1-16 letters, digits, '.' and '-'")
            }
            fields.codes = codes
        }
        fields.provider = try body.text("provider", max: 256)
        fields.notes = try body.text("notes", max: 4096)
        if let measurements = try body.optionalObject("measurements") {
            var values: [String: Double] = [:]
            for (name, value) in measurements {
                guard PrivacyInput.isName(name) else { throw APIError.invalidField("measurements", rule: "format", "measurement names are lower-case words joined by _") }
                switch value {
                case .integer(let number): values[name] = Double(number)
                case .number(let number) where number.isFinite: values[name] = number
                default: throw APIError(.badRequest, code: "invalid_request", message: "measurements must be numbers", field: "measurements", rule: "type")
                }
            }
            guard values.count <= 32 else { throw APIError.invalidField("measurements", rule: "length", "measurements holds at most 32 values") }
            fields.measurements = values
        }
        let purpose = HealthStore.purpose(of: kind)
        let decision = try await ConsentLedger.mayProcess(subject, for: purpose, on: database)
        guard decision.allowed else {
            try await audit.append(AuditEvent(actor: caller.actor, action: "hipaa.record.write", resource: "hipaa/subjects/\(subject)", outcome: .denied,
                                              origin: context.origin, details: ["kind": kind, "why": purpose, "consent": decision.reason, "records": "0"]))
            throw Self.consentRefused(purpose, decision.reason)
        }
        let key: SubjectKey
        do {
            key = try await access.subjectKeys.key(subject)
        } catch is SubjectKeyErased {
            throw APIError(.conflict, code: "subject_erased", message: "this subject's data was erased; nothing more is kept for them", field: "subject_id", rule: "erased")
        }
        let id = UUID()
        let at = try await database.withTransaction { db in
            let at = try await HealthStore.insert(id: id, subject: subject, kind: kind, fields: fields, actor: caller.actor, key: key, on: db)
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "hipaa.record.write", resource: "hipaa/subjects/\(subject)", outcome: .success,
                                                       origin: context.origin, details: ["record_ids": id.uuidString.lowercased(), "kind": kind, "records": "1",
                                                                                         "why": purpose, "consent": decision.reason]),
                                            component: "hipaa", on: db)
            return at
        }
        return APIResponse(.created, RecordCreated(id: id, subjectId: subject, kind: kind, recordedAt: at))
    }

    static func consentRefused(_ purpose: String, _ reason: String) -> APIError {
        APIError(.conflict, code: "consent_refused",
                 message: "the subject has not consented to \(purpose) (\(reason)); record the consent through /api/gdpr/consents first",
                 field: "subject_id", rule: reason)
    }

    private func why(_ query: Parameters) throws -> String {
        guard let why = query.get("purpose") else {
            throw APIError.invalidParameter("purpose", rule: "required", "purpose (why the data is read) is required: \(HealthAccess.purposes.joined(separator: ", "))")
        }
        guard HealthAccess.purposes.contains(why) else {
            throw APIError.invalidParameter("purpose", rule: "enum", "purpose must be one of \(HealthAccess.purposes.joined(separator: ", "))")
        }
        return why
    }

    private func readRecords(subject: String?, id: UUID?, _ request: Request, _ context: APIRequestContext) async throws -> APIResponse<Records> {
        let caller = try context.caller()
        let query = request.uri.queryParameters
        let why = try why(query)
        let limit = try PageCursor.limit(query, default: 100, max: 500)
        var cursor: (Date, UUID)?
        if let text = query.get("cursor") {
            let fields = try PageCursor.decode(text, fields: 2)
            guard let micros = Int64(fields[0]), let last = UUID(uuidString: fields[1]) else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            cursor = (Date(timeIntervalSince1970: Double(micros) / 1_000_000), last)
        }
        let read: HealthAccess.Read
        do {
            read = try await access.read(subject: subject, id: id, after: cursor, limit: limit, caller: caller, why: why, origin: context.origin)
        } catch let refused as HealthAccess.RefusedRead {
            for event in refused.events { try await audit.append(event) }
            throw Self.consentRefused("health_tracking", refused.refusal.reason)
        } catch let refused as HealthAccessRefused {
            throw APIError(.conflict, code: refused.code, message: "this subject's health data was erased")
        }
        if id != nil, read.records.isEmpty { throw APIError.notFound("no such health record") }
        for event in read.events { try await audit.append(event) }
        for grant in read.breakGlass {
            try await database.execute("UPDATE health_break_glass SET uses = uses + 1 WHERE id = \(grant)")
            try await alert(title: "Break-glass access used", grant: grant, subject: read.records.first?.subjectId ?? subject ?? "", actor: caller.actor,
                            description: "\(caller.actor) read \(read.records.count) health record(s) under emergency access \(grant.uuidString.lowercased()).")
        }
        let next = read.nextCursor.map { PageCursor.encode([String(PageCursor.micros($0.0)), $0.1.uuidString.lowercased()]) }
        return APIResponse(Records(subjectId: subject ?? read.records.first?.subjectId, records: read.records, breakGlass: !read.breakGlass.isEmpty,
                                   nextCursor: next))
    }

    // MARK: - Break-glass

    /// Raises a break-glass alert to the security channel through the alerts worker.
    private func alert(title: String, grant: UUID, subject: String, actor: String, description: String) async throws {
        let id = UUID()
        let job = AlertJob(status: .firing, severity: .high, title: title, description: description,
                           labels: ["component": "hipaa", "team": "security", "grant_id": grant.uuidString.lowercased(), "subject_id": subject,
                                    "actor": actor, "review": "required"],
                           source: "gateway", dedupKey: "break-glass/\(id.uuidString.lowercased())", receivedAt: Date())
        try await publisher.publish(type: AlertJob.type, id: id.uuidString.lowercased(), body: job, traceID: nil)
    }

    private func breakGlass(_ request: Request, _ context: APIRequestContext) async throws -> APIResponse<Grant> {
        let caller = try context.caller()
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["subject_id", "reason", "minutes"])
        let subject = try PrivacyInput.subject(body)
        let reason = try PrivacyInput.text(body, "reason", max: 1024)
        guard reason.count >= 10 else { throw APIError.invalidField("reason", rule: "length", "reason must say why, in 10 characters or more") }
        let minutes = try PrivacyInput.integer(body, "minutes", Self.breakGlassMinutes) ?? 60
        let id = UUID()
        let (granted, expires) = try await database.withTransaction { db in
            let row = try await db.query("""
                INSERT INTO health_break_glass (id, actor, subject_id, reason, expires_at)
                VALUES (\(id), \(caller.actor), \(subject), \(reason), now() + \(minutes)::float8 * interval '1 minute') RETURNING granted_at, expires_at
                """)[0]
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "hipaa.break_glass.grant", resource: "hipaa/subjects/\(subject)", outcome: .success,
                                                       origin: context.origin, details: ["break_glass": id.uuidString.lowercased(), "why": "emergency",
                                                                                         "reason": reason, "minutes": "\(minutes)"]),
                                            component: "hipaa", on: db)
            return (try row.decode(Date.self, at: 0), try row.decode(Date.self, at: 1))
        }
        try await alert(title: "Break-glass access granted", grant: id, subject: subject, actor: caller.actor,
                        description: "\(caller.actor) opened emergency access to a subject's health records for \(minutes) min: \(reason)")
        return APIResponse(.created, Grant(id: id, subjectId: subject, actor: caller.actor, reason: reason, grantedAt: granted, expiresAt: expires))
    }

    // MARK: - Relationships and disclosures

    private func relate(_ request: Request, _ context: APIRequestContext) async throws -> APIResponse<Relationship> {
        let caller = try context.caller()
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["subject_id", "actor", "relationship"])
        let subject = try PrivacyInput.subject(body)
        let actor = try body.string("actor")
        guard actor.hasPrefix("apikey:"), isIdentifier(String(actor.dropFirst(7)), length: 1...128, extra: "._:@-") else {
            throw APIError.invalidField("actor", rule: "format", "actor must be apikey:<key name>")
        }
        let relationship = try PrivacyInput.oneOf(try body.string("relationship"), "relationship", ["care", "billing"])
        try await database.withTransaction { db in
            try await db.execute("""
                INSERT INTO health_relationships (subject_id, actor, relationship, recorded_by) VALUES (\(subject), \(actor), \(relationship), \(caller.actor))
                ON CONFLICT (subject_id, actor) DO UPDATE SET relationship = EXCLUDED.relationship, recorded_by = EXCLUDED.recorded_by, recorded_at = now()
                """)
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "hipaa.relationship.set", resource: "hipaa/subjects/\(subject)",
                                                       outcome: .success, origin: context.origin, details: ["actor": actor, "relationship": relationship]),
                                            component: "hipaa", on: db)
        }
        return APIResponse(Relationship(subjectId: subject, actor: actor, relationship: relationship))
    }

    static let disclosurePurposes = ["treatment", "payment", "health_care_operations", "required_by_law", "public_health", "health_oversight",
                                     "judicial", "law_enforcement", "research", "subject_authorization"]

    private func disclose(_ request: Request, _ context: APIRequestContext) async throws -> APIResponse<Disclosed> {
        let caller = try context.caller()
        let subject = try PrivacyInput.subjectParameter(context.parameters.get("subject_id"))
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["recipient", "purpose", "description", "record_ids", "disclosed_at"])
        let recipient = try PrivacyInput.text(body, "recipient", max: 256)
        let purpose = try PrivacyInput.oneOf(try body.string("purpose"), "purpose", Self.disclosurePurposes)
        let description = try PrivacyInput.text(body, "description", max: 1024)
        let ids = try PrivacyInput.strings(body, "record_ids") ?? []
        guard ids.count <= 100, ids.allSatisfy({ UUID(uuidString: $0) != nil }) else {
            throw APIError.invalidField("record_ids", rule: "format", "record_ids holds at most 100 record UUIDs")
        }
        let at = try PrivacyInput.date(body, "disclosed_at") ?? Date()
        guard at <= Date().addingTimeInterval(300) else { throw APIError.invalidField("disclosed_at", rule: "range", "disclosed_at may not be in the future") }
        try await database.withTransaction { db in
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "hipaa.disclosure", resource: "hipaa/subjects/\(subject)", outcome: .success,
                                                       origin: context.origin,
                                                       details: ["recipient": recipient, "why": purpose, "description": description,
                                                                 "record_ids": ids.map { $0.lowercased() }.joined(separator: ","), "records": "\(ids.count)",
                                                                 "disclosed_at": APITime.format(at)]),
                                            component: "hipaa", on: db)
        }
        return APIResponse(.created, Disclosed(subjectId: subject, recipient: recipient, purpose: purpose, disclosedAt: at))
    }

    /// Every access to the subject's health data in the last six years (164.528(a)), newest
    /// first: reads, writes, exports, break-glass grants and disclosures (`kind` filters).
    private func accounting(_ subject: String, _ query: Parameters) async throws -> APIResponse<Accounting> {
        let limit = try PageCursor.limit(query, default: 200, max: 1000)
        let kinds = ["read": "hipaa.record.read", "write": "hipaa.record.write", "export": "hipaa.record.export",
                     "disclosure": "hipaa.disclosure", "break_glass": "hipaa.break_glass.grant"]
        var actions = Array(kinds.values)
        if let kind = query.get("kind") {
            guard let action = kinds[kind] else { throw APIError.invalidParameter("kind", rule: "enum", "kind must be one of \(kinds.keys.sorted().joined(separator: ", "))") }
            actions = [action]
        }
        var before: (Int64, String, Int64)?
        if let text = query.get("cursor") {
            let fields = try PageCursor.decode(text, fields: 3)
            guard let micros = Int64(fields[0]), let seq = Int64(fields[2]) else { throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave") }
            before = (micros, fields[1], seq)
        }
        let from = Calendar(identifier: .gregorian).date(byAdding: .year, value: -6, to: Date())!
        let rows = try await database.query("""
            SELECT occurred_at, action, actor, outcome, details, stream, seq FROM audit_events
            WHERE resource = \("hipaa/subjects/\(subject)") AND occurred_at >= \(from) AND action = ANY(\(actions))
              AND (\(before == nil) OR (occurred_at, stream, seq) < (to_timestamp(\(before?.0 ?? 0)::float8 / 1e6), \(before?.1 ?? ""), \(before?.2 ?? 0)))
            ORDER BY occurred_at DESC, stream DESC, seq DESC LIMIT \(limit)
            """)
        let names = Dictionary(uniqueKeysWithValues: kinds.map { ($0.value, $0.key) })
        var entries: [Entry] = [], last: (Date, String, Int64)?
        for row in rows {
            let details = (try? JSONDecoder().decode([String: String].self, from: Data(try row.decode(String.self, at: 4).utf8))) ?? [:]
            let action = try row.decode(String.self, at: 1)
            let at = try row.decode(Date.self, at: 0)
            entries.append(Entry(occurredAt: at, kind: names[action] ?? action, action: action, actor: try row.decode(String.self, at: 2),
                                 outcome: try row.decode(String.self, at: 3), why: details["why"], recipient: details["recipient"],
                                 description: details["description"], records: details["records"].flatMap { Int($0) },
                                 recordIds: details["record_ids"].map { $0.split(separator: ",").map(String.init) },
                                 breakGlass: details["break_glass"] != nil))
            last = (at, try row.decode(String.self, at: 5), try row.decode(Int64.self, at: 6))
        }
        let next = rows.count == limit ? last.map { PageCursor.encode([String(PageCursor.micros($0.0)), $0.1, String($0.2)]) } : nil
        return APIResponse(Accounting(subjectId: subject, from: from, entries: entries, nextCursor: next))
    }
}

extension HealthRoutes {
    struct Deidentified: Encodable, Sendable {
        var level: String
        var rows: [[String: JSONValue]]?
        var groups: [Deidentifier.Cell]?
        var rowsIn: Int
        var suppressedGroups: Int?
    }

    /// De-identifies up to ``deidentifyRows`` rows whose columns the caller classified.
    func deidentify(_ request: Request, _ context: APIRequestContext) async throws -> APIResponse<Deidentified> {
        let caller = try context.caller()
        let body = try await JSONRequestBody.read(request, limit: Self.deidentifyLimit,
                                                  allowed: ["level", "columns", "rows", "group_by", "minimum_cell", "reference_date"])
        let settings = try DeidentifySettings.parse(body.fields, purposeRequired: false)
        let level = settings.level
        let columns = settings.columns
        guard case .array(let values)? = body.value("rows") else {
            throw APIError(.badRequest, code: "invalid_request", message: "rows must be an array of objects", field: "rows", rule: "type")
        }
        guard values.count <= Self.deidentifyRows else {
            throw APIError.invalidField("rows", rule: "length", "rows holds at most \(Self.deidentifyRows) rows")
        }
        var rows: [[String: JSONValue]] = []
        rows.reserveCapacity(values.count)
        for value in values {
            guard case .object(let row) = value else {
                throw APIError(.badRequest, code: "invalid_request", message: "rows must be an array of objects", field: "rows", rule: "type")
            }
            if row.keys.contains(where: { columns[$0] == nil }) {
                throw APIError.invalidField("columns", rule: "required", "every column of the rows needs its kind in columns")
            }
            rows.append(row)
        }
        let keyring = level == .pseudonymized ? try await keys.current() : nil
        let deidentifier = Deidentifier(columns: columns, referenceYear: settings.referenceYear, keyring: keyring)
        var answer = Deidentified(level: level.rawValue, rows: nil, groups: nil, rowsIn: rows.count, suppressedGroups: nil)
        if level == .aggregated {
            let cells = deidentifier.aggregate(rows, groupBy: settings.groupBy, minimumCell: settings.minimumCell)
            answer.groups = cells
            answer.suppressedGroups = cells.filter(\.suppressed).count
        } else {
            answer.rows = try rows.map { try deidentifier.apply($0, level: level) }
        }
        try await audit.append(AuditEvent(actor: caller.actor, action: "hipaa.deidentify", resource: "hipaa/deidentify", outcome: .success,
                                          origin: context.origin, details: ["level": level.rawValue, "rows": "\(rows.count)"]))
        return APIResponse(answer)
    }

    struct Violation: Encodable, Sendable {
        var id: UUID
        var rule: String
        var actor: String
        var windowStart: Date
        var windowEnd: Date
        var events: Int
        var records: Int
        var subjects: Int
        var summary: String
        var risk: RiskAssessment
        var riskLevel: String
        var isBreach: Bool
        var breachId: UUID?
        var status: String
        var detectedAt: Date
    }

    struct Violations: Encodable, Sendable { var violations: [Violation] }

    static let rules = ["no_basis", "bulk_read", "break_glass", "revoked_key", "after_hours"]

    func violations(_ query: Parameters) async throws -> APIResponse<Violations> {
        let limit = try PageCursor.limit(query, default: 100, max: 500)
        let rule = query.get("rule")
        if let rule, !Self.rules.contains(rule) {
            throw APIError.invalidParameter("rule", rule: "enum", "rule must be one of \(Self.rules.joined(separator: ", "))")
        }
        let rows = try await database.query("""
            SELECT id, rule, actor, window_start, window_end, events, records, cardinality(subjects), summary, risk::text, risk_level, is_breach,
                   breach_id, status, detected_at
            FROM health_violations WHERE (\(rule)::text IS NULL OR rule = \(rule)) ORDER BY detected_at DESC, id LIMIT \(limit)
            """)
        return APIResponse(Violations(violations: try rows.map { row in
            Violation(id: try row.decode(UUID.self, at: 0), rule: try row.decode(String.self, at: 1), actor: try row.decode(String.self, at: 2),
                      windowStart: try row.decode(Date.self, at: 3), windowEnd: try row.decode(Date.self, at: 4), events: try row.decode(Int.self, at: 5),
                      records: try row.decode(Int.self, at: 6), subjects: try row.decode(Int.self, at: 7), summary: try row.decode(String.self, at: 8),
                      risk: try JSONDecoder.mingus.decode(RiskAssessment.self, from: Data(try row.decode(String.self, at: 9).utf8)),
                      riskLevel: try row.decode(String.self, at: 10), isBreach: try row.decode(Bool.self, at: 11), breachId: try row.decode(UUID?.self, at: 12),
                      status: try row.decode(String.self, at: 13), detectedAt: try row.decode(Date.self, at: 14))
        }))
    }

    struct Dashboard: Encodable, Sendable {
        var records: Int64
        var subjects: Int64
        var accessesLast24h: Int64
        var deniedLast24h: Int64
        var disclosuresLast30d: Int64
        var breakGlassActive: Int64
        var breakGlassUnreviewed: Int64
        var violationsByRule: [String: Int64]
        var breachesOpened: Int64
        var scannedTo: Date
    }

    func dashboard() async throws -> Dashboard {
        let row = try await database.query("""
            SELECT (SELECT count(*) FROM health_records), (SELECT count(DISTINCT subject_id) FROM health_records),
                   (SELECT count(*) FROM audit_events WHERE action LIKE 'hipaa.record.%' AND occurred_at > now() - interval '1 day'),
                   (SELECT count(*) FROM audit_events WHERE action LIKE 'hipaa.%' AND outcome = 'denied' AND occurred_at > now() - interval '1 day'),
                   (SELECT count(*) FROM audit_events WHERE action = 'hipaa.disclosure' AND occurred_at > now() - interval '30 days'),
                   (SELECT count(*) FROM health_break_glass WHERE expires_at > now()),
                   (SELECT count(*) FROM health_break_glass WHERE reviewed_at IS NULL),
                   (SELECT coalesce(jsonb_object_agg(rule, n), '{}')::text FROM (SELECT rule, count(*) AS n FROM health_violations GROUP BY rule) v),
                   (SELECT count(*) FROM health_violations WHERE breach_id IS NOT NULL),
                   (SELECT scanned_to FROM health_scan_state WHERE id = 1)
            """)[0]
        return Dashboard(records: try row.decode(Int64.self, at: 0), subjects: try row.decode(Int64.self, at: 1), accessesLast24h: try row.decode(Int64.self, at: 2),
                         deniedLast24h: try row.decode(Int64.self, at: 3), disclosuresLast30d: try row.decode(Int64.self, at: 4),
                         breakGlassActive: try row.decode(Int64.self, at: 5), breakGlassUnreviewed: try row.decode(Int64.self, at: 6),
                         violationsByRule: try JSONDecoder().decode([String: Int64].self, from: Data(try row.decode(String.self, at: 7).utf8)),
                         breachesOpened: try row.decode(Int64.self, at: 8), scannedTo: try row.decode(Date.self, at: 9))
    }
}
