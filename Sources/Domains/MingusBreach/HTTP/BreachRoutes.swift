import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
import MingusSecurity

/// `/api/financial/breach…`: breach reports, status changes, facts, obligations and evidence.
///
/// A report is checked and published as a `breach.report` job (202 with the breach id); the
/// breach worker stores and assesses it. Fact changes are `breach.update` jobs, reassessed by the
/// worker. Status changes and evidence are written here, under a lock on the breach's row, so an
/// illegal transition is refused at once (409 naming the allowed ones).
public struct BreachRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher
    let idempotency: IdempotencyStore
    let store: BreachStore

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        publisher = gateway.publisher
        idempotency = gateway.idempotency
        store = BreachStore(database: gateway.database)
    }

    static let bodyLimit = 64 * 1024
    static let factFields: Set<String> = [
        "severity", "description", "discovered_at", "aware_at", "data_categories", "data_encrypted", "key_compromised", "records_affected",
        "persons_affected", "jurisdictions", "persons_by_jurisdiction", "entity_roles",
    ]

    /// The routes, to mount at `/api/financial`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .breachWrite)
        write.post("breach/report") { request, context in try await report(request, caller: try context.caller()) }
        write.patch("breach/:id") { request, context in
            try await update(request, id: try context.uuidParameter("id"), caller: try context.caller())
        }
        write.post("breach/:id/facts") { request, context in
            try await recordFact(request, id: try context.uuidParameter("id"), caller: try context.caller())
        }
        write.put("breach/:id/status") { request, context in
            try await changeStatus(request, id: try context.uuidParameter("id"), caller: try context.caller())
        }
        write.post("breach/:id/obligations/:oid/evidence") { request, context in
            try await recordEvidence(request, id: try context.uuidParameter("id"), obligation: try context.uuidParameter("oid"),
                                     caller: try context.caller())
        }
        let read = routes.group(requiring: .breachRead)
        read.get("breaches") { request, _ in try await list(request.uri.queryParameters) }
        read.get("breach/:id") { _, context in
            let id = try context.uuidParameter("id")
            guard var breach = try await store.breach(id) else { throw Self.notFound(id) }
            breach.notifications = try await NotificationStore.progress(of: id, on: database) ?? .empty
            return APIResponse(breach)
        }
        read.get("breach/:id/obligations") { _, context in
            let id = try context.uuidParameter("id")
            guard try await exists(id) else { throw Self.notFound(id) }
            return APIResponse(ObligationList(obligations: try await store.obligations(of: id)))
        }
        return routes
    }

    // MARK: - Answers

    struct Accepted: Encodable, Sendable {
        var id: String
        var status = "accepted"
        var statusUrl: String
    }

    struct StatusChanged: Encodable, Sendable {
        var id: String
        var status: String
        var previousStatus: String
        var changedAt: Date
    }

    struct ObligationList: Encodable, Sendable {
        var obligations: [ObligationView]
    }

    struct BreachList: Encodable, Sendable {
        var breaches: [BreachSummary]
        var nextCursor: String?
    }

    struct EvidenceRecorded: Encodable, Sendable {
        var id: String
        var obligationId: String
        var obligationStatus: String
    }

    static func notFound(_ id: UUID) -> APIError {
        .notFound("no breach \(id.uuidString.lowercased()) (a report is stored a moment after it is accepted)")
    }

    private func exists(_ id: UUID) async throws -> Bool {
        try await !database.query("SELECT 1 FROM breaches WHERE id = \(id)").isEmpty
    }

    private func accepted(_ id: UUID) -> APIResponse<Accepted> {
        let path = "/api/financial/breach/\(id.uuidString.lowercased())"
        return APIResponse(.accepted, Accepted(id: id.uuidString.lowercased(), statusUrl: path), headers: [.location: path])
    }

    // MARK: - Reports and facts

    /// With an `Idempotency-Key`, a retry gets the first answer and the same breach id; the job's
    /// message id is the breach id, so the worker stores it once even if both were published.
    private func report(_ request: Request, caller: APIKeyIdentity) async throws -> Response {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.factFields.union(["title", "facts"]))
        let idempotencyKey = try IdempotencyStore.key(from: request)
        let now = Date()
        let title = try BreachInput.requiredText(body, "title", max: 256)
        let facts = try BreachInput.facts(body, now: now)
        var changes = try BreachInput.changes(body, now: now)
        for required in ["severity", "discovered_at", "data_categories", "data_encrypted", "records_affected", "persons_affected",
                         "jurisdictions", "entity_roles"] where body.value(required) == nil {
            throw APIError(.badRequest, code: "invalid_request", message: "\(required) is required", field: required, rule: "required")
        }
        let discovered = changes.discoveredAt!
        let aware = changes.awareAt ?? now
        changes.awareAt = aware
        try BreachInput.check(discovered: discovered, aware: aware, now: now)
        try BreachInput.checkCounts(persons: changes.personsAffected!, byJurisdiction: changes.personsByJurisdiction ?? [:],
                                    jurisdictions: changes.jurisdictions!)
        var id = UUID()
        if let idempotencyKey {
            switch try await idempotency.claim(apiKeyID: caller.id, key: idempotencyKey,
                                               requestHash: IdempotencyStore.hash(request, body: body.raw)) {
            case .replay(let status, let bytes):
                return .json(.init(code: status), bytes: bytes, headers: [HTTPField.Name("Idempotent-Replayed")!: "true"])
            case .proceed(let resourceID):
                id = UUID(uuidString: resourceID) ?? id
            }
        }
        let job = BreachReportJob(
            breachId: id, title: title, description: changes.description ?? "", severity: changes.severity!, discoveredAt: discovered,
            awareAt: aware, dataCategories: changes.dataCategories!, dataEncrypted: changes.dataEncrypted!,
            keyCompromised: changes.keyCompromised ?? false, recordsAffected: changes.recordsAffected!,
            personsAffected: changes.personsAffected!, jurisdictions: changes.jurisdictions!,
            personsByJurisdiction: changes.personsByJurisdiction ?? [:], entityRoles: changes.entityRoles!, facts: facts,
            reportedBy: caller.actor, reportedAt: APITime.format(now))
        do {
            try await publisher.publish(type: BreachReportJob.type, id: id.uuidString.lowercased(), body: job, traceID: nil)
            let answer = accepted(id)
            let bytes = try answer.encodedBody()
            if let idempotencyKey {
                try await database.withTransaction { db in
                    try await IdempotencyStore.complete(apiKeyID: caller.id, key: idempotencyKey, status: 202, body: bytes, on: db)
                }
            }
            return .json(.accepted, bytes: bytes, headers: answer.headers)
        } catch {
            if let idempotencyKey { await idempotency.release(apiKeyID: caller.id, key: idempotencyKey) }
            throw error
        }
    }

    private func update(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> APIResponse<Accepted> {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.factFields.union(["facts", "note"]))
        let now = Date()
        let changes = try BreachInput.changes(body, now: now)
        let facts = try BreachInput.facts(body, now: now)
        guard !changes.isEmpty || !facts.isEmpty else {
            throw APIError.invalidField("body", rule: "empty", "nothing to change: give at least one field or fact")
        }
        guard let current = try await currentFacts(id) else { throw Self.notFound(id) }
        try BreachInput.check(discovered: changes.discoveredAt ?? current.discovered, aware: changes.awareAt ?? current.aware, now: now)
        if changes.personsAffected != nil || changes.personsByJurisdiction != nil || changes.jurisdictions != nil {
            try BreachInput.checkCounts(persons: changes.personsAffected ?? current.persons,
                                        byJurisdiction: changes.personsByJurisdiction ?? current.byJurisdiction,
                                        jurisdictions: changes.jurisdictions ?? current.jurisdictions)
        }
        let note = try BreachInput.text(body, "note", max: 2048, blank: true)
        let job = BreachUpdateJob(breachId: id, changes: changes, facts: facts, note: note, actor: caller.actor)
        try await publisher.publish(type: BreachUpdateJob.type, id: UUID().uuidString.lowercased(), body: job, traceID: nil)
        return accepted(id)
    }

    private func recordFact(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> APIResponse<Accepted> {
        let body = try await JSONRequestBody.read(request, limit: 4096, allowed: ["fact", "occurred_at", "note"])
        let fact = try body.string("fact")
        guard BreachFactRecord.isName(fact) else {
            throw APIError.invalidField("fact", rule: "pattern", "fact must be lower-case letters, digits and _ (such as materiality_determined)")
        }
        let now = Date()
        let occurred = try BreachInput.date(body, "occurred_at") ?? now
        guard occurred <= now.addingTimeInterval(300) else {
            throw APIError.invalidField("occurred_at", rule: "not_future", "occurred_at cannot be in the future")
        }
        guard try await exists(id) else { throw Self.notFound(id) }
        let job = BreachUpdateJob(breachId: id, changes: BreachChanges(), facts: [BreachFactRecord(fact: fact, occurredAt: occurred)],
                                  note: try BreachInput.text(body, "note", max: 2048, blank: true), actor: caller.actor)
        try await publisher.publish(type: BreachUpdateJob.type, id: UUID().uuidString.lowercased(), body: job, traceID: nil)
        return accepted(id)
    }

    private struct CurrentFacts {
        var discovered: Date
        var aware: Date
        var persons: Int64
        var byJurisdiction: [String: Int64]
        var jurisdictions: [String]
    }

    private func currentFacts(_ id: UUID) async throws -> CurrentFacts? {
        let rows = try await database.query("""
            SELECT discovered_at, aware_at, persons_affected, persons_by_jurisdiction::text, jurisdictions FROM breaches WHERE id = \(id)
            """)
        return try rows.first.map { row in
            CurrentFacts(discovered: try row.decode(Date.self, at: 0), aware: try row.decode(Date.self, at: 1),
                         persons: try row.decode(Int64.self, at: 2),
                         byJurisdiction: (try? JSONDecoder().decode([String: Int64].self, from: Data(try row.decode(String.self, at: 3).utf8))) ?? [:],
                         jurisdictions: try row.decode([String].self, at: 4))
        }
    }

    // MARK: - Status

    private func changeStatus(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> APIResponse<StatusChanged> {
        let body = try await JSONRequestBody.read(request, limit: 4096, allowed: ["status", "note"])
        let text = try body.string("status")
        guard let target = BreachStatus(rawValue: text) else {
            throw APIError.invalidField("status", rule: "enum",
                                        "status must be one of \(BreachStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let note = try BreachInput.text(body, "note", max: 2048, blank: true)
        return try await database.withTransaction { db in
            let rows = try await db.query("SELECT status FROM breaches WHERE id = \(id) FOR UPDATE")
            guard let row = rows.first else { throw Self.notFound(id) }
            let current = BreachStatus(rawValue: try row.decode(String.self, at: 0)) ?? .detected
            guard current.allows(target) else {
                let allowed = current.next.map(\.rawValue)
                throw APIError(.conflict, code: "illegal_transition",
                               message: "a \(current.rawValue) breach cannot become \(target.rawValue); allowed: \(allowed.isEmpty ? "none (final)" : allowed.joined(separator: ", "))",
                               field: "status", rule: "transition")
            }
            if target == .closed {
                let open = try await db.query("""
                    SELECT regime FROM breach_obligations
                    WHERE breach_id = \(id) AND status = 'open' AND (deadline IS NOT NULL OR target IS NOT NULL) ORDER BY regime
                    """).map { try $0.decode(String.self, at: 0) }
                guard open.isEmpty else {
                    throw APIError(.conflict, code: "obligations_open",
                                   message: "a breach closes once its running obligations are met; still open: \(open.joined(separator: ", "))",
                                   field: "status", rule: "obligations_met")
                }
            }
            let changed = try await db.query("""
                UPDATE breaches SET status = \(target.rawValue), status_changed_at = clock_timestamp(), updated_at = clock_timestamp()
                WHERE id = \(id) RETURNING status_changed_at
                """)[0].decode(Date.self, at: 0)
            if target == .falsePositive {
                // No breach, no duty to notify: open obligations are withdrawn (their reminders then do nothing).
                try await db.execute("""
                    WITH withdrawn AS (
                        UPDATE breach_obligations SET status = 'withdrawn', updated_at = clock_timestamp()
                        WHERE breach_id = \(id) AND status = 'open' RETURNING id, regime_name
                    )
                    INSERT INTO breach_timeline (breach_id, actor, kind, message, details)
                    SELECT \(id), \(caller.actor), 'obligation_withdrawn', regime_name || ': withdrawn, the breach is a false positive',
                           jsonb_build_object('obligation_id', id::text)
                    FROM withdrawn ORDER BY regime_name
                    """)
            }
            try await db.execute("""
                INSERT INTO breach_timeline (breach_id, actor, kind, message, details)
                VALUES (\(id), \(caller.actor), 'status', \("\(current.rawValue) → \(target.rawValue)" + (note.map { ": \($0)" } ?? "")),
                        jsonb_build_object('from', \(current.rawValue)::text, 'to', \(target.rawValue)::text))
                """)
            return APIResponse(StatusChanged(id: id.uuidString.lowercased(), status: target.rawValue, previousStatus: current.rawValue,
                                             changedAt: changed))
        }
    }

    // MARK: - Evidence

    private func recordEvidence(_ request: Request, id: UUID, obligation: UUID, caller: APIKeyIdentity) async throws -> APIResponse<EvidenceRecorded> {
        let body = try await JSONRequestBody.read(request, limit: 16 * 1024, allowed: ["what", "sent_to", "sent_at", "reference"])
        let what = try BreachInput.requiredText(body, "what", max: 4096)
        let sentTo = try BreachInput.requiredText(body, "sent_to", max: 1024)
        let reference = try BreachInput.text(body, "reference", max: 1024, blank: true) ?? ""
        let now = Date()
        guard let sentAt = try BreachInput.date(body, "sent_at") else {
            throw APIError(.badRequest, code: "invalid_request", message: "sent_at is required", field: "sent_at", rule: "required")
        }
        guard sentAt <= now.addingTimeInterval(300) else {
            throw APIError.invalidField("sent_at", rule: "not_future", "sent_at cannot be in the future")
        }
        return try await database.withTransaction { db in
            let rows = try await db.query("""
                SELECT status, regime_name FROM breach_obligations WHERE id = \(obligation) AND breach_id = \(id) FOR UPDATE
                """)
            guard let row = rows.first else {
                throw APIError.notFound("no obligation \(obligation.uuidString.lowercased()) of breach \(id.uuidString.lowercased())")
            }
            let status = try row.decode(String.self, at: 0)
            guard status == "open" || status == "met" else {
                throw APIError(.conflict, code: "obligation_\(status)",
                               message: "the obligation is \(status); record evidence on the obligation that replaced it")
            }
            let evidence = UUID()
            try await db.execute("""
                INSERT INTO breach_evidence (id, obligation_id, breach_id, what, sent_to, sent_at, reference, recorded_by)
                VALUES (\(evidence), \(obligation), \(id), \(what), \(sentTo), \(sentAt), \(reference), \(caller.actor))
                """)
            try await db.execute("""
                UPDATE breach_obligations SET status = 'met', met_at = COALESCE(met_at, \(sentAt)), communicated = true,
                    updated_at = clock_timestamp()
                WHERE id = \(obligation)
                """)
            try await db.execute("""
                INSERT INTO breach_timeline (breach_id, actor, kind, message, details)
                VALUES (\(id), \(caller.actor), 'evidence', \("\(try row.decode(String.self, at: 1)): sent to \(sentTo) at \(APITime.format(sentAt))"),
                        jsonb_build_object('obligation_id', \(obligation.uuidString.lowercased())::text, 'evidence_id', \(evidence.uuidString.lowercased())::text))
                """)
            return APIResponse(.created, EvidenceRecorded(id: evidence.uuidString.lowercased(), obligationId: obligation.uuidString.lowercased(),
                                                          obligationStatus: "met"))
        }
    }

    // MARK: - List

    private func list(_ query: Parameters) async throws -> APIResponse<BreachList> {
        var filter = BreachStore.Filter(limit: try PageCursor.limit(query, default: 50, max: 200))
        if let status = query.get("status") {
            guard BreachStatus(rawValue: status) != nil else {
                throw APIError.invalidParameter("status", rule: "enum", "status is not a breach status")
            }
            filter.status = status
        }
        if let severity = query.get("severity") {
            guard BreachSeverity(rawValue: severity) != nil else {
                throw APIError.invalidParameter("severity", rule: "enum", "severity must be low, medium, high or critical")
            }
            filter.severity = severity
        }
        if let regime = query.get("regime") {
            guard BreachFactRecord.isName(regime) else {
                throw APIError.invalidParameter("regime", rule: "pattern", "regime is a rule id such as gdpr_art33")
            }
            filter.regime = regime
        }
        if let overdue = query.get("overdue") {
            guard overdue == "true" || overdue == "false" else {
                throw APIError.invalidParameter("overdue", rule: "enum", "overdue must be true or false")
            }
            filter.overdue = overdue == "true"
        }
        for name in ["from", "to"] {
            guard let text = query.get(name) else { continue }
            guard let date = APITime.parse(text) else {
                throw APIError.invalidParameter(name, rule: "format", "\(name) must be an RFC 3339 time such as 2026-11-23T10:00:00Z")
            }
            if name == "from" { filter.from = date } else { filter.to = date }
        }
        if let cursor = query.get("cursor") {
            let fields = try PageCursor.decode(cursor, fields: 2)
            guard let micros = Int64(fields[0]), let id = UUID(uuidString: fields[1]) else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            filter.before = (Date(timeIntervalSince1970: Double(micros) / 1e6), id)
        }
        let limit = filter.limit
        filter.limit += 1
        let breaches = try await store.list(filter)
        let page = Array(breaches.prefix(limit))
        let next = breaches.count > limit
            ? page.last.map { PageCursor.encode(["\(PageCursor.micros($0.reportedAt))", $0.id]) } : nil
        return APIResponse(BreachList(breaches: page, nextCursor: next))
    }
}

/// Reads and checks the fact fields a report or an update may carry; every error names the field.
enum BreachInput {
    /// A text field: nil when absent; 422 `required` when blank and `blank` is not allowed,
    /// `length` beyond `max` characters (Unicode scalars, as JSON Schema counts them), `characters`
    /// for U+0000 (PostgreSQL text cannot hold it).
    static func text(_ body: JSONRequestBody, _ name: String, max: Int, blank: Bool = false) throws -> String? {
        try body.text(name, max: max, blank: blank)
    }

    static func requiredText(_ body: JSONRequestBody, _ name: String, max: Int) throws -> String {
        _ = try body.string(name)
        return try text(body, name, max: max)!
    }

    static func date(_ body: JSONRequestBody, _ name: String) throws -> Date? {
        guard let text = try body.optionalString(name) else { return nil }
        guard let date = APITime.parse(text) else {
            throw APIError.invalidField(name, rule: "format", "\(name) must be an RFC 3339 time such as 2026-11-23T10:00:00Z")
        }
        // Jobs carry whole seconds.
        return Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    static func strings(_ body: JSONRequestBody, _ name: String, max: Int) throws -> [String]? {
        guard let value = body.value(name) else { return nil }
        guard case .array(let items) = value else {
            throw APIError(.badRequest, code: "invalid_request", message: "\(name) must be a JSON array", field: name, rule: "type")
        }
        var result: [String] = []
        for item in items {
            guard case .string(let text) = item else {
                throw APIError(.badRequest, code: "invalid_request", message: "\(name) must hold strings", field: name, rule: "type")
            }
            if !result.contains(text) { result.append(text) }
        }
        guard (1...max).contains(items.count) else { throw APIError.invalidField(name, rule: "length", "\(name) must list 1-\(max) values") }
        return result
    }

    static func bool(_ body: JSONRequestBody, _ name: String) throws -> Bool? {
        switch body.value(name) {
        case nil: return nil
        case .bool(let flag)?: return flag
        default: throw APIError(.badRequest, code: "invalid_request", message: "\(name) must be true or false", field: name, rule: "type")
        }
    }

    static func count(_ body: JSONRequestBody, _ name: String) throws -> Int64? {
        guard body.value(name) != nil else { return nil }
        let value = try body.integer(name)
        guard (0...10_000_000_000).contains(value) else {
            throw APIError.invalidField(name, rule: "range", "\(name) must be 0-10,000,000,000")
        }
        return value
    }

    /// The changeable fields present in `body`.
    static func changes(_ body: JSONRequestBody, now: Date) throws -> BreachChanges {
        var changes = BreachChanges()
        if let text = try body.optionalString("severity") {
            guard let severity = BreachSeverity(rawValue: text) else {
                throw APIError.invalidField("severity", rule: "enum", "severity must be low, medium, high or critical")
            }
            changes.severity = severity
        }
        changes.description = try text(body, "description", max: 16_384, blank: true)
        changes.discoveredAt = try date(body, "discovered_at")
        changes.awareAt = try date(body, "aware_at")
        if let categories = try strings(body, "data_categories", max: 16) {
            if let unknown = categories.first(where: { !BreachVocabulary.categories.contains($0) }) {
                throw APIError.invalidField("data_categories", rule: "enum",
                                            "'\(unknown)' is not a data category (known: \(BreachVocabulary.categories.sorted().joined(separator: ", ")))")
            }
            changes.dataCategories = categories
        }
        changes.dataEncrypted = try bool(body, "data_encrypted")
        changes.keyCompromised = try bool(body, "key_compromised")
        changes.recordsAffected = try count(body, "records_affected")
        changes.personsAffected = try count(body, "persons_affected")
        if let jurisdictions = try strings(body, "jurisdictions", max: 300) {
            if let bad = jurisdictions.firstIndex(where: { !BreachVocabulary.isJurisdiction($0) }) {
                throw APIError.invalidField("jurisdictions[\(bad)]", rule: "format",
                                            "jurisdictions are ISO 3166-1 alpha-2 country codes (DE) or US states (US-TX)")
            }
            changes.jurisdictions = jurisdictions
        }
        if let counts = try body.optionalObject("persons_by_jurisdiction") {
            var result: [String: Int64] = [:]
            for (code, value) in counts {
                let field = "persons_by_jurisdiction.\(code)"
                guard BreachVocabulary.isJurisdiction(code) else {
                    throw APIError.invalidField(field, rule: "format", "keys are country codes (DE) or US states (US-TX)")
                }
                switch value {
                case .integer(let number) where (0...10_000_000_000).contains(number): result[code] = number
                default: throw APIError.invalidField(field, rule: "range", "counts are whole numbers 0-10,000,000,000")
                }
            }
            changes.personsByJurisdiction = result
        }
        if let roles = try strings(body, "entity_roles", max: 16) {
            if let unknown = roles.first(where: { !BreachVocabulary.roles.contains($0) }) {
                throw APIError.invalidField("entity_roles", rule: "enum",
                                            "'\(unknown)' is not an entity role (known: \(BreachVocabulary.roles.sorted().joined(separator: ", ")))")
            }
            changes.entityRoles = roles
        }
        return changes
    }

    /// `facts`: an object of fact name → RFC 3339 time.
    static func facts(_ body: JSONRequestBody, now: Date) throws -> [BreachFactRecord] {
        guard let object = try body.optionalObject("facts") else { return [] }
        guard object.count <= 32 else { throw APIError.invalidField("facts", rule: "length", "at most 32 facts at once") }
        return try object.keys.sorted().map { name in
            let field = "facts.\(name)"
            guard BreachFactRecord.isName(name) else {
                throw APIError.invalidField(field, rule: "pattern", "fact names are lower-case letters, digits and _ (such as materiality_determined)")
            }
            guard case .string(let text)? = object[name], let date = APITime.parse(text) else {
                throw APIError.invalidField(field, rule: "format", "a fact's value is the RFC 3339 time it happened")
            }
            guard date <= now.addingTimeInterval(300) else { throw APIError.invalidField(field, rule: "not_future", "a fact cannot happen in the future") }
            return BreachFactRecord(fact: name, occurredAt: Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))
        }
    }

    static func check(discovered: Date, aware: Date, now: Date) throws {
        guard discovered <= now.addingTimeInterval(300) else {
            throw APIError.invalidField("discovered_at", rule: "not_future", "discovered_at cannot be in the future")
        }
        guard aware <= now.addingTimeInterval(300) else {
            throw APIError.invalidField("aware_at", rule: "not_future", "aware_at cannot be in the future")
        }
        guard aware >= discovered else {
            throw APIError.invalidField("aware_at", rule: "order", "aware_at cannot be before discovered_at")
        }
    }

    static func checkCounts(persons: Int64, byJurisdiction: [String: Int64], jurisdictions: [String]) throws {
        if let stray = byJurisdiction.keys.sorted().first(where: { !jurisdictions.contains($0) }) {
            throw APIError.invalidField("persons_by_jurisdiction.\(stray)", rule: "listed", "\(stray) is not one of the breach's jurisdictions")
        }
        if let over = byJurisdiction.sorted(by: { $0.key < $1.key }).first(where: { $0.value > persons }) {
            throw APIError.invalidField("persons_by_jurisdiction.\(over.key)", rule: "range", "a jurisdiction cannot have more persons than persons_affected")
        }
    }
}
