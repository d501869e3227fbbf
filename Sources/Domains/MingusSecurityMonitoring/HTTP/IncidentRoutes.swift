import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
import MingusSecurity

/// `/api/security…`: incidents (list, open by hand, read with steps and timeline, status,
/// assignee and severity, decisions on playbook steps), the gateway's blocks (list, lift), and
/// the security dashboard.
///
/// Opening is a `security.detection` job of kind `manual` (202 with the incident's id): the
/// security worker opens it and applies its playbook. Status, assignee, severity and step
/// decisions are written here under a lock on the incident's row; a decision that lets the
/// playbook go on publishes a `security.step` job.
public struct IncidentRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        publisher = gateway.publisher
    }

    static let bodyLimit = 64 * 1024

    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .securityWrite)
        write.post("incidents") { request, context in try await open(request, caller: try context.caller()) }
        write.patch("incidents/:id") { request, context in
            APIResponse(try await change(request, id: try context.uuidParameter("id"), caller: try context.caller()))
        }
        write.post("incidents/:id/status") { request, context in
            APIResponse(try await changeStatus(request, id: try context.uuidParameter("id"), caller: try context.caller()))
        }
        write.post("incidents/:id/steps/:position") { request, context in
            guard let text = context.parameters.get("position"), let position = Int(text), (1...1000).contains(position) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "position must be a whole number from 1", field: "position", rule: "format")
            }
            return APIResponse(try await decide(request, id: try context.uuidParameter("id"), position: position, caller: try context.caller()))
        }
        write.delete("blocks/:address") { _, context in
            guard let address = context.parameters.get("address")?.removingPercentEncoding, address.count <= 64, IncidentEngine.isAddress(address) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "address must be an IPv4 or IPv6 address", field: "address", rule: "format")
            }
            return APIResponse(try await liftBlock(address, caller: try context.caller(), origin: context.origin))
        }
        let read = routes.group(requiring: .securityRead)
        read.get("incidents") { request, _ in APIResponse(try await list(request.uri.queryParameters)) }
        read.get("incidents/:id") { _, context in
            let id = try context.uuidParameter("id")
            guard let incident = try await incident(id) else { throw Self.notFound(id) }
            return APIResponse(incident)
        }
        read.get("blocks") { _, _ in APIResponse(try await blocks()) }
        read.get("dashboard") { _, _ in APIResponse(try await dashboard()) }
        return routes
    }

    static func notFound(_ id: UUID) -> APIError { .notFound("incident \(id.uuidString.lowercased()) does not exist") }

    // MARK: - Answers

    struct Accepted: Encodable, Sendable {
        var id: String
        var status = "accepted"
        var statusUrl: String
    }

    struct Step: Encodable, Sendable {
        var position: Int
        var name: String
        var action: String
        var requiresApproval: Bool
        var status: String
        @Nullable var approvedBy: String?
        @Nullable var doneAt: Date?
        @Nullable var result: String?
    }

    struct Event: Encodable, Sendable {
        var at: Date
        var actor: String
        var kind: String
        var detail: String
    }

    struct Incident: Encodable, Sendable {
        var id: String
        var kind: String
        var title: String
        var summary: String
        var severity: String
        var status: String
        @Nullable var assignee: String?
        @Nullable var sourceAddress: String?
        @Nullable var service: String?
        @Nullable var playbook: String?
        var detections: Int64
        var openedBy: String
        var openedAt: Date
        var lastDetectedAt: Date
        @Nullable var acknowledgedAt: Date?
        @Nullable var containedAt: Date?
        @Nullable var closedAt: Date?
        var steps: [Step]?
        var timeline: [Event]?
    }

    struct IncidentList: Encodable, Sendable {
        var incidents: [Incident]
        @Nullable var nextCursor: String?
    }

    static let columns = """
        id, kind, title, summary, severity, status, assignee, source_address, service, playbook, detections, opened_by, opened_at,
        last_detected_at, acknowledged_at, contained_at, closed_at
        """

    static func incident(_ row: PostgresRow) throws -> Incident {
        Incident(
            id: try row.decode(UUID.self, at: 0).uuidString.lowercased(), kind: try row.decode(String.self, at: 1),
            title: try row.decode(String.self, at: 2), summary: try row.decode(String.self, at: 3), severity: try row.decode(String.self, at: 4),
            status: try row.decode(String.self, at: 5), assignee: try row.decode(String?.self, at: 6),
            sourceAddress: try row.decode(String?.self, at: 7), service: try row.decode(String?.self, at: 8),
            playbook: try row.decode(String?.self, at: 9), detections: try row.decode(Int64.self, at: 10), openedBy: try row.decode(String.self, at: 11),
            openedAt: try row.decode(Date.self, at: 12), lastDetectedAt: try row.decode(Date.self, at: 13),
            acknowledgedAt: try row.decode(Date?.self, at: 14), containedAt: try row.decode(Date?.self, at: 15), closedAt: try row.decode(Date?.self, at: 16))
    }

    func incident(_ id: UUID) async throws -> Incident? {
        try await database.withConnection { db in
            guard let row = try await db.query("SELECT \(unescaped: Self.columns) FROM security_incidents WHERE id = \(id)").first else { return nil }
            var incident = try Self.incident(row)
            incident.steps = try await db.query("""
                SELECT position, name, action, requires_approval, status, approved_by, done_at, result FROM security_incident_steps
                WHERE incident_id = \(id) ORDER BY position
                """).map {
                Step(position: try $0.decode(Int.self, at: 0), name: try $0.decode(String.self, at: 1), action: try $0.decode(String.self, at: 2),
                     requiresApproval: try $0.decode(Bool.self, at: 3), status: try $0.decode(String.self, at: 4),
                     approvedBy: try $0.decode(String?.self, at: 5), doneAt: try $0.decode(Date?.self, at: 6), result: try $0.decode(String?.self, at: 7))
            }
            incident.timeline = try await db.query("""
                SELECT at, actor, kind, detail FROM security_incident_events WHERE incident_id = \(id) ORDER BY id LIMIT 1000
                """).map {
                Event(at: try $0.decode(Date.self, at: 0), actor: try $0.decode(String.self, at: 1), kind: try $0.decode(String.self, at: 2),
                      detail: try $0.decode(String.self, at: 3))
            }
            return incident
        }
    }

    func list(_ query: Parameters) async throws -> IncidentList {
        let limit = try PageCursor.limit(query, default: 50, max: 500)
        let status = query.get("status")
        if let status, IncidentStatus(rawValue: status) == nil {
            throw APIError.invalidParameter("status", rule: "enum", "status must be one of \(IncidentStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let severity = query.get("severity")
        if let severity, IncidentSeverity(rawValue: severity) == nil {
            throw APIError.invalidParameter("severity", rule: "enum", "severity must be one of low, medium, high, critical")
        }
        var after: (Int64, String)?
        if let cursor = query.get("cursor") {
            let fields = try PageCursor.decode(cursor, fields: 2)
            guard let micros = Int64(fields[0]), UUID(uuidString: fields[1]) != nil else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            after = (micros, fields[1])
        }
        let rows = try await database.query("""
            SELECT \(unescaped: Self.columns) FROM security_incidents
            WHERE (\(status)::text IS NULL OR status = \(status)::text) AND (\(severity)::text IS NULL OR severity = \(severity)::text)
              AND (\(after?.0)::bigint IS NULL OR (opened_at, id) < (to_timestamp(\(after?.0)::float8 / 1e6), \(after?.1)::uuid))
            ORDER BY opened_at DESC, id DESC LIMIT \(limit + 1)
            """)
        var incidents = try rows.prefix(limit).map(Self.incident)
        var next: String?
        if rows.count > limit, let last = incidents.last {
            next = PageCursor.encode([String(PageCursor.micros(last.openedAt)), last.id])
        }
        incidents = incidents.map { var one = $0; one.steps = nil; one.timeline = nil; return one }
        return IncidentList(incidents: incidents, nextCursor: next)
    }

    // MARK: - Changes

    func open(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<Accepted> {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit,
                                                  allowed: ["title", "summary", "severity", "kind", "source_address", "service", "api_key"])
        guard let title = try body.text("title", max: 256) else { throw APIError.invalidField("title", rule: "required", "title is required") }
        let summary = try body.text("summary", max: 16_384, blank: true) ?? ""
        guard let severityText = try body.optionalString("severity") else { throw APIError.invalidField("severity", rule: "required", "severity is required") }
        guard let severity = IncidentSeverity(rawValue: severityText) else {
            throw APIError.invalidField("severity", rule: "enum", "severity must be one of low, medium, high, critical")
        }
        let kind = try body.optionalString("kind") ?? "manual"
        if let address = try body.optionalString("source_address"), address.count > 64 {
            throw APIError.invalidField("source_address", rule: "length", "source_address must have at most 64 characters")
        }
        guard (2...64).contains(kind.unicodeScalars.count), let first = kind.unicodeScalars.first, ("a"..."z").contains(first),
              kind.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "." }) else {
            throw APIError.invalidField("kind", rule: "format", "kind must be lower-case letters, digits, _ and . (2-64)")
        }
        let address = try body.optionalString("source_address")
        if let address, !IncidentEngine.isAddress(address) {
            throw APIError.invalidField("source_address", rule: "format", "source_address must be an IPv4 or IPv6 address")
        }
        let service = try body.text("service", max: 256, blank: true)
        let apiKey = try body.text("api_key", max: 256, blank: true)
        let id = UUID()
        let text = id.uuidString.lowercased()
        let job = SecurityDetectionJob(
            kind: kind, severity: severity, dedupKey: "manual:\(text)", title: title, summary: summary, service: service,
            sourceAddress: address, apiKey: apiKey, incidentId: id, detectedAt: Date(), reportedBy: caller.actor)
        try await publisher.publish(type: SecurityDetectionJob.type, id: "manual/\(text)", body: job, traceID: nil)
        return APIResponse(.accepted, Accepted(id: text, statusUrl: "/api/security/incidents/\(text)"))
    }

    func change(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> Incident {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["assignee", "severity"])
        let assignee = try body.text("assignee", max: 256)
        let severity = try body.optionalString("severity")
        if let severity, IncidentSeverity(rawValue: severity) == nil {
            throw APIError.invalidField("severity", rule: "enum", "severity must be one of low, medium, high, critical")
        }
        guard assignee != nil || severity != nil else {
            throw APIError.invalidField("assignee", rule: "required", "give assignee or severity")
        }
        let found = try await database.withTransaction { db in
            guard try await !db.query("SELECT 1 FROM security_incidents WHERE id = \(id) FOR UPDATE").isEmpty else { return false }
            if let assignee {
                try await db.execute("UPDATE security_incidents SET assignee = \(assignee), updated_at = now() WHERE id = \(id)")
                try await IncidentEngine.record(id, actor: caller.actor, kind: "assigned", "assigned to \(assignee)", on: db)
            }
            if let severity {
                try await db.execute("UPDATE security_incidents SET severity = \(severity), updated_at = now() WHERE id = \(id)")
                try await IncidentEngine.record(id, actor: caller.actor, kind: "severity", "severity set to \(severity)", on: db)
            }
            return true
        }
        guard found, let incident = try await incident(id) else { throw Self.notFound(id) }
        return incident
    }

    func changeStatus(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> Incident {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["status", "note"])
        let statusText = try body.string("status")
        guard let status = IncidentStatus(rawValue: statusText) else {
            throw APIError.invalidField("status", rule: "enum", "status must be one of \(IncidentStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let note = try body.text("note", max: 4096, blank: true)
        let outcome: Result<Bool, APIError>? = try await database.withTransaction { db in
            guard let row = try await db.query("SELECT status, escalated FROM security_incidents WHERE id = \(id) FOR UPDATE").first else { return nil }
            let current = IncidentStatus(rawValue: try row.decode(String.self, at: 0)) ?? .open
            let escalated = try row.decode([String].self, at: 1)
            guard status.rank > current.rank else {
                let allowed = IncidentStatus.allCases.filter { $0.rank > current.rank }.map(\.rawValue)
                return .failure(APIError(.conflict, code: "invalid_transition",
                                         message: "an incident \(current.rawValue) can move on to \(allowed.isEmpty ? "nothing" : allowed.joined(separator: ", "))",
                                         field: "status", rule: "transition"))
            }
            try await db.execute("""
                UPDATE security_incidents SET status = \(status.rawValue), updated_at = now(),
                    acknowledged_at = coalesce(acknowledged_at, now()),
                    contained_at = CASE WHEN \(status.rank)::int >= 2 THEN coalesce(contained_at, now()) ELSE contained_at END,
                    closed_at = CASE WHEN \(status.rawValue)::text = 'closed' THEN now() ELSE closed_at END
                WHERE id = \(id)
                """)
            try await IncidentEngine.record(id, actor: caller.actor, kind: "status", "\(current.rawValue) → \(status.rawValue)" + (note.map { ": \($0)" } ?? ""), on: db)
            // An escalated target met now: its alert is to be resolved.
            return .success(escalated.contains("acknowledge") || (escalated.contains("contain") && status.rank >= IncidentStatus.contained.rank))
        }
        guard let outcome else { throw Self.notFound(id) }
        switch outcome {
        case .failure(let error): throw error
        case .success(true):
            // The security worker resolves the escalation alert now rather than at its next minute's
            // pass (which does it anyway if this cannot be published).
            try? await publisher.publish(type: SecurityEscalateJob.type, id: "escalate/\(id.uuidString.lowercased())/\(status.rawValue)",
                                         body: SecurityEscalateJob(), traceID: nil)
        case .success(false): break
        }
        guard let incident = try await incident(id) else { throw Self.notFound(id) }
        return incident
    }

    /// `approve` an awaiting step, `reject` it (skipped), or mark a manual step `done`; the
    /// playbook then goes on in the security worker.
    func decide(_ request: Request, id: UUID, position: Int, caller: APIKeyIdentity) async throws -> Incident {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["decision", "note"])
        let decision = try body.string("decision")
        guard ["approve", "reject", "done"].contains(decision) else {
            throw APIError.invalidField("decision", rule: "enum", "decision must be one of approve, reject, done")
        }
        let note = try body.text("note", max: 4096, blank: true)
        let outcome: Result<Void, APIError>? = try await database.withTransaction { db in
            guard try await !db.query("SELECT 1 FROM security_incidents WHERE id = \(id) FOR UPDATE").isEmpty else { return nil }
            guard let row = try await db.query("""
                SELECT status, action, name FROM security_incident_steps WHERE incident_id = \(id) AND position = \(position)
                """).first else {
                return .failure(APIError.notFound("incident \(id.uuidString.lowercased()) has no step \(position)"))
            }
            let status = try row.decode(String.self, at: 0), action = try row.decode(String.self, at: 1), name = try row.decode(String.self, at: 2)
            let next: String
            switch (decision, status, action) {
            case ("approve", "awaiting_approval", _): next = "approved"
            case ("reject", "awaiting_approval", _), ("reject", "pending", _): next = "skipped"
            case ("done", "pending", "manual"), ("done", "approved", "manual"): next = "done"
            default:
                return .failure(APIError(.conflict, code: "invalid_decision",
                                         message: "step \(position) (\(action), \(status)) cannot take the decision \(decision)", field: "decision", rule: "transition"))
            }
            try await db.execute("""
                UPDATE security_incident_steps SET status = \(next),
                    approved_by = CASE WHEN \(next)::text = 'approved' THEN \(caller.actor)::text ELSE approved_by END,
                    approved_at = CASE WHEN \(next)::text = 'approved' THEN now() ELSE approved_at END,
                    done_at = CASE WHEN \(next)::text IN ('done', 'skipped') THEN now() ELSE done_at END,
                    result = CASE WHEN \(next)::text IN ('done', 'skipped') THEN \("\(decision) by \(caller.actor)" + (note.map { ": \($0)" } ?? ""))::text ELSE result END
                WHERE incident_id = \(id) AND position = \(position)
                """)
            try await IncidentEngine.record(id, actor: caller.actor, kind: "approval", "step \(position) (\(name)): \(decision)" + (note.map { ": \($0)" } ?? ""), on: db)
            return .success(())
        }
        guard let outcome else { throw Self.notFound(id) }
        if case .failure(let error) = outcome { throw error }
        try await publisher.publish(type: SecurityStepJob.type, id: "step/\(id.uuidString.lowercased())/\(position)/\(decision)/\(UUID().uuidString.lowercased())",
                                    body: SecurityStepJob(incidentId: id), traceID: nil)
        guard let incident = try await incident(id) else { throw Self.notFound(id) }
        return incident
    }

    // MARK: - Blocks

    struct LiftedBlock: Encodable, Sendable {
        var address: String
        var reason: String
        @Nullable var incidentId: String?
        var blockedBy: String
        var blockedAt: Date
        @Nullable var expiresAt: Date?
        var liftedBy: String
        var liftedAt: Date
    }

    struct Block: Encodable, Sendable {
        var address: String
        var reason: String
        @Nullable var incidentId: String?
        var blockedBy: String
        var blockedAt: Date
        @Nullable var expiresAt: Date?
    }

    struct BlockList: Encodable, Sendable {
        var blocks: [Block]
    }

    /// Every block in force, newest first (the whole deny list, as each gateway process holds it).
    func blocks() async throws -> BlockList {
        let rows = try await database.query("""
            SELECT host(address), reason, incident_id, blocked_by, blocked_at, expires_at FROM gateway_blocked_addresses
            WHERE expires_at IS NULL OR expires_at > now() ORDER BY blocked_at DESC, address
            """)
        return BlockList(blocks: try rows.map {
            Block(address: try $0.decode(String.self, at: 0), reason: try $0.decode(String.self, at: 1),
                  incidentId: try $0.decode(UUID?.self, at: 2)?.uuidString.lowercased(), blockedBy: try $0.decode(String.self, at: 3),
                  blockedAt: try $0.decode(Date.self, at: 4), expiresAt: try $0.decode(Date?.self, at: 5))
        })
    }

    /// Deletes the address's row of `gateway_blocked_addresses` (every gateway serves it again
    /// within about a second), audited as `security.block.lift` and written to the timeline of
    /// the incident that blocked it.
    func liftBlock(_ address: String, caller: APIKeyIdentity, origin: String) async throws -> LiftedBlock {
        let lifted: LiftedBlock? = try await database.withTransaction { db in
            guard let row = try await db.query("""
                DELETE FROM gateway_blocked_addresses WHERE address = \(address)::inet
                RETURNING host(address), reason, incident_id, blocked_by, blocked_at, expires_at, now()
                """).first else { return nil }
            let block = LiftedBlock(
                address: try row.decode(String.self, at: 0), reason: try row.decode(String.self, at: 1),
                incidentId: try row.decode(UUID?.self, at: 2)?.uuidString.lowercased(), blockedBy: try row.decode(String.self, at: 3),
                blockedAt: try row.decode(Date.self, at: 4), expiresAt: try row.decode(Date?.self, at: 5), liftedBy: caller.actor,
                liftedAt: try row.decode(Date.self, at: 6))
            _ = try await AuditTrail.append(AuditEvent(
                actor: caller.actor, action: "security.block.lift", resource: "security/blocks/\(block.address)", outcome: .success, origin: origin,
                details: ["reason": block.reason, "incident_id": block.incidentId ?? "", "blocked_by": block.blockedBy]),
                component: "gateway", on: db)
            if let incident = try row.decode(UUID?.self, at: 2) {
                try await IncidentEngine.record(incident, actor: caller.actor, kind: "action", "block of \(block.address) at the gateway lifted", on: db)
            }
            return block
        }
        guard let lifted else { throw APIError.notFound("this address is not blocked") }
        return lifted
    }

    // MARK: - Dashboard

    struct Dashboard: Encodable, Sendable {
        var openBySeverity: [String: Int64]
        @Nullable var meanSecondsToAcknowledge: Double?
        @Nullable var meanSecondsToContain: Double?
        var detectionsByKind: [String: Int64]
        var incidentsLast30Days: Int64
        var blockedAddresses: Int64
    }

    func dashboard() async throws -> Dashboard {
        try await database.withConnection { db in
            var open: [String: Int64] = ["low": 0, "medium": 0, "high": 0, "critical": 0]
            for row in try await db.query("SELECT severity, count(*) FROM security_incidents WHERE status <> 'closed' GROUP BY severity") {
                open[try row.decode(String.self, at: 0)] = try row.decode(Int64.self, at: 1)
            }
            let times = try await db.query("""
                SELECT avg(extract(epoch FROM acknowledged_at - opened_at))::float8, avg(extract(epoch FROM contained_at - opened_at))::float8, count(*)
                FROM security_incidents WHERE opened_at > now() - interval '30 days'
                """)[0]
            var kinds: [String: Int64] = [:]
            for row in try await db.query("""
                SELECT kind, count(*) FROM security_detections WHERE received_at > now() - interval '30 days' GROUP BY kind
                """) {
                kinds[try row.decode(String.self, at: 0)] = try row.decode(Int64.self, at: 1)
            }
            let blocked = try await db.query("""
                SELECT count(*) FROM gateway_blocked_addresses WHERE expires_at IS NULL OR expires_at > now()
                """)[0].decode(Int64.self, at: 0)
            return Dashboard(openBySeverity: open, meanSecondsToAcknowledge: try times.decode(Double?.self, at: 0),
                             meanSecondsToContain: try times.decode(Double?.self, at: 1), detectionsByKind: kinds,
                             incidentsLast30Days: try times.decode(Int64.self, at: 2), blockedAddresses: blocked)
        }
    }
}
