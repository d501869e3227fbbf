public import Foundation
public import MingusHTTP
public import MingusPostgres

/// The latest stored result of one automated check.
public struct StoredCheckResult: Sendable, Equatable {
    public var check: String
    public var runID: UUID
    public var passed: Bool
    public var summary: String
    public var evidence: JSONValue
    public var checkedAt: Date
    /// After this the result no longer counts.
    public var validUntil: Date

    public init(check: String, runID: UUID, passed: Bool, summary: String, evidence: JSONValue, checkedAt: Date, validUntil: Date) {
        self.check = check
        self.runID = runID
        self.passed = passed
        self.summary = summary
        self.evidence = evidence
        self.checkedAt = checkedAt
        self.validUntil = validUntil
    }

    /// Whether the result still counts at `date`.
    public func isFresh(at date: Date) -> Bool { validUntil > date }
}

/// A manual assessment of a PCI DSS requirement by a named assessor.
public struct ManualAssessment: Sendable, Equatable {
    public var requirementID: String
    public var status: RequirementStatus
    public var assessor: String
    public var notes: String
    public var evidence: String
    /// The API key that recorded it (`apikey:<name>`).
    public var recordedBy: String
    public var assessedAt: Date

    public init(requirementID: String, status: RequirementStatus, assessor: String, notes: String, evidence: String, recordedBy: String,
                assessedAt: Date) {
        self.requirementID = requirementID
        self.status = status
        self.assessor = assessor
        self.notes = notes
        self.evidence = evidence
        self.recordedBy = recordedBy
        self.assessedAt = assessedAt
    }
}

/// Everything the compliance documents are computed from: the latest result of each check and
/// the manual assessments, as read at ``now``.
public struct ComplianceEvidence: Sendable {
    public var results: [String: StoredCheckResult]
    public var assessments: [String: ManualAssessment]
    public var lastRun: CheckRun?
    public var now: Date

    public init(results: [String: StoredCheckResult], assessments: [String: ManualAssessment], lastRun: CheckRun?, now: Date) {
        self.results = results
        self.assessments = assessments
        self.lastRun = lastRun
        self.now = now
    }
}

/// One run of the automated checks.
public struct CheckRun: Sendable, Encodable {
    public var id: String
    public var requestedBy: String
    public var startedAt: Date
    @Nullable public var finishedAt: Date?
    public var checks: Int
    public var failed: Int
}

/// One day of the compliance score's history.
public struct ScoreSnapshot: Sendable, Encodable {
    /// `2026-11-27` (UTC).
    public var day: String
    @Nullable public var score: Double?
    public var assessedWeight: Int
    public var takenAt: Date
}

/// All SQL of the compliance tables (`Contracts/migrations/0022_compliance.sql`).
public enum ComplianceStore {
    /// Starts a run.
    static func beginRun(_ id: UUID, requestedBy: String, on db: PostgresConnection) async throws {
        try await db.execute("""
            INSERT INTO compliance_check_runs (id, requested_by) VALUES (\(id), \(requestedBy))
            ON CONFLICT (id) DO UPDATE SET started_at = clock_timestamp(), finished_at = NULL, checks = 0, failed = 0
            """)
    }

    /// Stores one check's result in the run's history and as the check's latest.
    static func record(run: UUID, check: String, outcome: CheckOutcome, checkedAt: Date, validUntil: Date, durationMs: Int64,
                       on db: PostgresConnection) async throws {
        let evidence = String(decoding: try JSONEncoder.api.encode(JSONValue.object(outcome.evidence)), as: UTF8.self)
        try await db.execute("""
            INSERT INTO compliance_check_results (run_id, check_name, passed, summary, evidence, checked_at, valid_until, duration_ms)
            VALUES (\(run), \(check), \(outcome.passed), \(outcome.summary), \(evidence)::jsonb, \(checkedAt), \(validUntil), \(durationMs))
            ON CONFLICT (run_id, check_name) DO UPDATE SET passed = EXCLUDED.passed, summary = EXCLUDED.summary, evidence = EXCLUDED.evidence,
                checked_at = EXCLUDED.checked_at, valid_until = EXCLUDED.valid_until, duration_ms = EXCLUDED.duration_ms
            """)
        try await db.execute("""
            INSERT INTO compliance_check_latest (check_name, run_id, passed, summary, evidence, checked_at, valid_until)
            VALUES (\(check), \(run), \(outcome.passed), \(outcome.summary), \(evidence)::jsonb, \(checkedAt), \(validUntil))
            ON CONFLICT (check_name) DO UPDATE SET run_id = EXCLUDED.run_id, passed = EXCLUDED.passed, summary = EXCLUDED.summary,
                evidence = EXCLUDED.evidence, checked_at = EXCLUDED.checked_at, valid_until = EXCLUDED.valid_until
            """)
    }

