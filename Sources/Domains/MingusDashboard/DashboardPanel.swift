public import Foundation
public import MingusAlerts
public import MingusBreach
import MingusCompliance
import MingusHTTP
public import MingusPayments
public import MingusPostgres
public import MingusSecurity
public import MingusSecurityMonitoring
import Mustache

/// What a panel's data function may read.
public struct DashboardInput: Sendable {
    public var database: PostgresClient
    /// The time the page (or API answer) is for.
    public var now: Date
    /// Queue depths and consumers from the broker (the status panel); nil answers when none is at hand.
    public var queueInfo: IntegrationsStatus.QueueInspector

    public init(database: PostgresClient, now: Date, queueInfo: @escaping IntegrationsStatus.QueueInspector = { _ in nil }) {
        self.database = database
        self.now = now
        self.queueInfo = queueInfo
    }
}

/// One panel of `GET /dashboard/`: a mustache template (a partial, rendered into the page's
/// `<section>`) and the function producing its context from a summary. The summary function is
/// the same one the panel's JSON endpoint answers with, so page and API never disagree.
///
/// Adding a panel: write the domain's store function (its SQL stays in its domain), add a
/// ``DashboardData`` function if an API endpoint serves it too, and append a panel to
/// ``standard``. Styles go in ``DashboardPage/stylesheet`` (the CSP allows exactly that stylesheet).
public struct DashboardPanel: Sendable {
    /// The section's id (`panel-<id>`).
    public let id: String
    public let title: String
    /// Users without this role do not see the panel.
    public let role: Role
    private let produce: @Sendable (DashboardInput, DashboardCache) async throws -> String

    /// A panel whose `summary` is rendered by `template` with the context `view` makes of it.
    public init<Summary: Sendable>(id: String, title: String, role: Role, template: String,
                                   summary: @escaping @Sendable (DashboardInput) async throws -> Summary,
                                   view: @escaping @Sendable (Summary, DashboardInput) -> [String: Any]) {
        self.id = id
        self.title = title
        self.role = role
        // The templates are constants of this module: one that does not parse fails every page test.
        let compiled = try! MustacheTemplate(string: template)
        produce = { input, cache in
            try await cache.value("panel:\(id)") { compiled.render(view(try await summary(input), input)) }
        }
    }

    /// The panel's HTML.
    func render(_ input: DashboardInput, cache: DashboardCache) async throws -> String {
        try await produce(input, cache)
    }

    /// The panels of the page, in order.
    public static let standard: [DashboardPanel] = [.compliance, .pci, .payments, .breaches, .alerts, .status, .activity]
}

/// The data behind the dashboard, one function per panel and JSON endpoint
/// (`/api/financial/dashboard/*`). Each calls the store function of the domain that owns the tables.
public enum DashboardData {
    /// Payments of the last `hours` hours (`payment_hourly_rollups`).
    public static func paymentProcessing(_ input: DashboardInput, hours: Int = 24) async throws -> PaymentActivity {
        try await PaymentStore.activity(hours: hours, now: input.now, on: input.database)
    }

    /// Open breaches and their deadlines.
    public static func dataBreaches(_ input: DashboardInput) async throws -> BreachDeadlines {
        try await BreachStore(database: input.database).deadlines(now: input.now)
    }

    /// Alerts firing now.
    public static func alerts(_ input: DashboardInput) async throws -> FiringAlerts {
        try await AlertStore(database: input.database).firing()
    }

    /// The health of every part of the system (``IntegrationsStatus``, as `GET /api/integrations/status`).
    public static func integrationsStatus(_ input: DashboardInput) async throws -> IntegrationsStatus.Report {
        try await IntegrationsStatus(database: input.database, queueInfo: input.queueInfo).check()
    }

    /// The newest changes in the audit trail (read requests left out).
    public static func recentActivities(_ input: DashboardInput, limit: Int = 20) async throws -> RecentActivities {
        RecentActivities(activities: try await AuditTrail.recentActivity(limit: limit, on: input.database))
    }
}

/// `GET /api/financial/dashboard/recent-activities`: the newest audited changes.
public struct RecentActivities: Encodable, Sendable {
    public var activities: [AuditActivity]
}

// MARK: - The four panels

