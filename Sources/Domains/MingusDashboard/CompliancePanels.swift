public import Foundation
import MingusAlerts
import MingusBreach
public import MingusCompliance
import MingusPayments
public import MingusHTTP
import MingusSecurity

/// `GET /api/financial/dashboard/overview`: the headline of every panel in one answer.
public struct DashboardOverview: Encodable, Sendable {
    /// The compliance score (nil while no part has evidence) and which parts count.
    public struct Score: Encodable, Sendable {
        @Nullable public var score: Double?
        public var status: String
        public var assessedParts: [String]
        public var notAssessedParts: [String]
    }
    /// PCI DSS requirements by status.
    public struct PCI: Encodable, Sendable {
        public var status: String
        public var compliant: Int
        public var nonCompliant: Int
        public var notAssessed: Int
        public var notApplicable: Int
    }
    /// Payments of the last 24 hours.
    public struct Payments: Encodable, Sendable {
        public var decided: Int64
        @Nullable public var authorizationRate: Double?
        @Nullable public var declineRate: Double?
        public var pending: Int64
    }
    /// Open breaches and their deadlines.
    public struct Breaches: Encodable, Sendable {
        public var open: Int64
        public var obligationsOverdue: Int64
        public var obligationsDueSoon: Int64
    }

    public var score: Score
    public var pci: PCI
    public var payments: Payments
    public var breaches: Breaches
    public var alertsFiring: Int64
    public var generatedAt: Date
}

extension DashboardData {
    /// The compliance score and its daily history (``ComplianceReadModel``).
    public static func complianceScore(_ input: DashboardInput) async throws -> ComplianceScoreDashboard {
        try await ComplianceReadModel(database: input.database).score(on: input.now)
    }

    /// Every PCI DSS requirement's status.
    public static func pciDss(_ input: DashboardInput) async throws -> PCIDashboard {
        try await ComplianceReadModel(database: input.database).pciDashboard(on: input.now)
    }

    /// The headline figures of every panel.
    public static func overview(_ input: DashboardInput) async throws -> DashboardOverview {
        async let score = complianceScore(input)
        async let pci = pciDss(input)
        async let payments = paymentProcessing(input)
        async let breaches = dataBreaches(input)
        async let alerts = alerts(input)
        let (s, p, pay, b, a) = try await (score, pci, payments, breaches, alerts)
        return DashboardOverview(
            score: .init(score: s.score.score, status: s.score.status, assessedParts: s.score.assessedParts.map(\.rawValue),
                         notAssessedParts: s.score.notAssessedParts.map(\.rawValue)),
            pci: .init(status: p.summary.status.rawValue, compliant: p.summary.counts.compliant, nonCompliant: p.summary.counts.nonCompliant,
                       notAssessed: p.summary.counts.notAssessed, notApplicable: p.summary.counts.notApplicable),
            payments: .init(decided: pay.decided, authorizationRate: pay.authorizationRate, declineRate: pay.declineRate, pending: pay.pending),
            breaches: .init(open: b.openBreaches, obligationsOverdue: b.overdue, obligationsDueSoon: b.dueSoon),
            alertsFiring: a.firing, generatedAt: input.now)
    }
}

extension DashboardPanel {
    static let compliance = DashboardPanel(
        id: "compliance", title: "Compliance score", role: .complianceRead, template: """
            <div class="figures">
              <p><span class="figure" id="compliance-score">{{score}}</span> {{status}}</p>
              {{#parts}}<p><span class="figure">{{score}}</span> {{title}} ({{weight}} %)</p>{{/parts}}
            </div>
            <svg class="chart" viewBox="0 0 600 120" role="img" aria-label="Compliance score, one point a day">
              {{#has_trend}}<polyline class="trend" fill="none" points="{{points}}"/>{{/has_trend}}
              <line class="axis" x1="0" y1="120" x2="600" y2="120"/>
            </svg>
            <p class="legend">{{trend_text}} · {{formula}}</p>
            """,
        summary: { try await DashboardData.complianceScore($0) },
        view: { dashboard, _ in
            let scored = dashboard.history.compactMap { snapshot in snapshot.score.map { (snapshot.day, $0) } }
            let step = 600.0 / Double(max(1, scored.count - 1))
            let points = scored.enumerated().map { index, entry in
                String(format: "%.1f,%.1f", Double(index) * step, 120 - entry.1 * 1.2)
            }.joined(separator: " ")
            return [
                "score": dashboard.score.score.map { String(format: "%.1f", $0) } ?? "–",
                "status": dashboard.score.status.replacingOccurrences(of: "_", with: " "),
                "parts": dashboard.score.parts.map { part -> [String: Any] in
                    ["title": part.title, "weight": part.weight, "score": part.score.map { String(format: "%.0f", $0) } ?? "not assessed"]
                },
                "has_trend": scored.count > 1, "points": points,
                "trend_text": scored.isEmpty ? "No daily score yet" : "\(scored.count) days from \(scored.first!.0) to \(scored.last!.0)",
                "formula": dashboard.score.formula,
            ]
        })

    static let pci = DashboardPanel(
        id: "pci", title: "PCI DSS v4.0 requirements", role: .complianceRead, template: """
            <div class="figures">
              <p><span class="figure" id="pci-compliant">{{compliant}}</span> compliant</p>
              <p><span class="figure" id="pci-non-compliant">{{non_compliant}}</span> not compliant</p>
              <p><span class="figure">{{not_assessed}}</span> not assessed</p>
              <p><span class="figure">{{not_applicable}}</span> not applicable</p>
            </div>
            <table>
              <thead><tr><th>Requirement</th><th>Status</th><th>Assessed by</th></tr></thead>
              <tbody>{{#requirements}}<tr class="status-{{status}}"><td>{{id}} {{title}}</td><td>{{status_text}}{{#overruled}} (overrules a manual assessment){{/overruled}}</td><td>{{assessed_by}}</td></tr>{{/requirements}}</tbody>
            </table>
            """,
        summary: { try await DashboardData.pciDss($0) },
        view: { dashboard, _ in
            [
                "compliant": dashboard.summary.counts.compliant, "non_compliant": dashboard.summary.counts.nonCompliant,
                "not_assessed": dashboard.summary.counts.notAssessed, "not_applicable": dashboard.summary.counts.notApplicable,
                "requirements": dashboard.requirements.map { cell -> [String: Any] in
                    ["id": cell.id, "title": cell.title, "status": cell.status.rawValue,
                     "status_text": cell.status.rawValue.replacingOccurrences(of: "_", with: " "),
                     "overruled": cell.overruledManual, "assessed_by": cell.assessedBy ?? "–"]
                },
            ]
        })
}