    /// Ends a run with its counts.
    static func finishRun(_ id: UUID, checks: Int, failed: Int, on db: PostgresConnection) async throws {
        try await db.execute("""
            UPDATE compliance_check_runs SET finished_at = clock_timestamp(), checks = \(checks), failed = \(failed) WHERE id = \(id)
            """)
    }

    /// Reads the latest results, the manual assessments and the newest run.
    public static func evidence(on db: PostgresConnection, now: Date = Date()) async throws -> ComplianceEvidence {
        // The newest run first: a run seen finished here has its results in what is read next.
        let run = try await db.query("""
            SELECT id, requested_by, started_at, finished_at, checks, failed FROM compliance_check_runs ORDER BY started_at DESC LIMIT 1
            """).first.map {
            CheckRun(id: try $0.decode(UUID.self, at: 0).uuidString.lowercased(), requestedBy: try $0.decode(String.self, at: 1),
                     startedAt: try $0.decode(Date.self, at: 2), finishedAt: try $0.decode(Date?.self, at: 3),
                     checks: try $0.decode(Int.self, at: 4), failed: try $0.decode(Int.self, at: 5))
        }
        var results: [String: StoredCheckResult] = [:]
        for row in try await db.query("""
            SELECT check_name, run_id, passed, summary, evidence::text, checked_at, valid_until FROM compliance_check_latest
            """) {
            let name = try row.decode(String.self, at: 0)
            let evidence = try JSONDecoder().decode(JSONValue.self, from: Data(try row.decode(String.self, at: 4).utf8))
            results[name] = StoredCheckResult(
                check: name, runID: try row.decode(UUID.self, at: 1), passed: try row.decode(Bool.self, at: 2),
                summary: try row.decode(String.self, at: 3), evidence: evidence, checkedAt: try row.decode(Date.self, at: 5),
                validUntil: try row.decode(Date.self, at: 6))
        }
        var assessments: [String: ManualAssessment] = [:]
        for row in try await db.query("""
            SELECT requirement_id, status, assessor, notes, evidence, recorded_by, assessed_at FROM compliance_assessments
            """) {
            let id = try row.decode(String.self, at: 0)
            assessments[id] = ManualAssessment(
                requirementID: id, status: RequirementStatus(rawValue: try row.decode(String.self, at: 1)) ?? .notAssessed,
                assessor: try row.decode(String.self, at: 2), notes: try row.decode(String.self, at: 3),
                evidence: try row.decode(String.self, at: 4), recordedBy: try row.decode(String.self, at: 5),
                assessedAt: try row.decode(Date.self, at: 6))
        }
        return ComplianceEvidence(results: results, assessments: assessments, lastRun: run, now: now)
    }

    /// Records (replaces) the manual assessment of a requirement.
    static func saveAssessment(_ assessment: ManualAssessment, on db: PostgresConnection) async throws {
        try await db.execute("""
            INSERT INTO compliance_assessments (requirement_id, status, assessor, notes, evidence, recorded_by, assessed_at)
            VALUES (\(assessment.requirementID), \(assessment.status.rawValue), \(assessment.assessor), \(assessment.notes),
                    \(assessment.evidence), \(assessment.recordedBy), \(assessment.assessedAt))
            ON CONFLICT (requirement_id) DO UPDATE SET status = EXCLUDED.status, assessor = EXCLUDED.assessor, notes = EXCLUDED.notes,
                evidence = EXCLUDED.evidence, recorded_by = EXCLUDED.recorded_by, assessed_at = EXCLUDED.assessed_at
            """)
    }

    /// Writes the day's snapshot of the score (the day's latest computation wins).
    static func saveSnapshot(_ score: ComplianceScore, on db: PostgresConnection) async throws {
        let parts = String(decoding: try JSONEncoder.api.encode(score.parts), as: UTF8.self)
        try await db.execute("""
            INSERT INTO compliance_score_snapshots (day, score, assessed_weight, parts, taken_at)
            VALUES ((\(score.computedAt)::timestamptz AT TIME ZONE 'UTC')::date, \(score.score)::float8, \(score.assessedWeight)::int, \(parts)::jsonb,
                    \(score.computedAt)::timestamptz)
            ON CONFLICT (day) DO UPDATE SET score = EXCLUDED.score, assessed_weight = EXCLUDED.assessed_weight, parts = EXCLUDED.parts,
                taken_at = EXCLUDED.taken_at
            """)
    }

    /// The snapshots of the last `days` days, oldest first.
    static func history(days: Int, on db: PostgresConnection) async throws -> [ScoreSnapshot] {
        try await db.query("""
            SELECT to_char(day, 'YYYY-MM-DD'), score, assessed_weight, taken_at FROM compliance_score_snapshots
            WHERE day > (now() AT TIME ZONE 'UTC')::date - \(days)::int ORDER BY day
            """).map {
            ScoreSnapshot(day: try $0.decode(String.self, at: 0), score: try $0.decode(Double?.self, at: 1),
                          assessedWeight: try $0.decode(Int.self, at: 2), takenAt: try $0.decode(Date.self, at: 3))
        }
    }
}
