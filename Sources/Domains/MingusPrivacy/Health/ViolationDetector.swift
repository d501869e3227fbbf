import Foundation
import MingusBreach
import MingusCore
import MingusHTTP
import MingusPostgres
public import MingusRuntime
import MingusSecurity
import MingusSecurityMonitoring

/// `privacy.hipaa.scan`: runs the violation rules over the health access log since the last scan
/// (`Contracts/schemas/privacy.hipaa.scan.v1.json`); scheduled every five minutes and on demand.
public struct HealthScanJob: Codable, Sendable, Equatable {
    public static let type = "privacy.hipaa.scan"

    public init() {}
}

/// The four-factor risk assessment of 164.402(2): each factor rated with its reason, and the
/// probability that the information was compromised. Anything but `low` is a breach.
public struct RiskAssessment: Codable, Sendable, Equatable {
    /// A factor's rating and why.
    public struct Factor: Codable, Sendable, Equatable {
        public var rating: String
        public var reason: String
    }

    /// (i) the nature and extent of the information: how much, how sensitive.
    public var natureAndExtent: Factor
    /// (ii) the unauthorised person who used it or to whom it was disclosed.
    public var unauthorizedPerson: Factor
    /// (iii) whether it was actually acquired or viewed.
    public var acquiredOrViewed: Factor
    /// (iv) the extent to which the risk has been mitigated.
    public var mitigation: Factor
    /// `low`, `medium` or `high` probability of compromise.
    public var probability: String

    /// Low when nothing was acquired, or the person had a basis for access; high when two
    /// factors are high; medium otherwise.
    public static func assess(nature: Factor, person: Factor, acquired: Factor, mitigation: Factor) -> RiskAssessment {
        let factors = [nature, person, acquired, mitigation]
        let probability = acquired.rating == "low" || person.rating == "low" ? "low"
            : factors.filter { $0.rating == "high" }.count >= 2 ? "high" : "medium"
        return RiskAssessment(natureAndExtent: nature, unauthorizedPerson: person, acquiredOrViewed: acquired, mitigation: mitigation,
                              probability: probability)
    }
}

/// The violation rules over the access log (`hipaa.*` audit events): access without consent or
/// a care/billing relationship, bulk reads beyond a role's norm, break-glass use, access with a
/// revoked key, after-hours access. Each finding is one row per rule, actor and window (an hour;
/// a break-glass grant), recounted when a later scan sees more of its window, so scanning again
/// adds nothing; a finding that is a breach is reported once as a `breach.report` job, and each
/// new finding is a `security.detection` (kind `hipaa_violation`, rule the finding's rule).
///
/// Configuration: `MINGUS_HIPAA_BULK_NORM` (records one actor reads in an hour before it is a
/// bulk read, default 200), `MINGUS_HIPAA_BUSINESS_HOURS` (`HH-HH` UTC, default `07-19`).
public struct ViolationDetector: Sendable {
    public var bulkNorm: Int
    public var businessHours: ClosedRange<Int>

    public init(bulkNorm: Int = 200, businessHours: ClosedRange<Int> = 7...18) {
        self.bulkNorm = bulkNorm
        self.businessHours = businessHours
    }

    public static func fromEnvironment(_ environment: [String: String]) throws -> ViolationDetector {
        var detector = ViolationDetector()
        if let text = environment["MINGUS_HIPAA_BULK_NORM"], !text.isEmpty {
            guard let norm = Int(text), norm > 0 else { throw ConfigurationError(variable: "MINGUS_HIPAA_BULK_NORM", message: "must be a whole number above 0, got '\(text)'") }
            detector.bulkNorm = norm
        }
        if let text = environment["MINGUS_HIPAA_BUSINESS_HOURS"], !text.isEmpty {
            let parts = text.split(separator: "-").compactMap { Int($0) }
            guard parts.count == 2, (0...23).contains(parts[0]), (1...24).contains(parts[1]), parts[0] < parts[1] else {
                throw ConfigurationError(variable: "MINGUS_HIPAA_BUSINESS_HOURS", message: "must be HH-HH (UTC), start before end, got '\(text)'")
            }
            detector.businessHours = parts[0]...(parts[1] - 1)
        }
        return detector
    }

    /// One finding before it is stored.
    struct Finding {
        var rule: String
        var actor: String
        var windowStart: Date
        var windowEnd: Date
        var events: Int
        var records: Int
        var subjects: [String]
        var summary: String
        var risk: RiskAssessment
    }

    static let readSubject = "substring(resource from 16)"

