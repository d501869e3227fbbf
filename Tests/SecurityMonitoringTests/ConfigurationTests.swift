import Foundation
import Logging
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
        #expect(playbooks.playbook(kind: "hipaa_violation", rule: "bulk_read")?.name == "hipaa_violation")
        #expect(playbooks.playbook(kind: "hipaa_violation", rule: "break_glass")?.steps.map(\.action) == [.manual])
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

    @Test func gatewayAuthFailuresBecomeOneDetectionPerLimitWithinTheWindow() async throws {
        let published = AsyncStream<SecurityDetectionJob>.makeStream()
        let detector = AuthFailureDetector(policy: .init(limit: 3, window: .seconds(60)), ignoring: ["10.0.0.1"], logger: Logger(label: "test")) {
            published.continuation.yield($0)
        }
        let t0 = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(detector.failed(address: "192.0.2.1", at: t0) == nil)
        #expect(detector.failed(address: "192.0.2.1", at: t0.addingTimeInterval(10)) == nil)
        // Another address counts on its own.
        #expect(detector.failed(address: "192.0.2.2", at: t0.addingTimeInterval(11)) == nil)
        let first = try #require(detector.failed(address: "192.0.2.1", at: t0.addingTimeInterval(20)))
        #expect(first.kind == "auth_failures" && first.rule == nil && first.sourceAddress == "192.0.2.1" && first.severity == .high)
        #expect(first.reportedBy == "gateway" && first.service == "gateway")
        // The count starts again: three more make the next detection of the same attack (same incident key).
        #expect(detector.failed(address: "192.0.2.1", at: t0.addingTimeInterval(21)) == nil)
        #expect(detector.failed(address: "192.0.2.1", at: t0.addingTimeInterval(22)) == nil)
        let second = try #require(detector.failed(address: "192.0.2.1", at: t0.addingTimeInterval(23)))
        #expect(IncidentEngine.incidentKey(first) == IncidentEngine.incidentKey(second))
        // Failures spread beyond the window make none.
        for minute in 0..<5 { #expect(detector.failed(address: "192.0.2.3", at: t0.addingTimeInterval(Double(minute) * 61)) == nil) }
        // Loopback, ignored (trusted proxy) and non-addresses are never counted.
        for address in ["127.0.0.1", "::1", "10.0.0.1", ""] {
            for _ in 0..<5 { #expect(detector.failed(address: address, at: t0) == nil, "\(address)") }
        }
        // Both detections were handed to the publisher.
        var seen: [SecurityDetectionJob] = []
        for await job in published.stream {
            seen.append(job)
            if seen.count == 2 { break }
        }
        #expect(seen.count == 2 && seen.allSatisfy { $0.kind == "auth_failures" && $0.sourceAddress == "192.0.2.1" })

        #expect(try AuthFailureDetector.Policy(environment: [:]) == .init(limit: 10, window: .seconds(300)))
        #expect(try AuthFailureDetector.Policy(environment: ["MINGUS_AUTH_FAILURE_LIMIT": "0", "MINGUS_AUTH_FAILURE_WINDOW": "30s"])
                == .init(limit: 0, window: .seconds(30)))
        #expect { try AuthFailureDetector.Policy(environment: ["MINGUS_AUTH_FAILURE_LIMIT": "many"]) } throws: { "\($0)".contains("MINGUS_AUTH_FAILURE_LIMIT") }
        #expect { try AuthFailureDetector.Policy(environment: ["MINGUS_AUTH_FAILURE_WINDOW": "soon"]) } throws: { "\($0)".contains("MINGUS_AUTH_FAILURE_WINDOW") }
    }
}
