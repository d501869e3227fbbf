import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
public import MingusSecurity
import MingusCore

extension Role {
    /// Changes retention policies, places and releases legal holds, starts sweeps.
    public static let retentionWrite = Role("retention:write")
    /// Reads policies, holds and sweeps.
    public static let retentionRead = Role("retention:read")
}

extension DomainDescription {
    /// Retention policies, legal holds and sweeps that archive, verify and delete.
    public static let retention = DomainDescription(
        name: "retention", roles: [.retentionWrite, .retentionRead], queues: [WorkerQueues(name: "retention")],
        dataInventory: DataTable.retention
    ) { router, gateway in
        router.addRoutes(RetentionRoutes(gateway).collection(), atPath: "/api/financial/retention")
    }
}

/// `/api/financial/retention`: policies (versioned, never under their legal floor), legal holds
/// and sweeps.
public struct RetentionRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher
    let audit: AuditBatcher

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        publisher = gateway.publisher
        audit = gateway.audit
    }

    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .retentionWrite)
        write.post("policies") { request, context in try await savePolicy(request, caller: try context.caller()) }
        write.post("holds") { request, context in try await placeHold(request, caller: try context.caller()) }
        write.post("holds/:id/release") { request, context in
            try await releaseHold(request, id: try context.uuidParameter("id"), caller: try context.caller())
        }
        write.post("cleanup") { request, context in try await startSweep(request, caller: try context.caller()) }
        let read = routes.group(requiring: .retentionRead)
        read.get("policies") { _, _ in APIResponse(PolicyList(policies: try await policies())) }
        read.get("holds") { request, _ in
            let state = request.uri.queryParameters.get("state")
            guard state == nil || state == "active" || state == "all" else {
                throw APIError.invalidParameter("state", rule: "enum", "state must be active or all")
            }
            return APIResponse(HoldList(holds: try await holds(includingReleased: state == "all")))
        }
        read.get("sweeps/:id") { _, context in
            let id = try context.uuidParameter("id")
            guard let sweep = try await sweep(id) else { throw APIError.notFound("no sweep with this id") }
            return APIResponse(sweep)
        }
        return routes
    }

    // MARK: - Policies

    struct Policy: Encodable, Sendable {
        var dataType: String
        var period: String
        var complianceStandard: String
        var legalBasis: String
        var action: String
        var version: Int
        var updatedBy: String
        var updatedAt: Date
    }

    struct PolicyList: Encodable, Sendable {
        var policies: [Policy]
    }

    private func policies() async throws -> [Policy] {
        try await database.query("""
            SELECT data_type, retention::text, compliance_standard, legal_basis, action, version, updated_by, updated_at
            FROM retention_policies ORDER BY data_type
            """).map(Self.policy)
    }

    static func policy(_ row: PostgresRow) throws -> Policy {
        Policy(dataType: try row.decode(String.self, at: 0),
               period: RetentionPeriod(postgres: try row.decode(String.self, at: 1))?.description ?? "",
               complianceStandard: try row.decode(String.self, at: 2), legalBasis: try row.decode(String.self, at: 3),
               action: try row.decode(String.self, at: 4), version: try row.decode(Int.self, at: 5), updatedBy: try row.decode(String.self, at: 6),
               updatedAt: try row.decode(Date.self, at: 7))
    }

    /// Creates a policy for a registered data type, or a new version of one; a changed period
    /// re-dates the rows it covers (a `retention.redate` job).
    private func savePolicy(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<Policy> {
        let body = try await JSONRequestBody.read(request, limit: 16 * 1024,
                                                  allowed: ["data_type", "period", "compliance_standard", "legal_basis", "action"])
        let dataType = try body.string("data_type")
        guard let target = RetentionTarget.named(dataType) else {
            throw APIError.invalidField("data_type", rule: "enum",
                                        "data_type must be one of \(RetentionTarget.all.map(\.dataType).joined(separator: ", "))")
        }
        guard let period = RetentionPeriod(iso8601: try body.string("period")), period.approximateDays >= 1 else {
            throw APIError.invalidField("period", rule: "format", "period is an ISO 8601 duration of years, months and days such as P7Y, P12M or P90D")
        }
        let standard = try text(body, "compliance_standard", max: 64)
        let basis = try text(body, "legal_basis", max: 1024)
        let actionText = try body.optionalString("action") ?? target.actions[0].rawValue
        guard let action = RetentionAction(rawValue: actionText) else {
            throw APIError.invalidField("action", rule: "enum", "action must be one of \(RetentionAction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard target.actions.contains(action) else {
            throw APIError.invalidField("action", rule: "unavailable",
                                        "\(action.rawValue) is not available for \(dataType) (available: \(target.actions.map(\.rawValue).joined(separator: ", ")))")
        }
        if let floor = RetentionFloor.violated(standard: standard, dataType: dataType, period: period) {
            throw APIError.invalidField("period", rule: "legal_floor", "\(period) is shorter than the legal floor \(floor.period) (\(floor.rule))")
        }
        let (saved, previous) = try await database.withTransaction { db -> (Policy, String?) in
            let old = try await db.query("SELECT retention::text FROM retention_policies WHERE data_type = \(dataType) FOR UPDATE")
                .first.map { try $0.decode(String.self, at: 0) }
            let row = try await db.query("""
                INSERT INTO retention_policies (data_type, retention, compliance_standard, legal_basis, action, version, updated_by, updated_at)
                VALUES (\(dataType), \(period.interval)::interval, \(standard), \(basis), \(action.rawValue), 1, \(caller.actor), now())
                ON CONFLICT (data_type) DO UPDATE SET retention = EXCLUDED.retention, compliance_standard = EXCLUDED.compliance_standard,
                    legal_basis = EXCLUDED.legal_basis, action = EXCLUDED.action, version = retention_policies.version + 1,
                    updated_by = EXCLUDED.updated_by, updated_at = now()
                RETURNING data_type, retention::text, compliance_standard, legal_basis, action, version, updated_by, updated_at
                """)[0]
            let policy = try Self.policy(row)
            try await db.execute("""
                INSERT INTO retention_policy_history (data_type, version, retention, compliance_standard, legal_basis, action, changed_by)
                SELECT data_type, version, retention, compliance_standard, legal_basis, action, updated_by FROM retention_policies
                WHERE data_type = \(dataType)
                """)
            return (policy, old)
        }
        try await audit.append(AuditEvent(actor: caller.actor, action: "retention.policy.save", resource: "retention/policies/\(dataType)",
                                          outcome: .success, details: ["version": "\(saved.version)", "period": saved.period,
                                                                       "previous": previous.flatMap { RetentionPeriod(postgres: $0)?.description } ?? "none",
                                                                       "action": saved.action]))
        if previous.flatMap({ RetentionPeriod(postgres: $0) }) != period {
            try await publisher.publish(type: RetentionRedateJob.type, id: "redate/\(dataType)/\(saved.version)",
                                        body: RetentionRedateJob(dataType: dataType, version: saved.version), traceID: nil)
        }
        return APIResponse(.ok, saved)
    }

    // MARK: - Holds

    struct Hold: Encodable, Sendable {
        var id: String
        var scope: String
        @Nullable var subjectId: String?
        @Nullable var resourceId: String?
        @Nullable var dataType: String?
        @Nullable var createdFrom: Date?
        @Nullable var createdTo: Date?
        var reason: String
        var placedBy: String
        var placedAt: Date
        @Nullable var releasedAt: Date?
        @Nullable var releasedBy: String?
        @Nullable var releaseReason: String?
    }

    struct HoldList: Encodable, Sendable {
        var holds: [Hold]
    }

    static let holdColumns = """
        id, scope, subject_id, resource_id, data_type, created_from, created_to, reason, placed_by, placed_at, released_at, released_by, release_reason
        """

    static func hold(_ row: PostgresRow) throws -> Hold {
        Hold(id: try row.decode(UUID.self, at: 0).uuidString.lowercased(), scope: try row.decode(String.self, at: 1),
             subjectId: try row.decode(String?.self, at: 2), resourceId: try row.decode(String?.self, at: 3),
             dataType: try row.decode(String?.self, at: 4), createdFrom: try row.decode(Date?.self, at: 5),
             createdTo: try row.decode(Date?.self, at: 6), reason: try row.decode(String.self, at: 7),
             placedBy: try row.decode(String.self, at: 8), placedAt: try row.decode(Date.self, at: 9),
             releasedAt: try row.decode(Date?.self, at: 10), releasedBy: try row.decode(String?.self, at: 11),
             releaseReason: try row.decode(String?.self, at: 12))
    }

    private func holds(includingReleased: Bool) async throws -> [Hold] {
        try await database.query("""
            SELECT \(unescaped: Self.holdColumns) FROM retention_legal_holds
            WHERE \(includingReleased) OR released_at IS NULL ORDER BY placed_at DESC, id LIMIT 1000
            """).map(Self.hold)
    }

    private func placeHold(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<Hold> {
        let body = try await JSONRequestBody.read(request, limit: 16 * 1024,
                                                  allowed: ["scope", "subject_id", "resource_id", "data_type", "created_from", "created_to", "reason"])
        let scope = try body.string("scope")
        let reason = try text(body, "reason", max: 2048)
        var subject: String?, resource: String?, dataType: String?, from: Date?, to: Date?
        let needed = ["subject": "subject_id", "resource": "resource_id", "data_type": "data_type"][scope]
        if let needed, body.value(needed) == nil {
            throw APIError.invalidField(needed, rule: "required", "a hold of scope \(scope) needs \(needed)")
        }
        switch scope {
        case "subject": subject = try text(body, "subject_id", max: 255)
        case "resource": resource = try text(body, "resource_id", max: 255)
        case "data_type":
            dataType = try body.string("data_type")
            guard RetentionTarget.named(dataType!) != nil else {
                throw APIError.invalidField("data_type", rule: "enum",
                                            "data_type must be one of \(RetentionTarget.all.map(\.dataType).joined(separator: ", "))")
            }
            from = try time(body, "created_from")
            to = try time(body, "created_to")
            if let from, let to, to <= from { throw APIError.invalidField("created_to", rule: "order", "created_to must be after created_from") }
        default:
            throw APIError.invalidField("scope", rule: "enum", "scope must be subject, resource or data_type")
        }
        for (name, value) in [("subject_id", subject), ("resource_id", resource), ("data_type", dataType)] where value == nil {
            guard body.value(name) == nil else {
                throw APIError.invalidField(name, rule: "scope", "\(name) does not belong to a hold of scope \(scope)")
            }
        }
        if scope != "data_type", body.value("created_from") != nil || body.value("created_to") != nil {
            throw APIError.invalidField(body.value("created_from") != nil ? "created_from" : "created_to", rule: "scope",
                                        "a time range belongs to a hold of scope data_type")
        }
        let id = UUID()
        let hold = try await database.query("""
            INSERT INTO retention_legal_holds (id, scope, subject_id, resource_id, data_type, created_from, created_to, reason, placed_by)
            VALUES (\(id), \(scope), \(subject), \(resource), \(dataType), \(from), \(to), \(reason), \(caller.actor))
            RETURNING \(unescaped: Self.holdColumns)
            """).map(Self.hold)[0]
        try await audit.append(AuditEvent(actor: caller.actor, action: "retention.hold.place", resource: "retention/holds/\(hold.id)",
                                          outcome: .success, details: ["scope": scope, "reason": reason]))
        return APIResponse(.created, hold)
    }

    private func releaseHold(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> APIResponse<Hold> {
        let body = try await JSONRequestBody.read(request, limit: 4096, allowed: ["reason"])
        let reason = try text(body, "reason", max: 2048)
        let rows = try await database.query("""
            UPDATE retention_legal_holds SET released_at = now(), released_by = \(caller.actor), release_reason = \(reason)
            WHERE id = \(id) AND released_at IS NULL RETURNING \(unescaped: Self.holdColumns)
            """)
        guard let row = rows.first else {
            let exists = try await !database.query("SELECT 1 FROM retention_legal_holds WHERE id = \(id)").isEmpty
            throw exists ? APIError(.conflict, code: "hold_released", message: "this hold was already released")
                         : APIError.notFound("no legal hold with this id")
        }
        try await audit.append(AuditEvent(actor: caller.actor, action: "retention.hold.release", resource: "retention/holds/\(id.uuidString.lowercased())",
                                          outcome: .success, details: ["reason": reason]))
        return APIResponse(try Self.hold(row))
    }

    // MARK: - Sweeps

    struct SweepAccepted: Encodable, Sendable {
        var id: String
        var status = "queued"
        var statusUrl: String
    }

    struct Sweep: Encodable, Sendable {
        var id: String
        @Nullable var dataTypes: [String]?
        var dryRun: Bool
        var requestedBy: String
        var status: String
        @Nullable var error: String?
        var createdAt: Date
        @Nullable var startedAt: Date?
        @Nullable var finishedAt: Date?
        var results: [Result]

        struct Result: Encodable, Sendable {
            var dataType: String
            var action: String
            var eligible: Int64
            var held: Int64
            var archived: Int64
            var deleted: Int64
            var bytes: Int64
            var durationMs: Int64
            var finished: Bool
        }
    }

    private func startSweep(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<SweepAccepted> {
        let body = try await JSONRequestBody.read(request, limit: 4096, allowed: ["data_types", "dry_run"])
        var dataTypes: [String]?
        if let value = body.value("data_types") {
            guard case .array(let items) = value, !items.isEmpty, items.count <= 32 else {
                throw APIError.invalidField("data_types", rule: "type", "data_types is a list of 1-32 data types")
            }
            dataTypes = try items.map { item in
                guard case .string(let name) = item, RetentionTarget.named(name) != nil else {
                    throw APIError.invalidField("data_types", rule: "enum",
                                                "data_types may name \(RetentionTarget.all.map(\.dataType).joined(separator: ", "))")
                }
                return name
            }
        }
        var dryRun = false
        switch body.value("dry_run") {
        case nil: break
        case .bool(let flag)?: dryRun = flag
        default: throw APIError(.badRequest, code: "invalid_request", message: "dry_run must be true or false", field: "dry_run", rule: "type")
        }
        let id = UUID()
        try await database.execute("""
            INSERT INTO retention_sweeps (id, data_types, dry_run, requested_by) VALUES (\(id), \(dataTypes)::text[], \(dryRun), \(caller.actor))
            """)
        do {
            try await publisher.publish(type: RetentionSweepJob.type, id: "sweep/\(id.uuidString.lowercased())",
                                        body: RetentionSweepJob(sweepId: id), traceID: nil)
        } catch {
            _ = try? await database.execute("UPDATE retention_sweeps SET status = 'failed', error = 'not queued: the broker refused it' WHERE id = \(id)")
            throw error
        }
        let path = "/api/financial/retention/sweeps/\(id.uuidString.lowercased())"
        return APIResponse(.accepted, SweepAccepted(id: id.uuidString.lowercased(), statusUrl: path), headers: [.location: path])
    }

    private func sweep(_ id: UUID) async throws -> Sweep? {
        guard let row = try await database.query("""
            SELECT data_types, dry_run, requested_by, status, error, created_at, started_at, finished_at FROM retention_sweeps WHERE id = \(id)
            """).first else { return nil }
        let results = try await database.query("""
            SELECT data_type, action, eligible, held, archived, deleted, bytes, duration_ms, finished
            FROM retention_sweep_results WHERE sweep_id = \(id) ORDER BY data_type
            """).map { row in
            Sweep.Result(dataType: try row.decode(String.self, at: 0), action: try row.decode(String.self, at: 1),
                         eligible: try row.decode(Int64.self, at: 2), held: try row.decode(Int64.self, at: 3),
                         archived: try row.decode(Int64.self, at: 4), deleted: try row.decode(Int64.self, at: 5),
                         bytes: try row.decode(Int64.self, at: 6), durationMs: try row.decode(Int64.self, at: 7),
                         finished: try row.decode(Bool.self, at: 8))
        }
        return Sweep(id: id.uuidString.lowercased(), dataTypes: try row.decode([String]?.self, at: 0), dryRun: try row.decode(Bool.self, at: 1),
                     requestedBy: try row.decode(String.self, at: 2), status: try row.decode(String.self, at: 3),
                     error: try row.decode(String?.self, at: 4), createdAt: try row.decode(Date.self, at: 5),
                     startedAt: try row.decode(Date?.self, at: 6), finishedAt: try row.decode(Date?.self, at: 7), results: results)
    }

    // MARK: - Fields

    /// A required, non-blank text field of at most `max` characters, without U+0000.
    private func text(_ body: JSONRequestBody, _ name: String, max: Int) throws -> String {
        _ = try body.string(name)
        return try body.text(name, max: max)!
    }

    private func time(_ body: JSONRequestBody, _ name: String) throws -> Date? {
        guard let text = try body.optionalString(name) else { return nil }
        guard let date = APITime.parse(text) else {
            throw APIError.invalidField(name, rule: "format", "\(name) must be an RFC 3339 time such as 2026-11-23T10:00:00Z")
        }
        return date
    }
}