    /// Runs the rules over the events since the last scan, inside the job's transaction; emits
    /// a `breach.report` for each new breach. Returns how many findings were new or recounted.
    public func scan(_ context: JobContext) async throws -> Int {
        let db = context.database
        let from = try await db.query("SELECT scanned_to FROM health_scan_state WHERE id = 1 FOR UPDATE")[0].decode(Date.self, at: 0)
        let to = try await db.query("SELECT now()")[0].decode(Date.self, at: 0)
        var findings: [Finding] = []
        func hourly(_ rule: String, _ filter: String, having: String = "true", _ make: (Int, Int, [String]) -> (String, RiskAssessment)?) async throws {
            let rows = try await db.query(PostgresQuery(unsafeSQL: """
                SELECT actor, date_trunc('hour', occurred_at) AS h, count(*)::int, coalesce(sum((details->>'records')::int), 0)::int,
                       array_agg(DISTINCT \(Self.readSubject))
                FROM audit_events
                WHERE action LIKE 'hipaa.%' AND occurred_at >= date_trunc('hour', $1::timestamptz) AND occurred_at < $2 AND \(filter)
                GROUP BY actor, h HAVING \(having)
                """, binds: [from, to]))
            for row in rows {
                let events = try row.decode(Int.self, at: 2), records = try row.decode(Int.self, at: 3), subjects = try row.decode([String].self, at: 4)
                guard let (summary, risk) = make(events, records, subjects) else { continue }
                let start = try row.decode(Date.self, at: 1)
                findings.append(Finding(rule: rule, actor: try row.decode(String.self, at: 0), windowStart: start, windowEnd: start.addingTimeInterval(3600),
                                        events: events, records: records, subjects: subjects.sorted(), summary: summary, risk: risk))
            }
        }
        typealias F = RiskAssessment.Factor
        let viewed = F(rating: "high", reason: "records were opened and returned to the caller")
        func extent(_ records: Int) -> F {
            records > bulkNorm ? F(rating: "high", reason: "\(records) records, beyond the norm of \(bulkNorm) an hour")
                : records > 10 ? F(rating: "medium", reason: "\(records) records") : F(rating: "low", reason: "\(records) record(s)")
        }
        let unmitigated = F(rating: "medium", reason: "no mitigation recorded yet")

        try await hourly("bulk_read", "action = 'hipaa.record.read' AND outcome = 'success'", having: "sum((details->>'records')::int) > \(bulkNorm)") { events, records, subjects in
            ("\(records) health records of \(subjects.count) subject(s) read in an hour (norm \(bulkNorm))",
             .assess(nature: extent(records), person: F(rating: "medium", reason: "reads beyond what the role needs (minimum necessary)"),
                     acquired: viewed, mitigation: unmitigated))
        }
        try await hourly("no_basis", """
            action = 'hipaa.record.read' AND NOT details ? 'break_glass'
            AND ((outcome = 'success' AND details->>'relationship' = 'none') OR (outcome = 'denied' AND details ? 'consent'))
            """) { events, records, subjects in
            ("\(events) access(es) to \(subjects.count) subject(s) without a care or billing relationship or without consent",
             .assess(nature: extent(records), person: F(rating: "medium", reason: "no treatment or billing relationship, or no consent"),
                     acquired: records > 0 ? viewed : F(rating: "low", reason: "refused: nothing was returned"), mitigation: unmitigated))
        }
        let hours = "extract(hour from occurred_at AT TIME ZONE 'UTC') NOT BETWEEN \(businessHours.lowerBound) AND \(businessHours.upperBound)"
        try await hourly("after_hours", "action = 'hipaa.record.read' AND outcome = 'success' AND \(hours)") { events, records, subjects in
            ("\(events) read(s) of \(records) record(s) outside business hours (\(businessHours.lowerBound):00-\(businessHours.upperBound + 1):00 UTC)",
             .assess(nature: extent(records), person: F(rating: "low", reason: "an authorised caller; the pattern is for review"),
                     acquired: viewed, mitigation: unmitigated))
        }
        try await hourly("revoked_key", """
            EXISTS (SELECT 1 FROM mingus_api_keys k WHERE 'apikey:' || k.name = actor AND k.revoked_at IS NOT NULL AND k.revoked_at <= occurred_at)
            AND outcome = 'success'
            """) { events, records, subjects in
            ("\(events) access(es) with an API key already revoked",
             .assess(nature: extent(records), person: F(rating: "high", reason: "a revoked credential: the person is no longer authorised"),
                     acquired: records > 0 ? viewed : F(rating: "low", reason: "nothing was returned"), mitigation: unmitigated))
        }
        // Break-glass: one finding per grant used, for review.
        for row in try await db.query("""
            SELECT g.id, g.actor, g.subject_id, g.granted_at, g.expires_at, g.reason,
                   (SELECT count(*)::int FROM audit_events e WHERE e.resource = 'hipaa/subjects/' || g.subject_id AND e.action = 'hipaa.record.read'
                        AND e.details->>'break_glass' = g.id::text),
                   (SELECT coalesce(sum((e.details->>'records')::int), 0)::int FROM audit_events e WHERE e.resource = 'hipaa/subjects/' || g.subject_id
                        AND e.action = 'hipaa.record.read' AND e.details->>'break_glass' = g.id::text)
            FROM health_break_glass g WHERE g.granted_at < \(to) AND g.expires_at >= \(from)::timestamptz - interval '4 hours'
            """) {
            let events = try row.decode(Int.self, at: 6), records = try row.decode(Int.self, at: 7)
            guard events > 0 else { continue }
            findings.append(Finding(
                rule: "break_glass", actor: try row.decode(String.self, at: 1), windowStart: try row.decode(Date.self, at: 3), windowEnd: try row.decode(Date.self, at: 4),
                events: events, records: records, subjects: [try row.decode(String.self, at: 2)],
                summary: "emergency access \(try row.decode(UUID.self, at: 0).uuidString.lowercased()) used \(events) time(s): \(try row.decode(String.self, at: 5))",
                risk: .assess(nature: extent(records), person: F(rating: "low", reason: "emergency access with a stated reason"),
                              acquired: viewed, mitigation: F(rating: "low", reason: "time-limited, alerted, flagged for review"))))
        }

        var stored = 0
        for finding in findings {
            let risk = String(decoding: try JSONEncoder.mingus.encode(finding.risk), as: UTF8.self)
            let isBreach = finding.risk.probability != "low"
            let id = UUID.derived("hipaa-violation/\(finding.rule)/\(finding.actor)/\(PageCursor.micros(finding.windowStart))")
            let rows = try await db.query("""
                INSERT INTO health_violations (id, rule, actor, window_start, window_end, events, records, subjects, summary, risk, risk_level, is_breach)
                VALUES (\(id), \(finding.rule), \(finding.actor), \(finding.windowStart), \(finding.windowEnd), \(finding.events), \(finding.records),
                        \(finding.subjects), \(finding.summary), \(risk)::jsonb, \(finding.risk.probability), \(isBreach))
                ON CONFLICT (rule, actor, window_start) DO UPDATE SET events = EXCLUDED.events, records = EXCLUDED.records, subjects = EXCLUDED.subjects,
                    summary = EXCLUDED.summary, risk = EXCLUDED.risk, risk_level = EXCLUDED.risk_level, is_breach = health_violations.is_breach OR EXCLUDED.is_breach
                WHERE (health_violations.events, health_violations.records) IS DISTINCT FROM (EXCLUDED.events, EXCLUDED.records)
                RETURNING id, is_breach, breach_id, detected_at, xmax = 0
                """)
            guard let row = rows.first else { continue }
            stored += 1
            let violation = try row.decode(UUID.self, at: 0)
            if try row.decode(Bool.self, at: 4) {
                // A new finding is a detection for the security worker: one incident per rule and actor while it is open.
                let severity: IncidentSeverity = switch finding.risk.probability { case "high": .high; case "medium": .medium; default: .low }
                try await context.emit(type: SecurityDetectionJob.type, SecurityDetectionJob(
                    kind: "hipaa_violation", rule: finding.rule, severity: severity, dedupKey: "hipaa_violation:\(finding.rule):\(finding.actor)",
                    title: "HIPAA violation: \(finding.rule.replacingOccurrences(of: "_", with: " ")) by \(finding.actor)",
                    summary: "\(finding.summary). Violation \(violation.uuidString.lowercased()); risk \(finding.risk.probability).",
                    service: "hipaa", apiKey: finding.actor.hasPrefix("apikey:") ? String(finding.actor.dropFirst("apikey:".count)) : nil,
                    detectedAt: try row.decode(Date.self, at: 3), reportedBy: "privacy-worker"),
                    id: "hipaa/\(violation.uuidString.lowercased())")
            }
            guard try row.decode(Bool.self, at: 1), try row.decode(UUID?.self, at: 2) == nil else { continue }
            let breach = UUID.derived("hipaa-breach/\(violation.uuidString.lowercased())")
            let detected = try row.decode(Date.self, at: 3)
            let report = BreachReportJob(
                breachId: breach, title: "Health information: \(finding.rule.replacingOccurrences(of: "_", with: " ")) by \(finding.actor)",
                description: "\(finding.summary). Violation \(violation.uuidString.lowercased()); risk \(finding.risk.probability) (164.402(2)).",
                severity: finding.risk.probability == "high" ? .high : .medium, discoveredAt: detected, awareAt: detected,
                dataCategories: ["health_data"], dataEncrypted: true, keyCompromised: true, recordsAffected: Int64(max(finding.records, 1)),
                personsAffected: Int64(finding.subjects.count), jurisdictions: ["US"], personsByJurisdiction: [:], entityRoles: ["covered_entity"],
                facts: [BreachFactRecord(fact: "phi_discovered", occurredAt: detected)], reportedBy: "privacy-worker", reportedAt: APITime.format(detected))
            try await context.emit(type: BreachReportJob.type, report, id: breach.uuidString.lowercased())
            try await db.execute("UPDATE health_violations SET breach_id = \(breach) WHERE id = \(violation)")
            _ = try await AuditTrail.append(AuditEvent(actor: "privacy-worker", action: "hipaa.violation.breach", resource: "hipaa/violations/\(violation.uuidString.lowercased())",
                                                       outcome: .success, details: ["rule": finding.rule, "breach_id": breach.uuidString.lowercased(),
                                                                                    "risk": finding.risk.probability]),
                                            component: "hipaa", on: db)
        }
        try await db.execute("UPDATE health_scan_state SET scanned_to = \(to) WHERE id = 1")
        return stored
    }
}