extension DashboardPanel {
    static let payments = DashboardPanel(
        id: "payments", title: "Payments, last 24 hours", role: .complianceRead, template: """
            <div class="figures">
              <p><span class="figure" id="payments-decided">{{decided}}</span> decided</p>
              <p><span class="figure" id="payments-authorization-rate">{{authorization_rate}}</span> authorized</p>
              <p><span class="figure" id="payments-decline-rate">{{decline_rate}}</span> declined</p>
              <p><span class="figure">{{failed}}</span> failed</p>
              <p><span class="figure">{{pending}}</span> pending now</p>
            </div>
            <svg class="chart" viewBox="0 0 {{width}} {{height}}" role="img" aria-label="Payments per hour: authorized, declined, failed">
              {{#bars}}<g><title>{{label}}: {{authorized}} authorized, {{declined}} declined, {{failed}} failed</title>
                <rect class="authorized" x="{{x}}" y="{{authorized_y}}" width="{{w}}" height="{{authorized_h}}"/>
                <rect class="declined" x="{{x}}" y="{{declined_y}}" width="{{w}}" height="{{declined_h}}"/>
                <rect class="failed" x="{{x}}" y="{{failed_y}}" width="{{w}}" height="{{failed_h}}"/></g>
              {{/bars}}
              <line class="axis" x1="0" y1="{{height}}" x2="{{width}}" y2="{{height}}"/>
            </svg>
            <p class="legend"><span class="key authorized-key">■</span> authorized <span class="key declined-key">■</span> declined
              <span class="key failed-key">■</span> failed · hours in UTC, {{first_hour}} to now</p>
            <table>
              <thead><tr><th>Currency</th><th>Payments</th><th>Authorized amount</th><th>All decided</th></tr></thead>
              <tbody>{{#volumes}}<tr><td>{{currency}}</td><td>{{payments}}</td><td>{{authorized}}</td><td>{{total}}</td></tr>{{/volumes}}
              {{^volumes}}<tr><td colspan="4">No payments decided in the window.</td></tr>{{/volumes}}</tbody>
            </table>
            <p>Request to decision: mean {{latency_mean}}, p50 ≤ {{latency_p50}}, p95 ≤ {{latency_p95}}, p99 ≤ {{latency_p99}}, max {{latency_max}}.</p>
            """,
        summary: { try await DashboardData.paymentProcessing($0) },
        view: { activity, _ in
            let width = 600.0, height = 140.0
            let peak = max(1, activity.hourly.map { $0.authorized + $0.declined + $0.failed }.max() ?? 1)
            let slot = width / Double(max(1, activity.hourly.count))
            let bars: [[String: Any]] = activity.hourly.enumerated().map { index, hour in
                func h(_ count: Int64) -> Double { (Double(count) / Double(peak) * height * 10).rounded() / 10 }
                let authorizedH = h(hour.authorized), declinedH = h(hour.declined), failedH = h(hour.failed)
                return [
                    "x": format(Double(index) * slot + 1), "w": format(max(1, slot - 2)),
                    "authorized_y": format(height - authorizedH), "authorized_h": format(authorizedH),
                    "declined_y": format(height - authorizedH - declinedH), "declined_h": format(declinedH),
                    "failed_y": format(height - authorizedH - declinedH - failedH), "failed_h": format(failedH),
                    "label": hourLabel(hour.hour), "authorized": hour.authorized, "declined": hour.declined, "failed": hour.failed,
                ]
            }
            return [
                "decided": grouped(activity.decided), "failed": grouped(activity.failed), "pending": grouped(activity.pending),
                "authorization_rate": percent(activity.authorizationRate), "decline_rate": percent(activity.declineRate),
                "width": format(width), "height": format(height), "bars": bars,
                "first_hour": hourLabel(activity.since),
                "volumes": activity.volumes.map { volume -> [String: Any] in
                    ["currency": volume.currency, "payments": grouped(volume.payments),
                     "authorized": minorUnits(volume.authorizedAmount), "total": minorUnits(volume.totalAmount)]
                },
                "latency_mean": milliseconds(activity.latencyMs.mean), "latency_p50": milliseconds(activity.latencyMs.p50.map(Double.init)),
                "latency_p95": milliseconds(activity.latencyMs.p95.map(Double.init)), "latency_p99": milliseconds(activity.latencyMs.p99.map(Double.init)),
                "latency_max": milliseconds(activity.latencyMs.max.map(Double.init)),
            ]
        })

