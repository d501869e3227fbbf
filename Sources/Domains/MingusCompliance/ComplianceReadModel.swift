public import Foundation
import Synchronization
public import MingusHTTP
public import MingusPostgres

/// `GET /compliance/status`: the score and everything behind it.
public struct ComplianceStatusDocument: Sendable, Encodable {
    public var score: ComplianceScore
    public var pci: PCIComplianceSummary
    public var checks: [CheckDocument]
    @Nullable public var lastRun: CheckRun?
    public var generatedAt: Date
}

/// `GET /dashboard/compliance-score`: the score and its daily history.
public struct ComplianceScoreDashboard: Sendable, Encodable {
    public var score: ComplianceScore
    /// One snapshot per day with one, oldest first.
    public var history: [ScoreSnapshot]
}

/// `GET /dashboard/pci-dss`: the summary and the requirement grid.
public struct PCIDashboard: Sendable, Encodable {
    /// One requirement in the grid.
    public struct Cell: Sendable, Encodable {
        public var id: String
        public var title: String
        @Nullable public var parent: String?
        public var status: RequirementStatus
        @Nullable public var assessedBy: String?
        @Nullable public var assessedAt: Date?
        public var overruledManual: Bool
    }

    public var summary: PCIComplianceSummary
    public var requirements: [Cell]
}

/// `GET /security/controls` and `GET /dashboard/security-controls`.
public struct SecurityControlsDocument: Sendable, Encodable {
    /// Controls by category, then by status.
    public var summary: [String: [String: Int]]
    public var controls: [ControlDocument]
    public var generatedAt: Date
}

/// `GET /pci/requirements`.
public struct RequirementsDocument: Sendable, Encodable {
    public var pciDssVersion = "4.0"
    public var requirements: [RequirementDocument]
    public var generatedAt: Date
}

/// `GET /compliance/report`: the document for an auditor (also rendered as HTML and PDF).
public struct ComplianceReport: Sendable, Encodable {
    public var title: String
    public var generatedAt: Date
    public var score: ComplianceScore
    public var history: [ScoreSnapshot]
    public var pci: PCIComplianceSummary
    public var requirements: [RequirementDocument]
    public var checks: [CheckDocument]
    public var controls: [ControlDocument]
    @Nullable public var lastRun: CheckRun?
}

/// The compliance documents, computed from the stored check results, manual assessments and
/// score snapshots only: reading never runs a check, so polling stays cheap (four small queries
/// on one connection, at most once a second).
///
/// The gateway's routes and the server-rendered dashboard call these functions directly.
///
/// What was read is kept for `maxAge` (one second by default) and shared by every request of the
/// process meanwhile, so that a dashboard polled by many clients costs the database one read a
/// second; ``invalidate()`` drops it (a manual assessment does, in the gateway that recorded it).
/// Freshness of check results is judged at each call's `date`.
public struct ComplianceReadModel: Sendable {
    let database: PostgresClient
    let maxAge: Duration
    private let cache = StoredCache()

    /// Reads through `database` (the gateway's pool), keeping what it read for `maxAge`.
    public init(database: PostgresClient, maxAge: Duration = .seconds(1)) {
        self.database = database
        self.maxAge = maxAge
    }

    /// Days of score history the dashboard and the report show.
    public static let historyDays = 90

    /// The stored rows as last read.
    final class StoredCache: Sendable {
        struct Entry: Sendable {
            var evidence: ComplianceEvidence
            var history: [ScoreSnapshot]
            var readAt: ContinuousClock.Instant
        }

        let entry = Mutex<Entry?>(nil)
    }

    /// Forgets what was read, so that the next call reads again.
    public func invalidate() {
        cache.entry.withLock { $0 = nil }
    }

