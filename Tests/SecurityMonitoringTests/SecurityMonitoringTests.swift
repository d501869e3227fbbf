import Foundation
import MingusPostgres
import MingusSecurity
import MingusSecurityMonitoring
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite("Security monitoring: incidents from detections, playbooks, the gateway deny list, DigitalOcean, the status view", .serialized)
struct SecurityMonitoringTests {
    static func failures(_ address: String, _ count: Int) -> [String] {
        (0..<count).map { "Failed password for user\($0) from \(address) port \(40000 + $0) ssh2" }
    }

    @Test("a brute force in the logs opens one incident whose playbook blocks the address at the gateway and pages on-call once; the approval-gated step waits")
    func bruteForce() async throws {
        try await SecurityCluster.with { security in
            let attacker = "203.0.113.7"
            // The default auth_failures rule: 10 lines from one source within 5 minutes.
            try await security.sendLogs("sshd", Self.failures(attacker, 12))
            try await security.waitFor("SELECT count(*) FROM security_incidents WHERE source_address = '\(attacker)'")
            let id = try await security.database.query("SELECT id FROM security_incidents WHERE source_address = \(attacker)")[0]
                .decode(UUID.self, at: 0).uuidString.lowercased()
            // Block and page ran; the revocation waits for a person, and the manual step after it too.
            try await security.waitFor("SELECT count(*) FROM security_incident_steps WHERE incident_id = '\(id)' AND position = 3 AND status = 'awaiting_approval'")
            let incident = try await security.request("GET", "/api/security/incidents/\(id)")
            try #require(incident.status == 200, "\(incident.raw)")
            let steps = try #require(incident.body["steps"] as? [[String: Any]])
            #expect(steps.map { $0["status"] as? String } == ["done", "done", "awaiting_approval", "pending"], "\(steps)")
            #expect(incident.body["playbook"] as? String == "brute_force")
            let timeline = try #require(incident.body["timeline"] as? [[String: Any]])
            #expect(timeline.first?["kind"] as? String == "opened")
            #expect(timeline.contains { $0["kind"] as? String == "action" && ($0["detail"] as? String ?? "").contains("block_address") })
            // Every gateway process refuses the address within seconds; others still get in.
            let refused = try await eventually(timeout: .seconds(30)) {
                try await security.request("GET", "/api/security/dashboard", from: attacker).status == 403
            }
            #expect(refused)
            let blocked = try await security.request("GET", "/api/security/dashboard", from: attacker)
            #expect((blocked.body["error"] as? [String: Any])?["code"] as? String == "address_blocked")
            #expect(try await security.request("GET", "/api/security/dashboard", from: "198.51.100.20").status == 200)
            // The page is one alert, stored by the alerts worker.
            try await security.waitFor("SELECT count(*) FROM alerts WHERE dedup_key = 'security:incident:\(id)'")
            // The same attacker seen by another service is the same incident: one more detection, no second page.
            try await security.sendLogs("web", Self.failures(attacker, 10))
            try await security.waitFor("SELECT detections FROM security_incidents WHERE id = '\(id)'", 2)
            #expect(try await security.count("SELECT count(*) FROM security_incidents") == 1)
            #expect(try await security.count("SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id WHERE a.dedup_key = 'security:incident:\(id)'") == 1)
            // Each automated action is in the audit trail.
            #expect(try await security.count("""
                SELECT count(*) FROM audit_events WHERE resource = 'security/incidents/\(id)' AND action IN ('security.action.block_address', 'security.action.page_oncall')
                """) == 2)
            // Still waiting: nothing ran step 3 on its own.
            #expect(try await security.count("SELECT count(*) FROM security_incident_steps WHERE incident_id = '\(id)' AND position = 3 AND status = 'awaiting_approval'") == 1)
            // The lifecycle moves forward only.
            #expect(try await security.request("POST", "/api/security/incidents/\(id)/status", ["status": "contained"]).status == 200)
            let back = try await security.request("POST", "/api/security/incidents/\(id)/status", ["status": "triaged"])
            #expect(back.status == 409, "\(back.raw)")
            let dashboard = try await security.request("GET", "/api/security/dashboard")
            #expect((dashboard.body["detections_by_kind"] as? [String: Any])?["security_rule"] as? Int == 2, "\(dashboard.raw)")
            #expect(dashboard.body["mean_seconds_to_contain"] is Double)
        }
    }

    @Test("an approval-gated revocation runs only once approved; bad input is refused naming the field")
    func approvalGate() async throws {
        try await SecurityCluster.with { security in
            let victim = try await security.cluster.key([.securityRead])
            #expect(try await security.request("GET", "/api/security/dashboard", key: victim.key).status == 200)
            let opened = try await security.request("POST", "/api/security/incidents", [
                "title": "Password spraying with a leaked key", "severity": "high", "kind": "auth_failures",
                "source_address": "198.51.100.9", "api_key": victim.name,
            ])
            try #require(opened.status == 202, "\(opened.raw)")
            let id = try #require(opened.body["id"] as? String)
            try await security.waitFor("SELECT count(*) FROM security_incident_steps WHERE incident_id = '\(id)' AND position = 3 AND status = 'awaiting_approval'")
            // Waiting: the key still works.
            #expect(try await security.request("GET", "/api/security/dashboard", key: victim.key).status == 200)
            // A manual step cannot be approved; the gated one can.
            #expect(try await security.request("POST", "/api/security/incidents/\(id)/steps/4", ["decision": "approve"]).status == 409)
            let approved = try await security.request("POST", "/api/security/incidents/\(id)/steps/3", ["decision": "approve", "note": "leaked"])
            try #require(approved.status == 200, "\(approved.raw)")
            try await security.waitFor("SELECT count(*) FROM security_incident_steps WHERE incident_id = '\(id)' AND position = 3 AND status = 'done'")
            #expect(try await security.count("SELECT count(*) FROM mingus_api_keys WHERE name = '\(victim.name)' AND revoked_at IS NOT NULL") == 1)
            let refused = try await eventually(timeout: .seconds(30)) {
                try await security.request("GET", "/api/security/dashboard", key: victim.key).status == 401
            }
            #expect(refused)
            #expect(try await security.count("""
                SELECT count(*) FROM audit_events WHERE resource = 'security/incidents/\(id)' AND action = 'security.action.revoke_api_key'
                """) == 1)
            // Bad input names the field.
            let bad = try await security.request("POST", "/api/security/incidents", ["title": "x", "severity": "urgent"])
            #expect(bad.status == 422 && (bad.body["error"] as? [String: Any])?["field"] as? String == "severity", "\(bad.raw)")
            let address = try await security.request("POST", "/api/security/incidents", ["title": "x", "severity": "low", "source_address": "nowhere"])
            #expect(address.status == 422 && (address.body["error"] as? [String: Any])?["field"] as? String == "source_address")
            #expect(try await security.request("GET", "/api/security/incidents?status=ongoing").status == 400)
            let listed = try await security.request("GET", "/api/security/incidents?severity=high")
            #expect((listed.body["incidents"] as? [[String: Any]])?.count == 1)
        }
    }

    @Test("repeated 401s from one address at the gateway open one auth_failures incident whose playbook blocks it; lifting the block is audited and serves it again")
    func gatewayAuthFailuresAndLift() async throws {
        try await SecurityCluster.with(environment: ["MINGUS_AUTH_FAILURE_LIMIT": "5", "MINGUS_AUTH_FAILURE_WINDOW": "5m"]) { security in
            let attacker = "192.0.2.44", neighbour = "192.0.2.45"
            for _ in 0..<5 {
                #expect(try await security.request("GET", "/api/security/dashboard", key: "not-a-key", from: attacker).status == 401)
            }
            // Four failures from another address stay under the limit.
            for _ in 0..<4 {
                #expect(try await security.request("GET", "/api/security/dashboard", key: "not-a-key", from: neighbour).status == 401)
            }
            try await security.waitFor("SELECT count(*) FROM security_incidents WHERE kind = 'auth_failures' AND source_address = '\(attacker)'")
            let id = try await security.database.query("SELECT id FROM security_incidents WHERE source_address = \(attacker)")[0]
                .decode(UUID.self, at: 0).uuidString.lowercased()
            let incident = try await security.request("GET", "/api/security/incidents/\(id)")
            #expect(incident.body["playbook"] as? String == "brute_force" && incident.body["opened_by"] as? String == "gateway", "\(incident.raw)")
            // The playbook blocks the address: even a valid key is refused from it.
            let refused = try await eventually(timeout: .seconds(30)) {
                try await security.request("GET", "/api/security/dashboard", from: attacker).status == 403
            }
            #expect(refused)
            #expect(try await security.count("SELECT count(*) FROM security_detections WHERE dedup_key LIKE '%\(neighbour)'") == 0)
            let listed = try await security.request("GET", "/api/security/blocks")
            let blocks = try #require(listed.body["blocks"] as? [[String: Any]], "\(listed.raw)")
            #expect(blocks.map { $0["address"] as? String } == [attacker] && blocks.first?["incident_id"] as? String == id, "\(listed.raw)")

            // Lifting: the address must be one, and blocked; the role is security:write.
            let bad = try await security.request("DELETE", "/api/security/blocks/not-an-address")
            #expect(bad.status == 400 && (bad.body["error"] as? [String: Any])?["field"] as? String == "address", "\(bad.raw)")
            #expect(try await security.request("DELETE", "/api/security/blocks/198.51.100.99").status == 404)
            let reader = try await security.cluster.key([.securityRead])
            #expect(try await security.request("DELETE", "/api/security/blocks/\(attacker)", key: reader.key).status == 403)
            let lifted = try await security.request("DELETE", "/api/security/blocks/\(attacker)")
            try #require(lifted.status == 200, "\(lifted.raw)")
            #expect(lifted.body["address"] as? String == attacker && lifted.body["incident_id"] as? String == id)
            #expect(lifted.body["blocked_by"] as? String == "security-worker" && (lifted.body["lifted_by"] as? String ?? "").hasPrefix("apikey:"))
            #expect(lifted.body["expires_at"] is String, "the playbook blocks for 24 h")
            let served = try await eventually(timeout: .seconds(30)) {
                try await security.request("GET", "/api/security/dashboard", from: attacker).status == 200
            }
            #expect(served)
            #expect(try await security.request("DELETE", "/api/security/blocks/\(attacker)").status == 404, "lifted once")
            #expect((try await security.request("GET", "/api/security/blocks").body["blocks"] as? [[String: Any]])?.isEmpty == true)
            #expect(try await security.count("""
                SELECT count(*) FROM audit_events WHERE action = 'security.block.lift' AND resource = 'security/blocks/\(attacker)' AND actor LIKE 'apikey:%'
                """) == 1)
            #expect(try await security.count("""
                SELECT count(*) FROM security_incident_events WHERE incident_id = '\(id)' AND detail LIKE 'block of \(attacker)%lifted'
                """) == 1)

            // The attack goes on: five more failures are one more detection of the same incident, and
            // the block step, done once, does not block the address again.
            for _ in 0..<5 {
                #expect(try await security.request("GET", "/api/security/dashboard", key: "not-a-key", from: attacker).status == 401)
            }
            try await security.waitFor("SELECT detections FROM security_incidents WHERE id = '\(id)'", 2)
            #expect(try await security.count("SELECT count(*) FROM security_incidents WHERE kind = 'auth_failures'") == 1)
            #expect(try await security.count("SELECT count(*) FROM gateway_blocked_addresses") == 0)
        }
    }

    @Test("an incident escalated for a missed time to acknowledge has its alert resolved, with the same dedup key, once acknowledged")
    func escalationResolvedOnAcknowledgement() async throws {
        try await SecurityCluster.with { security in
            let opened = try await security.request("POST", "/api/security/incidents", ["title": "Unusual admin activity", "severity": "high"])
            try #require(opened.status == 202, "\(opened.raw)")
            let id = try #require(opened.body["id"] as? String)
            try await security.waitFor("SELECT count(*) FROM security_incidents WHERE id = '\(id)'")
            // Past its time to acknowledge (1 h for high), within its time to contain (4 h).
            try await security.database.execute("UPDATE security_incidents SET opened_at = now() - interval '2 hours' WHERE id = \(UUID(uuidString: id)!)")
            try await security.waitFor("SELECT count(*) FROM mingus_periodic_schedules WHERE name = 'security.escalate'")
            try await security.database.execute("UPDATE mingus_periodic_schedules SET next_run_at = now() WHERE name = 'security.escalate'")
            let key = "security:incident:\(id):acknowledge"
            try await security.waitFor("SELECT count(*) FROM alerts WHERE dedup_key = '\(key)' AND status = 'firing'")
            #expect(try await security.count("SELECT count(*) FROM alerts WHERE dedup_key LIKE 'security:incident:\(id):%'") == 1, "contain is not missed")

            let triaged = try await security.request("POST", "/api/security/incidents/\(id)/status", ["status": "triaged"])
            try #require(triaged.status == 200, "\(triaged.raw)")
            try await security.waitFor("SELECT count(*) FROM alerts WHERE dedup_key = '\(key)' AND status = 'resolved'")
            #expect(try await security.count("SELECT count(*) FROM alerts WHERE dedup_key LIKE 'security:incident:\(id):%'") == 1, "the same alert")
            #expect(try await security.count("""
                SELECT count(*) FROM security_incidents WHERE id = '\(id)' AND escalated = ARRAY['acknowledge:resolved']
                """) == 1)
            #expect(try await security.count("""
                SELECT count(*) FROM security_incident_events WHERE incident_id = '\(id)' AND kind = 'escalation' AND detail LIKE 'the acknowledge escalation resolved%'
                """) == 1)
            // Another pass neither escalates nor resolves it again.
            let passes = "SELECT count(*) FROM mingus_inbox WHERE message_id LIKE 'schedule/security.escalate/%' OR message_id LIKE 'escalate/%'"
            let before = try await security.count(passes)
            try await security.database.execute("UPDATE mingus_periodic_schedules SET next_run_at = now() WHERE name = 'security.escalate'")
            try await security.waitFor("SELECT (count(*) > \(before))::int::int8 FROM mingus_inbox WHERE message_id LIKE 'schedule/security.escalate/%' OR message_id LIKE 'escalate/%'")
            #expect(try await security.count("""
                SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id WHERE a.dedup_key = '\(key)'
                """) == 2, "one firing, one resolved")
            #expect(try await security.count("""
                SELECT count(*) FROM security_incident_events WHERE incident_id = '\(id)' AND kind = 'escalation'
                """) == 2)
        }
    }

    @Test("a droplet's CPU series crossing the threshold raises one alert, resolved when it clears; the stand-in's contract holds")
    func dropletCPU() async throws {
        let standIn = try await DigitalOceanStandIn.start()
        defer { standIn.process.signal(SIGTERM) }
        let rules = """
            poll: {lookback: 5m, concurrency: 4}
            rules:
              - {name: cpu_high, description: CPU above 90%, metric: cpu_percent, above: 90, for: 2m, severity: high}
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("droplet-rules") + ".yaml")
        try rules.write(to: file, atomically: true, encoding: .utf8)
        // Three droplets, one per page: the poll follows links.pages.next.
        try await standIn.control(["droplets": [["id": 101, "name": "web-1", "status": "active"], ["id": 102, "name": "web-2", "status": "active"],
                                                ["id": 103, "name": "db-1", "status": "active"]],
                                   "cpu": ["101": 97, "102": 20, "103": 30], "page_size": 1])
        try await SecurityCluster.with(environment: ["DIGITALOCEAN_TOKEN": DigitalOceanStandIn.token, "MINGUS_DO_API_URL": standIn.base,
                                                     "MINGUS_DO_RULES": file.path]) { security in
            func pollNow() async throws {
                try await security.waitFor("SELECT count(*) FROM mingus_periodic_schedules WHERE name = 'security.poll'")
                try await security.database.execute("UPDATE mingus_periodic_schedules SET next_run_at = now() WHERE name = 'security.poll'")
            }
            try await pollNow()
            try await security.waitFor("SELECT count(*) FROM alerts WHERE dedup_key = 'do:cpu_high:101' AND status = 'firing'")
            #expect(try await security.count("SELECT count(*) FROM do_droplets") == 3)
            #expect(try await security.count("SELECT count(*) FROM alerts WHERE dedup_key LIKE 'do:%'") == 1)
            #expect(try await security.count("SELECT count(*) FROM do_samples WHERE droplet_id = 101 AND metric = 1 AND value > 90") >= 2)
            // A second poll with the CPU still high adds nothing.
            let polls = "SELECT count(*) FROM mingus_inbox WHERE message_id LIKE 'schedule/security.poll/%'"
            let polled = try await security.count(polls)
            try await pollNow()
            try await security.waitFor("SELECT (count(*) > \(polled))::int::int8 FROM mingus_inbox WHERE message_id LIKE 'schedule/security.poll/%'")
            #expect(try await security.count("SELECT count(*) FROM alerts WHERE dedup_key LIKE 'do:%'") == 1)
            // The CPU falls: the alert resolves, though the API first answers 429 twice (Retry-After: 1).
            try await standIn.control(["cpu": ["101": 12, "102": 20, "103": 30], "throttle": 2])
            try await pollNow()
            try await security.waitFor("SELECT count(*) FROM alerts WHERE dedup_key = 'do:cpu_high:101' AND status = 'resolved'")
            #expect(try await security.count("SELECT count(*) FROM alerts WHERE dedup_key LIKE 'do:%'") == 1)
            #expect(try await security.count("SELECT count(*) FROM do_rule_states") == 0)
            let status = try await security.request("GET", "/api/integrations/status")
            let polling = (status.body["items"] as? [[String: Any]])?.first { $0["component"] as? String == "digitalocean" }
            #expect(polling?["status"] as? String == "healthy", "\(status.raw)")
            #expect(try await standIn.violations() == [])
        }
        try await standIn.stop()
    }