    static let breaches = DashboardPanel(
        id: "breaches", title: "Breaches and notification deadlines", role: .complianceRead, template: """
            <div class="figures">
              <p><span class="figure" id="breaches-open">{{open}}</span> open breaches</p>
              <p><span class="figure" id="breaches-overdue">{{overdue}}</span> obligations overdue</p>
              <p><span class="figure" id="breaches-due-soon">{{due_soon}}</span> due within {{due_within_hours}} h</p>
              <p><span class="figure">{{open_obligations}}</span> open obligations</p>
            </div>
            <svg class="chart bars" viewBox="0 0 600 {{height}}" role="img" aria-label="Open breaches by severity">
              {{#severities}}<g><title>{{severity}}: {{open}}</title>
                <text x="0" y="{{text_y}}">{{severity}}</text>
                <rect class="severity-{{severity}}" x="90" y="{{y}}" width="{{w}}" height="18"/>
                <text x="{{label_x}}" y="{{text_y}}">{{open}}</text></g>
              {{/severities}}
            </svg>
            <table>
              <thead><tr><th>Deadline (UTC)</th><th>Breach</th><th>Severity</th><th>Notify</th><th>Regime</th></tr></thead>
              <tbody>{{#deadlines}}<tr class="{{#overdue}}overdue{{/overdue}}"><td>{{deadline}}{{#overdue}} <strong>overdue</strong>{{/overdue}}</td>
                <td>{{title}}</td><td>{{severity}}</td><td>{{notify}}</td><td>{{regime}}</td></tr>{{/deadlines}}
              {{^deadlines}}<tr><td colspan="5">No open obligation has a deadline.</td></tr>{{/deadlines}}</tbody>
            </table>
            """,
        summary: { try await DashboardData.dataBreaches($0) },
        view: { breaches, _ in
            let peak = max(1, breaches.bySeverity.map(\.open).max() ?? 1)
            return [
                "open": grouped(breaches.openBreaches), "overdue": grouped(breaches.overdue), "due_soon": grouped(breaches.dueSoon),
                "due_within_hours": breaches.dueWithinHours, "open_obligations": grouped(breaches.openObligations),
                "height": breaches.bySeverity.count * 24,
                "severities": breaches.bySeverity.enumerated().map { index, entry -> [String: Any] in
                    let w = (Double(entry.open) / Double(peak) * 440).rounded()
                    return ["severity": entry.severity, "open": entry.open, "y": index * 24, "text_y": index * 24 + 14,
                            "w": format(w), "label_x": format(96 + w)]
                },
                "deadlines": breaches.deadlines.map { item -> [String: Any] in
                    ["deadline": minuteLabel(item.deadline), "overdue": item.overdue, "title": item.breachTitle,
                     "severity": item.severity, "notify": item.notify, "regime": item.regimeName]
                },
            ]
        })

    static let alerts = DashboardPanel(
        id: "alerts", title: "Open alerts", role: .complianceRead, template: """
            <div class="figures">
              <p><span class="figure" id="alerts-firing">{{firing}}</span> firing</p>
              {{#severities}}<p><span class="figure severity-text-{{severity}}">{{firing}}</span> {{severity}}</p>{{/severities}}
            </div>
            <table>
              <thead><tr><th>Since (UTC)</th><th>Severity</th><th>Alert</th><th>Source</th><th>Received</th></tr></thead>
              <tbody>{{#latest}}<tr><td>{{since}}</td><td>{{severity}}</td><td>{{title}}</td><td>{{source}}</td><td>{{received}}</td></tr>{{/latest}}
              {{^latest}}<tr><td colspan="5">No alert is firing.</td></tr>{{/latest}}</tbody>
            </table>
            """,
        summary: { try await DashboardData.alerts($0) },
        view: { alerts, _ in
            [
                "firing": grouped(alerts.firing),
                "severities": alerts.bySeverity.map { ["severity": $0.severity, "firing": grouped($0.firing)] as [String: Any] },
                "latest": alerts.latest.map { alert -> [String: Any] in
                    ["since": minuteLabel(alert.startsAt), "severity": alert.severity, "title": alert.title, "source": alert.source,
                     "received": alert.receivedCount]
                },
            ]
        })

