public import Foundation
import CoreMetrics
import Logging
import MingusAlerts
import MingusBreach
import MingusCore
import MingusHTTP
public import MingusPostgres
public import MingusRuntime
public import MingusSecurity
#if canImport(Glibc)
import Glibc
#endif

/// Lifecycle of an incident after NIST SP 800-61, in order.
public enum IncidentStatus: String, Sendable, CaseIterable, Codable {
    case open, triaged, contained, eradicated, recovered, closed

    var rank: Int { Self.allCases.firstIndex(of: self)! }
}

/// Opens incidents from detections (one open incident per dedup key), appends their timeline,
/// and works their playbooks: each automated step runs in the job's transaction, once (its row
/// says done), audited; a step that needs approval, or a manual one, holds the steps after it.
public struct IncidentEngine: Sendable {
    public let playbooks: Playbooks
    /// For `rotate_data_keys`; without it that step fails.
    let kek: KeyEncryptingKey?
    /// A pool outside the job's transaction (data key rotation takes its own lock).
    let database: PostgresClient
    let metrics: MetricHandles

    public init(playbooks: Playbooks, kek: KeyEncryptingKey?, database: PostgresClient, metrics: MetricHandles = MetricHandles()) {
        self.playbooks = playbooks
        self.kek = kek
        self.database = database
        self.metrics = metrics
    }

    /// The incident's dedup key: detections naming a client address are one attack per kind, rule
    /// and address, whichever service saw them; others group by the detection's own key.
    static func incidentKey(_ detection: SecurityDetectionJob) -> String {
        if let address = detection.sourceAddress, !address.isEmpty {
            return "\(detection.kind):\(detection.rule ?? ""):\(address)"
        }
        return detection.dedupKey
    }

    /// Takes one detection: opens its incident (with its playbook's steps) or adds it to the open
    /// one, then works the playbook of a new incident.
    public func take(_ detection: SecurityDetectionJob, context: JobContext) async throws {
        let db = context.database
        let key = Self.incidentKey(detection)
        let playbook = playbooks.playbook(kind: detection.kind, rule: detection.rule)
        let proposed = detection.incidentId ?? UUID()
        let address = detection.sourceAddress.flatMap { Self.isAddress($0) ? $0 : nil }
        let row = try await db.query("""
            INSERT INTO security_incidents (id, kind, dedup_key, title, summary, severity, source_address, api_key, service, playbook,
                                            detections, opened_by, opened_at, last_detected_at)
            VALUES (\(proposed), \(detection.kind), \(key), \(detection.title), \(detection.summary), \(detection.severity.rawValue),
                    \(address), \(detection.apiKey), \(detection.service), \(playbook?.name), 1, \(detection.reportedBy), now(), \(detection.detectedAt))
            ON CONFLICT (dedup_key) WHERE status <> 'closed' DO UPDATE SET
                detections = security_incidents.detections + 1,
                last_detected_at = greatest(security_incidents.last_detected_at, EXCLUDED.last_detected_at),
                severity = CASE WHEN array_position(ARRAY['low','medium','high','critical'], EXCLUDED.severity)
                                     > array_position(ARRAY['low','medium','high','critical'], security_incidents.severity)
                                THEN EXCLUDED.severity ELSE security_incidents.severity END,
                api_key = coalesce(security_incidents.api_key, EXCLUDED.api_key),
                updated_at = now()
            RETURNING id, xmax = 0
            """)[0]
        let incident = try row.decode(UUID.self, at: 0)
        let opened = try row.decode(Bool.self, at: 1)
        try await db.execute("""
            INSERT INTO security_detections (id, kind, severity, dedup_key, incident_id, detected_at)
            VALUES (\(context.id), \(detection.kind), \(detection.severity.rawValue), \(detection.dedupKey), \(incident), \(detection.detectedAt))
            """)
        metrics.counter("mingus_security_detections_total", [("kind", detection.kind)]).increment()
        if opened {
            metrics.counter("mingus_security_incidents_opened_total", [("severity", detection.severity.rawValue)]).increment()
            try await Self.record(incident, actor: detection.reportedBy, kind: "opened",
                                  "opened from a \(detection.kind) detection: \(detection.summary)" + (playbook.map { "; playbook \($0.name)" } ?? "; no playbook applies"),
                                  on: db)
            for (index, step) in (playbook?.steps ?? []).enumerated() {
                let parameters = String(decoding: try JSONEncoder().encode(step.parameters), as: UTF8.self)
                try await db.execute("""
                    INSERT INTO security_incident_steps (incident_id, position, name, action, requires_approval, parameters)
                    VALUES (\(incident), \(index + 1), \(step.name), \(step.action.rawValue), \(step.requiresApproval), \(parameters)::jsonb)
                    """)
            }
            _ = try await AuditTrail.append(AuditEvent(actor: detection.reportedBy, action: "security.incident.open",
                                                       resource: Self.resource(incident), outcome: .success,
                                                       details: ["kind": detection.kind, "severity": detection.severity.rawValue]),
                                            component: "security", on: db)
            try await work(incident, context: context)
        } else {
            try await Self.record(incident, actor: detection.reportedBy, kind: "detection", "another \(detection.kind) detection: \(detection.summary)", on: db)
        }
    }

