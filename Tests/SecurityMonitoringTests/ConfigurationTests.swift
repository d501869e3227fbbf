import Foundation
import MingusCore
@testable import MingusSecurityMonitoring
import Testing

/// The playbooks and droplet rules files: what they accept, and mistakes named with file, line and setting.
@Suite struct ConfigurationTests {
    @Test func theShippedFilesLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let playbooks = try Playbooks.load(path: root.appendingPathComponent("Deploy/security-playbooks.yaml").path)
        let bruteForce = try #require(playbooks.playbook(kind: "security_rule", rule: "auth_failures"))
        #expect(bruteForce.steps.first?.action == .blockAddress)
        #expect(playbooks.playbook(kind: "card_number", rule: nil)?.steps.contains { $0.action == .openBreach } == true)
        let rules = try DropletRules.load(path: root.appendingPathComponent("Deploy/droplet-rules.yaml").path)
        #expect(rules.rules.contains { $0.condition == .above(.cpuPercent, 90) })
    }

    @Test func mistakesNameFileLineAndSetting() {
        let yaml = """
            playbooks:
              - name: one
                match: [manual]
                steps:
                  - name: Block
                    action: block_everything
            """
        #expect {
            _ = try Playbooks(yaml: yaml, file: "p.yaml")
        } throws: { error in
            "\(error)".hasPrefix("p.yaml:6: playbooks[0].steps[0].action:")
        }
        let rules = """
            rules:
              - name: cpu
                metric: cpu_percent
            """
        #expect {
            _ = try DropletRules(yaml: rules, file: "r.yaml")
        } throws: { error in
            "\(error)".contains("r.yaml:2") && "\(error)".contains("above")
        }
    }

    @Test func cpuUseComesFromTheModeCounters() {
        let t0 = Date(timeIntervalSince1970: 1_700_000_000), t1 = t0.addingTimeInterval(60)
        let series = [
            MetricSeries(labels: ["mode": "idle"], points: [MetricPoint(at: t0, value: 100), MetricPoint(at: t1, value: 115)]),
            MetricSeries(labels: ["mode": "user"], points: [MetricPoint(at: t0, value: 50), MetricPoint(at: t1, value: 95)]),
        ]
        let points = DropletMonitor.cpuPercent(series)
        #expect(points.count == 1)
        #expect(abs(points[0].value - 75) < 0.001)
    }

    @Test func addressesAreCheckedAndGroupTheirDetections() {
        #expect(IncidentEngine.isAddress("203.0.113.7"))
        #expect(IncidentEngine.isAddress("2001:db8::1"))
        #expect(!IncidentEngine.isAddress("203.0.113"))
        let detection = SecurityDetectionJob(kind: "security_rule", rule: "auth_failures", severity: .high, dedupKey: "logs:x:api:auth_failures:203.0.113.7",
                                             title: "t", summary: "s", service: "api", sourceAddress: "203.0.113.7", detectedAt: Date(), reportedBy: "logs-worker")
        var other = detection
        other.service = "web"
        other.dedupKey = "logs:x:web:auth_failures:203.0.113.7"
        #expect(IncidentEngine.incidentKey(detection) == IncidentEngine.incidentKey(other))
    }
}
