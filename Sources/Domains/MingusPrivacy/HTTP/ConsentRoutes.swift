import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
import MingusSecurity

/// `/api/gdpr/purposes`, `/consents…`, `/cookies…`, `/policies…`: processing purposes, consent
/// given and withdrawn (append-only, the latest entry is the state), cookie consent with the
/// banner's configuration, and versioned privacy and cookie policies. Written here, in the
/// gateway, so that a consent withdrawn holds for the next ``ConsentLedger/mayProcess(_:for:on:)``.
public struct ConsentRoutes: Sendable {
    let database: PostgresClient

    public init(_ gateway: GatewayServices) {
        database = gateway.database
    }

    static let bodyLimit = 16 * 1024
    static let policyLimit = 256 * 1024

    /// The routes, to mount at `/api/gdpr`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .privacyWrite)
        let read = routes.group(requiring: .privacyRead)
        read.get("purposes") { _, _ in APIResponse(PurposeList(purposes: try await purposes())) }
        write.post("purposes") { request, context in try await addPurpose(request, caller: try context.caller()) }
        write.post("consents") { request, context in try await recordConsent(request, caller: try context.caller()) }
        read.get("consents/:subject_id") { _, context in
            let subject = try PrivacyInput.subjectParameter(context.parameters.get("subject_id"))
            return APIResponse(SubjectConsents(subjectId: subject, consents: try await database.withConnection { try await ConsentLedger.current(subject, on: $0) }))
        }
        read.get("consents/:subject_id/history") { request, context in
            try await history(try PrivacyInput.subjectParameter(context.parameters.get("subject_id")), query: request.uri.queryParameters)
        }
        read.get("consents/:subject_id/check") { request, context in
            let subject = try PrivacyInput.subjectParameter(context.parameters.get("subject_id"))
            guard let purpose = request.uri.queryParameters.get("purpose"), PrivacyInput.isName(purpose) else {
                throw APIError.invalidParameter("purpose", rule: "format", "purpose must name a purpose (lower-case letters, digits and _)")
            }
            let decision = try await ConsentLedger.mayProcess(subject, for: purpose, on: database)
            return APIResponse(Check(subjectId: subject, purpose: purpose, allowed: decision.allowed, reason: decision.reason))
        }
        read.get("cookies/banner") { _, _ in APIResponse(try await banner()) }
        write.post("cookies/consents") { request, context in try await recordCookies(request, caller: try context.caller()) }
        read.get("cookies/consents/:visitor_id") { _, context in
            let visitor = try Self.visitorParameter(context.parameters.get("visitor_id"))
            guard let state = try await cookieState(visitor) else { throw APIError.notFound("no cookie consent recorded for this visitor") }
            return APIResponse(state)
        }
        write.post("policies") { request, context in try await draftPolicy(request, caller: try context.caller()) }
        read.get("policies") { request, _ in try await listPolicies(request.uri.queryParameters) }
        read.get("policies/:kind/:version") { _, context in
            let (kind, version) = try Self.policyParameters(context)
            guard let policy = try await policy(kind, version) else { throw APIError.notFound("no \(kind) policy version \(version)") }
            return APIResponse(policy)
        }
        write.post("policies/:kind/:version/publish") { _, context in
            let (kind, version) = try Self.policyParameters(context)
            return try await publish(kind, version, caller: try context.caller())
        }
        return routes
    }

    // MARK: - Answers

    struct Purpose: Codable, Sendable {
        var purpose: String
        var description: String
        var legalBasis: String
        var dataCategories: [String]
        var recipients: [String]
        var retention: String
    }

    struct PurposeList: Encodable, Sendable { var purposes: [Purpose] }

    struct SubjectConsents: Encodable, Sendable {
        var subjectId: String
        var consents: [ConsentState]
    }

    struct ConsentRecorded: Encodable, Sendable {
        var id: Int64
        var subjectId: String
        var purpose: String
        var state: String
        var source: String
        var policyVersion: Int
        var occurredAt: Date
    }

    struct History: Encodable, Sendable {
        var subjectId: String
        var events: [ConsentEvent]
        var nextCursor: String?
    }

    struct Check: Encodable, Sendable {
        var subjectId: String
        var purpose: String
        var allowed: Bool
        var reason: String
    }

    struct CookieCategory: Encodable, Sendable {
        var category: String
        var title: String
        var description: String
        var required: Bool
    }

    struct Banner: Encodable, Sendable {
        var policyVersion: Int?
        var policyTitle: String?
        var categories: [CookieCategory]
        var defaultCategories: [String]
        var buttons: [String]
        var reconsentAfterDays: Int
    }

    struct CookieState: Encodable, Sendable {
        var visitorId: String
        var categories: [String]
        var policyVersion: Int
        var source: String
        var occurredAt: Date
        var needsRenewal: Bool
    }

    struct Policy: Encodable, Sendable {
        var kind: String
        var version: Int
        var status: String
        var title: String
        var body: String
        var material: Bool
        var summary: String
        var createdBy: String
        var createdAt: Date
        var publishedAt: Date?
        var retiredAt: Date?
    }

    struct PolicyList: Encodable, Sendable { var policies: [Policy] }

    struct Published: Encodable, Sendable {
        var policy: Policy
        var retiredVersion: Int?
        /// Consents given under older versions that now need renewal (a material change).
        var consentsNeedingRenewal: Int64
    }

    // MARK: - Purposes

    private func purposes() async throws -> [Purpose] {
        try await database.query("""
            SELECT purpose, description, legal_basis, data_categories, recipients, retention FROM privacy_purposes ORDER BY purpose
            """).map { row in
            Purpose(purpose: try row.decode(String.self, at: 0), description: try row.decode(String.self, at: 1),
                    legalBasis: try row.decode(String.self, at: 2), dataCategories: try row.decode([String].self, at: 3),
                    recipients: try row.decode([String].self, at: 4), retention: try row.decode(String.self, at: 5))
        }
    }

    static let legalBases = ["consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"]

    private func addPurpose(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<Purpose> {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit,
                                                  allowed: ["purpose", "description", "legal_basis", "data_categories", "recipients", "retention"])
        let name = try body.string("purpose")
        guard PrivacyInput.isName(name) else {
            throw APIError.invalidField("purpose", rule: "format", "purpose must be 2-64 lower-case letters, digits and _, starting with a letter")
        }
        let description = try PrivacyInput.text(body, "description", max: 1024)
        let basis = try PrivacyInput.oneOf(try body.optionalString("legal_basis") ?? "consent", "legal_basis", Self.legalBases)
        let categories = try PrivacyInput.strings(body, "data_categories") ?? []
        let recipients = try PrivacyInput.strings(body, "recipients") ?? []
        for (field, list) in [("data_categories", categories), ("recipients", recipients)] {
            guard list.count <= 32, list.allSatisfy({ (1...128).contains($0.unicodeScalars.count) && !$0.contains("\0") }) else {
                throw APIError.invalidField(field, rule: "length", "\(field) holds at most 32 entries of 1-128 characters")
            }
        }
        let retention = try body.text("retention", max: 256) ?? "until consent is withdrawn"
        let purpose = Purpose(purpose: name, description: description, legalBasis: basis, dataCategories: categories,
                              recipients: recipients, retention: retention)
        let inserted = try await database.withTransaction { db in
            let rows = try await db.query("""
                INSERT INTO privacy_purposes (purpose, description, legal_basis, data_categories, recipients, retention)
                VALUES (\(name), \(description), \(basis), \(categories), \(recipients), \(retention)) ON CONFLICT (purpose) DO NOTHING RETURNING 1
                """)
            if !rows.isEmpty {
                _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "privacy.purpose.add", resource: "privacy/purposes/\(name)",
                                                           outcome: .success, details: ["legal_basis": basis]), component: "privacy", on: db)
            }
            return !rows.isEmpty
        }
        guard inserted else { throw APIError(.conflict, code: "purpose_exists", message: "this purpose exists already", field: "purpose", rule: "unique") }
        return APIResponse(.created, purpose)
    }

    // MARK: - Consent

    static let consentFields: Set<String> = ["subject_id", "purpose", "granted", "source", "policy_version", "occurred_at"]

    /// One call gives or withdraws (`granted`); the version of the privacy policy shown is the
    /// published one unless given.
    private func recordConsent(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<ConsentRecorded> {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.consentFields)
        let subject = try PrivacyInput.subject(body)
        let purpose = try body.string("purpose")
        guard let granted = try PrivacyInput.bool(body, "granted") else {
            throw APIError(.badRequest, code: "invalid_request", message: "granted is required", field: "granted", rule: "required")
        }
        let source = try PrivacyInput.text(body, "source", max: 128)
        let version = try PrivacyInput.integer(body, "policy_version", 1...1_000_000).map(Int.init)
        let now = Date()
        let occurred = try PrivacyInput.date(body, "occurred_at") ?? now
        guard occurred <= now.addingTimeInterval(300) else {
            throw APIError.invalidField("occurred_at", rule: "not_future", "occurred_at cannot be in the future")
        }
        return try await database.withTransaction { db in
            guard try await !db.query("SELECT 1 FROM privacy_purposes WHERE purpose = \(purpose)").isEmpty else {
                throw APIError.invalidField("purpose", rule: "unknown", "purpose is not a known purpose (GET /api/gdpr/purposes lists them)")
            }
            let shown = try await Self.policyVersionShown(version, kind: "privacy", on: db)
            let id = try await ConsentLedger.record(subject: subject, purpose: purpose, granted: granted, source: source, policyVersion: shown,
                                                    occurredAt: occurred, actor: caller.actor, on: db)
            return APIResponse(.created, ConsentRecorded(id: id, subjectId: subject, purpose: purpose, state: granted ? "given" : "withdrawn",
                                                         source: source, policyVersion: shown, occurredAt: occurred))
        }
    }

    private func history(_ subject: String, query: Parameters) async throws -> APIResponse<History> {
        let limit = try PageCursor.limit(query, default: 100, max: 500)
        var after: Int64 = 0
        if let cursor = query.get("cursor") {
            guard let value = Int64(try PageCursor.decode(cursor, fields: 1)[0]), value >= 0 else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            after = value
        }
        let events = try await database.withConnection { try await ConsentLedger.history(subject, after: after, limit: limit + 1, on: $0) }
        let page = Array(events.prefix(limit))
        return APIResponse(History(subjectId: subject, events: page,
                                   nextCursor: events.count > limit ? page.last.map { PageCursor.encode(["\($0.id)"]) } : nil))
    }

    // MARK: - Cookies

    private func categories() async throws -> [CookieCategory] {
        try await database.query("SELECT category, title, description, required FROM privacy_cookie_categories ORDER BY position").map { row in
            CookieCategory(category: try row.decode(String.self, at: 0), title: try row.decode(String.self, at: 1),
                           description: try row.decode(String.self, at: 2), required: try row.decode(Bool.self, at: 3))
        }
    }

    private func banner() async throws -> Banner {
        let categories = try await categories()
        let policy = try await database.query("SELECT version, title FROM privacy_policies WHERE kind = 'cookie' AND status = 'published'").first
        return Banner(policyVersion: try policy?.decode(Int.self, at: 0), policyTitle: try policy?.decode(String.self, at: 1),
                      categories: categories, defaultCategories: categories.filter(\.required).map(\.category),
                      buttons: ["accept_all", "reject_all", "customise"], reconsentAfterDays: 365)
    }

    static func visitorParameter(_ text: String?) throws -> String {
        guard let text = text?.removingPercentEncoding, isIdentifier(text, length: 1...128, extra: "._:-") else {
            throw APIError.invalidParameter("visitor_id", rule: "format", "visitor_id must be 1-128 of A-Z, a-z, 0-9, '.', '_', ':' and '-'")
        }
        return text
    }

    private func recordCookies(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<CookieState> {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit,
                                                  allowed: ["visitor_id", "subject_id", "categories", "source", "policy_version", "occurred_at"])
        let visitor = try body.string("visitor_id")
        guard isIdentifier(visitor, length: 1...128, extra: "._:-") else {
            throw APIError.invalidField("visitor_id", rule: "format", "visitor_id must be 1-128 of A-Z, a-z, 0-9, '.', '_', ':' and '-'")
        }
        let subject = body.value("subject_id") == nil ? nil : try PrivacyInput.subject(body)
        guard let chosen = try PrivacyInput.strings(body, "categories") else {
            throw APIError(.badRequest, code: "invalid_request", message: "categories is required", field: "categories", rule: "required")
        }
        guard chosen.count <= 16 else { throw APIError.invalidField("categories", rule: "length", "categories holds at most 16 entries") }
        let source = try PrivacyInput.text(body, "source", max: 128)
        let version = try PrivacyInput.integer(body, "policy_version", 1...1_000_000).map(Int.init)
        let now = Date()
        let occurred = try PrivacyInput.date(body, "occurred_at") ?? now
        guard occurred <= now.addingTimeInterval(300) else {
            throw APIError.invalidField("occurred_at", rule: "not_future", "occurred_at cannot be in the future")
        }
        let known = try await categories()
        guard chosen.allSatisfy({ name in known.contains { $0.category == name } }) else {
            throw APIError.invalidField("categories", rule: "enum", "categories must be among \(known.map(\.category).joined(separator: ", "))")
        }
        // Strictly necessary cookies are not a choice.
        let stored = known.filter { $0.required || chosen.contains($0.category) }.map(\.category)
        return try await database.withTransaction { db in
            let shown = try await Self.policyVersionShown(version, kind: "cookie", on: db)
            try await db.execute("""
                INSERT INTO privacy_cookie_consents (visitor_id, subject_id, categories, policy_version, source, occurred_at, recorded_by)
                VALUES (\(visitor), \(subject), \(stored), \(shown), \(source), \(occurred), \(caller.actor))
                """)
            return APIResponse(.created, CookieState(visitorId: visitor, categories: stored, policyVersion: shown, source: source,
                                                     occurredAt: occurred, needsRenewal: false))
        }
    }

    private func cookieState(_ visitor: String) async throws -> CookieState? {
        try await database.query("""
            SELECT categories, policy_version, source, occurred_at,
                   policy_version < coalesce((SELECT max(version) FROM privacy_policies WHERE kind = 'cookie' AND material AND published_at IS NOT NULL), 0)
            FROM privacy_cookie_consents WHERE visitor_id = \(visitor) ORDER BY id DESC LIMIT 1
            """).first.map { row in
            CookieState(visitorId: visitor, categories: try row.decode([String].self, at: 0), policyVersion: try row.decode(Int.self, at: 1),
                        source: try row.decode(String.self, at: 2), occurredAt: try row.decode(Date.self, at: 3), needsRenewal: try row.decode(Bool.self, at: 4))
        }
    }

    // MARK: - Policies

    static let policyColumns = "kind, version, status, title, body, material, summary, created_by, created_at, published_at, retired_at"

    static func policy(_ row: PostgresRow) throws -> Policy {
        Policy(kind: try row.decode(String.self, at: 0), version: try row.decode(Int.self, at: 1), status: try row.decode(String.self, at: 2),
               title: try row.decode(String.self, at: 3), body: try row.decode(String.self, at: 4), material: try row.decode(Bool.self, at: 5),
               summary: try row.decode(String.self, at: 6), createdBy: try row.decode(String.self, at: 7), createdAt: try row.decode(Date.self, at: 8),
               publishedAt: try row.decode(Date?.self, at: 9), retiredAt: try row.decode(Date?.self, at: 10))
    }

    static func policyParameters(_ context: APIRequestContext) throws -> (String, Int) {
        guard let kind = context.parameters.get("kind"), ["privacy", "cookie"].contains(kind) else {
            throw APIError.invalidParameter("kind", rule: "enum", "kind must be privacy or cookie")
        }
        guard let text = context.parameters.get("version"), let version = Int(text), (1...1_000_000).contains(version) else {
            throw APIError.invalidParameter("version", rule: "range", "version must be a whole number from 1 to 1000000")
        }
        return (kind, version)
    }

    private func policy(_ kind: String, _ version: Int) async throws -> Policy? {
        try await database.query("""
            SELECT \(unescaped: Self.policyColumns) FROM privacy_policies WHERE kind = \(kind) AND version = \(version)
            """).first.map(Self.policy)
    }

    private func draftPolicy(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<Policy> {
        let body = try await JSONRequestBody.read(request, limit: Self.policyLimit, allowed: ["kind", "title", "body", "material", "summary"])
        let kind = try PrivacyInput.oneOf(try body.string("kind"), "kind", ["privacy", "cookie"])
        let title = try PrivacyInput.text(body, "title", max: 256)
        let text = try PrivacyInput.text(body, "body", max: 200_000)
        let material = try PrivacyInput.bool(body, "material") ?? false
        let summary = try body.text("summary", max: 2048, blank: true) ?? ""
        let policy = try await database.withTransaction { db -> Policy in
            try await db.execute("SELECT pg_advisory_xact_lock(hashtext('privacy_policies'), hashtext(\(kind)))")
            let row = try await db.query("""
                INSERT INTO privacy_policies (kind, version, title, body, material, summary, created_by)
                SELECT \(kind), coalesce(max(version), 0) + 1, \(title), \(text), \(material), \(summary), \(caller.actor)
                FROM privacy_policies WHERE kind = \(kind)
                RETURNING \(unescaped: Self.policyColumns)
                """)[0]
            return try Self.policy(row)
        }
        return APIResponse(.created, policy)
    }

    private func listPolicies(_ query: Parameters) async throws -> APIResponse<PolicyList> {
        var kind: String?
        if let text = query.get("kind") {
            guard ["privacy", "cookie"].contains(text) else { throw APIError.invalidParameter("kind", rule: "enum", "kind must be privacy or cookie") }
            kind = text
        }
        let rows = try await database.query("""
            SELECT \(unescaped: Self.policyColumns) FROM privacy_policies WHERE (\(kind)::text IS NULL OR kind = \(kind)) ORDER BY kind, version DESC
            """)
        return APIResponse(PolicyList(policies: try rows.map(Self.policy)))
    }

    /// Publishes a draft: the published version of the kind is retired; a material change makes
    /// consents given under older versions need renewal (derived from the versions, so it also
    /// holds for consents recorded later under an old version).
    private func publish(_ kind: String, _ version: Int, caller: APIKeyIdentity) async throws -> APIResponse<Published> {
        try await database.withTransaction { db in
            guard let status = try await db.query("""
                SELECT status FROM privacy_policies WHERE kind = \(kind) AND version = \(version) FOR UPDATE
                """).first?.decode(String.self, at: 0) else { throw APIError.notFound("no \(kind) policy version \(version)") }
            guard status == "draft" else {
                throw APIError(.conflict, code: "policy_not_draft", message: "only a draft can be published; this version is \(status)")
            }
            let retired = try await db.query("""
                UPDATE privacy_policies SET status = 'retired', retired_at = now() WHERE kind = \(kind) AND status = 'published' RETURNING version
                """).first?.decode(Int.self, at: 0)
            let row = try await db.query("""
                UPDATE privacy_policies SET status = 'published', published_at = now() WHERE kind = \(kind) AND version = \(version)
                RETURNING \(unescaped: Self.policyColumns)
                """)[0]
            let policy = try Self.policy(row)
            var renewals: Int64 = 0
            if policy.material {
                renewals = kind == "privacy"
                    ? try await db.query("""
                        SELECT count(*) FROM (SELECT DISTINCT ON (subject_id, purpose) granted, policy_version FROM privacy_consent_events
                                              ORDER BY subject_id, purpose, id DESC) c WHERE c.granted AND c.policy_version < \(version)
                        """)[0].decode(Int64.self, at: 0)
                    : try await db.query("""
                        SELECT count(*) FROM (SELECT DISTINCT ON (visitor_id) policy_version FROM privacy_cookie_consents
                                              ORDER BY visitor_id, id DESC) c WHERE c.policy_version < \(version)
                        """)[0].decode(Int64.self, at: 0)
            }
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "privacy.policy.publish", resource: "privacy/policies/\(kind)/\(version)",
                                                       outcome: .success, details: ["material": "\(policy.material)", "renewals": "\(renewals)"]),
                                            component: "privacy", on: db)
            return APIResponse(Published(policy: policy, retiredVersion: retired, consentsNeedingRenewal: renewals))
        }
    }
}

extension ConsentRoutes {
    /// The version of the `kind` policy (`privacy`, `cookie`) a consent was given under: the one
    /// the caller names, which must have been published, or else the one published now.
    static func policyVersionShown(_ version: Int?, kind: String, on db: PostgresConnection) async throws -> Int {
        if let version {
            guard try await !db.query("""
                SELECT 1 FROM privacy_policies WHERE kind = \(kind) AND version = \(version) AND published_at IS NOT NULL
                """).isEmpty else {
                throw APIError.invalidField("policy_version", rule: "unknown", "policy_version is not a published \(kind) policy version")
            }
            return version
        }
        guard let current = try await db.query("SELECT version FROM privacy_policies WHERE kind = \(kind) AND status = 'published'")
            .first?.decode(Int.self, at: 0) else {
            throw APIError.invalidField("policy_version", rule: "required", "no \(kind) policy is published: give the policy_version shown")
        }
        return current
    }
}