    /// Runs the incident's steps in order from the first unfinished one, until one waits for a person.
    public func work(_ incident: UUID, context: JobContext) async throws {
        let db = context.database
        guard let facts = try await db.query("""
            SELECT title, summary, severity, source_address, api_key, kind, opened_at, status FROM security_incidents WHERE id = \(incident) FOR UPDATE
            """).first else { throw PermanentJobError("incident \(incident) does not exist") }
        guard try facts.decode(String.self, at: 7) != "closed" else { return }
        let steps = try await db.query("""
            SELECT position, name, action, requires_approval, status, parameters::text FROM security_incident_steps
            WHERE incident_id = \(incident) ORDER BY position
            """)
        for step in steps {
            let position = try step.decode(Int.self, at: 0)
            let name = try step.decode(String.self, at: 1)
            let action = StepAction(rawValue: try step.decode(String.self, at: 2)) ?? .manual
            let needsApproval = try step.decode(Bool.self, at: 3)
            let status = try step.decode(String.self, at: 4)
            switch status {
            case "done", "failed", "skipped": continue
            case "awaiting_approval": return
            case "pending" where needsApproval:
                try await db.execute("""
                    UPDATE security_incident_steps SET status = 'awaiting_approval' WHERE incident_id = \(incident) AND position = \(position)
                    """)
                try await Self.record(incident, actor: "security-worker", kind: "approval", "step \(position) (\(name)) waits for approval", on: db)
                return
            case "pending" where action == .manual:
                return
            default: break
            }
            guard action != .manual else { return }
            let parameters = (try? JSONDecoder().decode([String: [String]].self, from: Data(try step.decode(String.self, at: 5).utf8))) ?? [:]
            let facts = IncidentFacts(
                id: incident, title: try facts.decode(String.self, at: 0), summary: try facts.decode(String.self, at: 1),
                severity: IncidentSeverity(rawValue: try facts.decode(String.self, at: 2)) ?? .high,
                address: try facts.decode(String?.self, at: 3), apiKey: try facts.decode(String?.self, at: 4),
                kind: try facts.decode(String.self, at: 5), openedAt: try facts.decode(Date.self, at: 6))
            let (outcome, result) = try await perform(action, position: position, parameters: parameters, facts: facts, context: context)
            try await db.execute("""
                UPDATE security_incident_steps SET status = \(outcome), result = \(result), done_at = now()
                WHERE incident_id = \(incident) AND position = \(position)
                """)
            try await Self.record(incident, actor: "security-worker", kind: "action", "step \(position) (\(name)), \(action.rawValue): \(outcome): \(result)", on: db)
            _ = try await AuditTrail.append(AuditEvent(actor: "security-worker", action: "security.action.\(action.rawValue)",
                                                       resource: Self.resource(incident), outcome: outcome == "failed" ? .failure : .success,
                                                       details: ["step": String(position), "result": result]),
                                            component: "security", on: db)
            metrics.counter("mingus_security_actions_total", [("action", action.rawValue), ("outcome", outcome)]).increment()
        }
    }

    struct IncidentFacts {
        var id: UUID
        var title: String
        var summary: String
        var severity: IncidentSeverity
        var address: String?
        var apiKey: String?
        var kind: String
        var openedAt: Date
    }