    @Test("a token the DigitalOcean API refuses stops the security worker at start with exit 78, naming the variable")
    func rejectedToken() async throws {
        let standIn = try await DigitalOceanStandIn.start()
        defer { standIn.process.signal(SIGTERM) }
        let (name, url) = try await TestEnvironment.createDatabase()
        let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 1))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
        await database.shutdown()
        let worker = try WorkerProcess("mingus-security-worker", environment: [
            "MINGUS_DATABASE_URL": url, "MINGUS_METRICS_PORT": "0", "DIGITALOCEAN_TOKEN": "wrong", "MINGUS_DO_API_URL": standIn.base,
            "MINGUS_SCHEMAS_DIR": TestEnvironment.repositoryRoot.appendingPathComponent("Contracts/schemas").path,
        ])
        let code = try await worker.wait(timeout: .seconds(60))
        #expect(code == 78, "\(worker.output.suffix(2000))")
        #expect(worker.output.contains("DIGITALOCEAN_TOKEN"))
        try await TestEnvironment.dropDatabase(name)
        try await standIn.stop()
    }

    @Test("the status view reports a stopped worker as down")
    func statusOfAStoppedWorker() async throws {
        try await SecurityCluster.with { security in
            func item(_ component: String, _ name: String) async throws -> [String: Any]? {
                let status = try await security.request("GET", "/api/integrations/status")
                return (status.body["items"] as? [[String: Any]])?.first { $0["component"] as? String == component && $0["name"] as? String == name }
            }
            var last: [String: Any]?
            let up = try await eventually(timeout: .seconds(60)) {
                last = try await item("process", "security")
                return last?["status"] as? String == "healthy"
            }
            try #require(up, "\(String(describing: last))\n\(security.cluster.output)")
            #expect(try await item("process", "gateway")?["status"] as? String == "healthy")
            security.security.signal(SIGTERM)
            #expect(try await security.security.wait(timeout: .seconds(40)) == 0)
            last = try await item("process", "security")
            #expect(last?["status"] as? String == "down", "\(String(describing: last))")
            #expect((last?["details"] as? [String: Any])?["alive"] as? String == "0")
            let queue = try await item("queue", "mingus.security")
            #expect(queue?["status"] as? String == "down", "\(String(describing: queue))")
        }
    }
}