    static let status = DashboardPanel(
        id: "status", title: "Integrations status", role: .securityRead, template: """
            <div class="figures">
              <p><span class="figure health-{{status}}" id="status-overall">{{status}}</span> overall</p>
              <p><span class="figure" id="status-healthy">{{healthy}}</span> healthy</p>
              <p><span class="figure" id="status-degraded">{{degraded}}</span> degraded</p>
              <p><span class="figure" id="status-down">{{down}}</span> down</p>
            </div>
            <table>
              <thead><tr><th>Part</th><th>Status</th><th>Why</th><th>Details</th></tr></thead>
              <tbody>{{#items}}<tr><td>{{component}} {{name}}</td><td class="health-{{status}}">{{status}}</td><td>{{reasons}}</td><td>{{details}}</td></tr>{{/items}}
              {{^items}}<tr><td colspan="4">No process has reported yet.</td></tr>{{/items}}</tbody>
            </table>
            <p class="legend">Checked {{checked}} UTC; the worst parts first. The same items as GET /api/integrations/status.</p>
            """,
        summary: { try await DashboardData.integrationsStatus($0) },
        view: { report, _ in
            let rank = IntegrationsStatus.rank
            // Worst first; within a status, the order of the report.
            let items = report.items.enumerated().sorted { lhs, rhs in
                let l = rank[lhs.element.status] ?? 0, r = rank[rhs.element.status] ?? 0
                return l != r ? l > r : lhs.offset < rhs.offset
            }.map(\.element)
            func count(_ status: String) -> Int { report.items.filter { $0.status == status }.count }
            return [
                "status": report.status, "healthy": count("healthy"), "degraded": count("degraded"), "down": count("down"),
                "checked": secondLabel(report.checkedAt),
                "items": items.map { item -> [String: Any] in
                    ["component": item.component.replacingOccurrences(of: "_", with: " "), "name": item.name, "status": item.status,
                     "reasons": item.reasons.isEmpty ? "–" : item.reasons.joined(separator: "; "),
                     "details": item.details.sorted { $0.key < $1.key }.map { "\($0.key.replacingOccurrences(of: "_", with: " ")) \($0.value.isEmpty ? "–" : $0.value)" }
                        .joined(separator: " · ")]
                },
            ]
        })

    static let activity = DashboardPanel(
        id: "activity", title: "Recent activity", role: .complianceRead, template: """
            <table>
              <thead><tr><th>When (UTC)</th><th>Who</th><th>What</th><th>On</th><th>Outcome</th></tr></thead>
              <tbody>{{#activities}}<tr><td>{{when}}</td><td>{{actor}}</td><td>{{action}}</td><td>{{resource}}</td><td class="outcome-{{outcome}}">{{outcome}}</td></tr>{{/activities}}
              {{^activities}}<tr><td colspan="5">Nothing recorded yet.</td></tr>{{/activities}}</tbody>
            </table>
            """,
        summary: { try await DashboardData.recentActivities($0, limit: 15) },
        view: { recent, _ in
            ["activities": recent.activities.map { entry -> [String: Any] in
                ["when": secondLabel(entry.occurredAt), "actor": entry.actor, "action": entry.action, "resource": entry.resource,
                 "outcome": entry.outcome]
            }]
        })
}

// MARK: - Formatting

private func format(_ value: Double) -> String {
    value == value.rounded() ? String(Int64(value)) : String(format: "%.1f", value)
}

/// 1234567 → "1,234,567".
func grouped(_ value: Int64) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (index, character) in digits.enumerated() {
        if index > 0, (digits.count - index) % 3 == 0 { out += "," }
        out.append(character)
    }
    return (value < 0 ? "-" : "") + out
}

private func percent(_ rate: Double?) -> String {
    rate.map { String(format: "%.1f %%", $0 * 100) } ?? "–"
}

private func milliseconds(_ value: Double?) -> String {
    guard let value else { return "–" }
    return value >= 1000 ? String(format: "%.1f s", value / 1000) : String(format: "%.0f ms", value)
}

/// Minor units with two decimals (the dashboard's overview; exact amounts are in the API).
private func minorUnits(_ value: Int64) -> String {
    "\(grouped(value / 100)).\(String(format: "%02d", Int(value.magnitude % 100)))"
}

/// "11-27 09:00".
private func hourLabel(_ date: Date) -> String {
    APITime.format(date).dropFirst(5).prefix(11).replacingOccurrences(of: "T", with: " ")
}

private func minuteLabel(_ date: Date) -> String {
    APITime.format(date).prefix(16).replacingOccurrences(of: "T", with: " ")
}

private func secondLabel(_ date: Date) -> String {
    APITime.format(date).prefix(19).replacingOccurrences(of: "T", with: " ")
}