    /// Does one automated action; returns its outcome (`done`, `skipped`, `failed`) and what it did.
    func perform(_ action: StepAction, position: Int, parameters: [String: [String]], facts: IncidentFacts,
                 context: JobContext) async throws -> (String, String) {
        let db = context.database
        let id = facts.id.uuidString.lowercased()
        switch action {
        case .manual:
            return ("skipped", "manual step")
        case .blockAddress:
            guard let address = facts.address else { return ("skipped", "the incident names no client address") }
            let seconds = parameters["duration_seconds"]?.first.flatMap(Double.init)
            try await db.execute("""
                INSERT INTO gateway_blocked_addresses (address, reason, incident_id, blocked_by, expires_at)
                VALUES (\(address)::inet, \("incident \(id): \(facts.title)"), \(facts.id), 'security-worker',
                        CASE WHEN \(seconds)::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => \(seconds)::float8) END)
                ON CONFLICT (address) DO UPDATE SET reason = EXCLUDED.reason, incident_id = EXCLUDED.incident_id,
                    blocked_by = EXCLUDED.blocked_by, blocked_at = now(),
                    expires_at = CASE WHEN gateway_blocked_addresses.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL
                                      ELSE greatest(gateway_blocked_addresses.expires_at, EXCLUDED.expires_at) END
                """)
            return ("done", "blocked \(address) at the gateway" + (seconds.map { " for \(DurationText.format(.seconds($0)))" } ?? " until unblocked"))
        case .revokeAPIKey:
            guard let key = facts.apiKey else { return ("skipped", "the incident names no API key") }
            let revoked = try await db.execute("""
                UPDATE mingus_api_keys SET revoked_at = now() WHERE (id = \(key) OR name = \(key)) AND revoked_at IS NULL
                """)
            return ("done", revoked == 0 ? "API key \(key) was already revoked or does not exist" : "revoked API key \(key)")
        case .rotateDataKeys:
            guard let kek else { return ("failed", "the worker has no key-encrypting key (MINGUS_FINANCIAL_KEY_PATH)") }
            var versions: [String] = []
            // Rotation commits on its own; run again after a failure it adds one more version, which is harmless.
            for purpose in parameters["purposes"] ?? [] {
                let version = try await Keyring.rotate(KeyPurpose(rawValue: purpose), kek: kek, database: database)
                versions.append("\(purpose) v\(version)")
            }
            return ("done", "new data key versions: \(versions.joined(separator: ", "))")
        case .pageOncall:
            let receiver = parameters["receiver"]?.first ?? "oncall"
            let alert = AlertJob(
                status: .firing, severity: .critical, title: String("Security incident: \(facts.title)".prefix(256)),
                description: "\(facts.summary)\nIncident \(id) (\(facts.kind), \(facts.severity.rawValue)): GET /api/security/incidents/\(id)",
                labels: ["incident_id": id, "incident_kind": facts.kind, "receiver": receiver, "component": "security"],
                source: "security-worker", dedupKey: "security:incident:\(id)", receivedAt: Date())
            try await context.emit(type: AlertJob.type, alert, id: UUID.derived("security/page/\(id)/\(position)").uuidString.lowercased())
            return ("done", "paged \(receiver)")
        case .openBreach:
            let breach = UUID.derived("security/breach/\(id)")
            let severity = BreachSeverity(rawValue: facts.severity.rawValue) ?? .high
            let now = Date()
            let job = BreachReportJob(
                breachId: breach, title: String("Security incident: \(facts.title)".prefix(256)),
                description: String("Opened by the playbook of security incident \(id) (\(facts.kind)). \(facts.summary)".prefix(16_384)),
                severity: severity, discoveredAt: facts.openedAt, awareAt: now,
                dataCategories: parameters["data_categories"] ?? ["personal_data"], dataEncrypted: false, keyCompromised: false,
                recordsAffected: 0, personsAffected: 0, jurisdictions: parameters["jurisdictions"] ?? ["US"], personsByJurisdiction: [:],
                entityRoles: parameters["entity_roles"] ?? ["controller"], facts: [], reportedBy: "security-worker",
                reportedAt: APITime.format(now))
            try await context.emit(type: BreachReportJob.type, job, id: breach.uuidString.lowercased())
            return ("done", "breach \(breach.uuidString.lowercased()) reported for assessment")
        }
    }