    func stored(on date: Date) async throws -> (evidence: ComplianceEvidence, history: [ScoreSnapshot]) {
        let now = ContinuousClock.now
        if let entry = cache.entry.withLock({ $0 }), now - entry.readAt < maxAge {
            var evidence = entry.evidence
            evidence.now = date
            return (evidence, entry.history)
        }
        let (evidence, history) = try await database.withConnection { db in
            (try await ComplianceStore.evidence(on: db, now: date), try await ComplianceStore.history(days: Self.historyDays, on: db))
        }
        cache.entry.withLock { $0 = StoredCache.Entry(evidence: evidence, history: history, readAt: now) }
        return (evidence, history)
    }

    /// The stored evidence as of `date`.
    public func evidence(on date: Date = Date()) async throws -> ComplianceEvidence {
        try await stored(on: date).evidence
    }

    /// The score as of `date`, with its daily history.
    public func score(on date: Date = Date()) async throws -> ComplianceScoreDashboard {
        let (evidence, history) = try await stored(on: date)
        return ComplianceScoreDashboard(score: ComplianceComputation.score(evidence), history: history)
    }

    /// Every requirement with its effective status and evidence.
    public func requirements(on date: Date = Date()) async throws -> RequirementsDocument {
        let evidence = try await evidence(on: date)
        return RequirementsDocument(requirements: ComplianceComputation.requirements(evidence), generatedAt: date)
    }

    /// The PCI DSS summary.
    public func pciCompliance(on date: Date = Date()) async throws -> PCIComplianceSummary {
        ComplianceComputation.pciSummary(try await evidence(on: date))
    }

    /// The PCI DSS summary and requirement grid for the dashboard.
    public func pciDashboard(on date: Date = Date()) async throws -> PCIDashboard {
        let evidence = try await evidence(on: date)
        let requirements = ComplianceComputation.requirements(evidence)
        return PCIDashboard(
            summary: ComplianceComputation.pciSummary(evidence, requirements: requirements),
            requirements: requirements.map {
                .init(id: $0.id, title: $0.title, parent: $0.parent, status: $0.status, assessedBy: $0.assessedBy,
                      assessedAt: $0.assessedAt, overruledManual: $0.overruledManual)
            })
    }

    /// The score, the PCI DSS summary and every check's latest result.
    public func status(on date: Date = Date()) async throws -> ComplianceStatusDocument {
        let evidence = try await evidence(on: date)
        let requirements = ComplianceComputation.requirements(evidence)
        return ComplianceStatusDocument(
            score: ComplianceComputation.score(evidence, requirements: requirements),
            pci: ComplianceComputation.pciSummary(evidence, requirements: requirements),
            checks: ComplianceComputation.checks(evidence), lastRun: evidence.lastRun, generatedAt: date)
    }

    /// The technical, administrative and physical controls with their tests and results.
    public func controls(on date: Date = Date()) async throws -> SecurityControlsDocument {
        Self.controlsDocument(try await evidence(on: date))
    }

    static func controlsDocument(_ evidence: ComplianceEvidence, requirements: [RequirementDocument]? = nil) -> SecurityControlsDocument {
        let controls = ComplianceComputation.controls(evidence, requirements: requirements)
        var summary: [String: [String: Int]] = [:]
        for category in ["technical", "administrative", "physical"] {
            summary[category] = ["effective": 0, "ineffective": 0, "not_tested": 0, "not_applicable": 0]
        }
        for control in controls { summary[control.category, default: [:]][control.status, default: 0] += 1 }
        return SecurityControlsDocument(summary: summary, controls: controls, generatedAt: evidence.now)
    }

    /// The whole report.
    public func report(on date: Date = Date()) async throws -> ComplianceReport {
        do {
            let (evidence, history) = try await stored(on: date)
            let requirements = ComplianceComputation.requirements(evidence)
            return ComplianceReport(
                title: "Mingus compliance report", generatedAt: date,
                score: ComplianceComputation.score(evidence, requirements: requirements), history: history,
                pci: ComplianceComputation.pciSummary(evidence, requirements: requirements), requirements: requirements,
                checks: ComplianceComputation.checks(evidence),
                controls: ComplianceComputation.controls(evidence, requirements: requirements), lastRun: evidence.lastRun)
        }
    }
}