    /// Escalates unfinished incidents past their targets, once per target, through the alerts
    /// worker; then resolves the escalation alerts of targets met since (same `dedup_key`, once).
    public func escalate(context: JobContext) async throws {
        let db = context.database
        let rows = try await db.query("""
            SELECT id, title, severity, status, opened_at FROM security_incidents
            WHERE status IN ('open', 'triaged') ORDER BY opened_at LIMIT 1000 FOR UPDATE SKIP LOCKED
            """)
        let now = Date()
        for row in rows {
            let id = try row.decode(UUID.self, at: 0)
            let severity = IncidentSeverity(rawValue: try row.decode(String.self, at: 2)) ?? .high
            let status = try row.decode(String.self, at: 3)
            let opened = try row.decode(Date.self, at: 4)
            guard let targets = playbooks.targets[severity] else { continue }
            var missed: [(String, Duration)] = []
            if status == "open", now.timeIntervalSince(opened) > targets.acknowledge.inSeconds { missed.append(("acknowledge", targets.acknowledge)) }
            if now.timeIntervalSince(opened) > targets.contain.inSeconds { missed.append(("contain", targets.contain)) }
            for (target, limit) in missed {
                let updated = try await db.execute("""
                    UPDATE security_incidents SET escalated = escalated || \(target)::text
                    WHERE id = \(id) AND NOT (\(target)::text = ANY(escalated) OR \(target)::text || ':resolved' = ANY(escalated))
                    """)
                guard updated == 1 else { continue }
                let text = id.uuidString.lowercased()
                try await context.emit(type: AlertJob.type, AlertJob(
                    status: .firing, severity: severity == .critical ? .critical : .high,
                    title: "Security incident not \(target == "acknowledge" ? "acknowledged" : "contained") in time",
                    description: "Incident \(text) (\(try row.decode(String.self, at: 1))) missed its time to \(target) of \(DurationText.format(limit)).",
                    labels: ["incident_id": text, "target": target, "component": "security"], source: "security-worker",
                    dedupKey: "security:incident:\(text):\(target)", receivedAt: now),
                    id: UUID.derived("security/escalate/\(text)/\(target)").uuidString.lowercased())
                try await Self.record(id, actor: "security-worker", kind: "escalation", "missed the time to \(target) (\(DurationText.format(limit)))", on: db)
            }
        }
        try await resolveEscalations(context: context)
    }

    /// Resolves the escalation alert of each target met after it was escalated: acknowledged
    /// (left `open`) or contained (reached `contained` or later). The target is then marked
    /// `<target>:resolved` in `escalated`, so each alert is resolved once.
    func resolveEscalations(context: JobContext) async throws {
        let db = context.database
        let rows = try await db.query("""
            SELECT id, title, severity, 'acknowledge' = ANY(escalated) AND acknowledged_at IS NOT NULL,
                   'contain' = ANY(escalated) AND contained_at IS NOT NULL, status
            FROM security_incidents
            WHERE ('acknowledge' = ANY(escalated) AND acknowledged_at IS NOT NULL) OR ('contain' = ANY(escalated) AND contained_at IS NOT NULL)
            ORDER BY opened_at LIMIT 1000 FOR UPDATE SKIP LOCKED
            """)
        let now = Date()
        for row in rows {
            let id = try row.decode(UUID.self, at: 0)
            let text = id.uuidString.lowercased()
            let severity = IncidentSeverity(rawValue: try row.decode(String.self, at: 2)) ?? .high
            let status = try row.decode(String.self, at: 5)
            var met: [String] = []
            if try row.decode(Bool.self, at: 3) { met.append("acknowledge") }
            if try row.decode(Bool.self, at: 4) { met.append("contain") }
            for target in met {
                try await db.execute("""
                    UPDATE security_incidents SET escalated = array_replace(escalated, \(target)::text, \(target)::text || ':resolved') WHERE id = \(id)
                    """)
                try await context.emit(type: AlertJob.type, AlertJob(
                    status: .resolved, severity: severity == .critical ? .critical : .high,
                    title: "Security incident not \(target == "acknowledge" ? "acknowledged" : "contained") in time",
                    description: "Incident \(text) (\(try row.decode(String.self, at: 1))) is \(target == "acknowledge" ? "acknowledged" : "contained") now (\(status)).",
                    labels: ["incident_id": text, "target": target, "component": "security"], source: "security-worker",
                    dedupKey: "security:incident:\(text):\(target)", receivedAt: now),
                    id: UUID.derived("security/escalate/\(text)/\(target)/resolved").uuidString.lowercased())
                try await Self.record(id, actor: "security-worker", kind: "escalation", "the \(target) escalation resolved: the incident is \(status)", on: db)
            }
        }
    }

    /// Appends a timeline entry.
    public static func record(_ incident: UUID, actor: String, kind: String, _ detail: String, on db: PostgresConnection) async throws {
        try await db.execute("""
            INSERT INTO security_incident_events (incident_id, actor, kind, detail) VALUES (\(incident), \(actor), \(kind), \(detail))
            """)
    }

    static func resource(_ incident: UUID) -> String { "security/incidents/\(incident.uuidString.lowercased())" }

    /// Whether `text` is an IPv4 or IPv6 address.
    public static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
