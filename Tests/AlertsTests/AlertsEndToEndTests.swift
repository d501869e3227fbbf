import Foundation
import MingusSecurity
import MingusAlerts
import MingusCore
import MingusGateway
import MingusPostgres
import MingusRuntime
import Testing
import TestSupport

/// A gateway and one alerts worker on a database of their own, with a routing file.
struct AlertsCluster {
    let cluster: Cluster
    let worker: WorkerProcess
    let configFile: URL
    let key: String

    static func start(config: String, environment: [String: String]) async throws -> AlertsCluster {
        let configFile = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("alerting") + ".yaml")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        var environment = environment
        environment["MINGUS_ALERTING_CONFIG"] = configFile.path
        let cluster = try await Cluster.start(environment: environment)
        let worker = try cluster.startWorker("mingus-alerts-worker")
        let key = try await APIKeyStore(database: cluster.database).create(name: TestEnvironment.uniqueName("alerts"),
                                                                            roles: [.alertsWrite, .alertsRead]).key
        return AlertsCluster(cluster: cluster, worker: worker, configFile: configFile, key: key)
    }

    func post(_ alert: [String: Any]) async throws -> (status: Int, body: [String: Any]) {
        let answer = try await httpRequest(cluster.base + "/api/alerts", method: "POST",
                                           headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                                           body: try JSONSerialization.data(withJSONObject: alert))
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? ["raw": answer.body])
    }

    func get(_ path: String) async throws -> (status: Int, body: [String: Any]) {
        let answer = try await httpRequest(cluster.base + path, headers: ["Authorization": "Bearer \(key)"])
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? ["raw": answer.body])
    }

    /// Deliveries by channel and status, straight from the database.
    func deliveries() async throws -> [(channel: String, status: String, attempts: Int, kind: String, error: String?, target: String)] {
        try await cluster.database.query("""
            SELECT channel, status, attempts, kind, last_error, target FROM alert_deliveries ORDER BY created_at, channel
            """).map { row in
            (try row.decode(String.self, at: 0), try row.decode(String.self, at: 1), try row.decode(Int.self, at: 2),
             try row.decode(String.self, at: 3), try row.decode(String?.self, at: 4), try row.decode(String.self, at: 5))
        }
    }

    func stop() async throws {
        let codes = try await cluster.stop()
        #expect(codes.allSatisfy { $0 == 0 }, "exit codes \(codes)\n\(cluster.output)")
    }
}

@Suite("Alerts end to end: nine channels against their contracts, routing, grouping, faults", .serialized)
struct AlertsEndToEndTests {
    static func config(receivers: String, route: String = "group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h",
                       extra: String = "") -> String {
        """
        route:
          receiver: everyone
          \(route)
        receivers:
        \(receivers)
        \(extra)
        """
    }

    @Test("an alert reaches all nine channels as each provider documents it; resolving it resolves PagerDuty and closes Opsgenie")
    func allChannels() async throws {
        let sinks = try await ProviderSinks()
        let receivers = "  - name: everyone\n" + sinks.allTargets()
        let alerts = try await AlertsCluster.start(config: Self.config(receivers: receivers), environment: sinks.workerEnvironment)
        do {
            let posted = try await alerts.post([
                "severity": "critical", "title": "Ledger database down", "description": "primary not answering",
                "labels": ["service": "ledger", "region": "eu"], "source": "monitor", "dedup_key": "ledger-db-down",
            ])
            #expect(posted.status == 202, "\(posted.body)")
            let id = try #require(posted.body["id"] as? String)
            let delivered = try await eventually(timeout: .seconds(60)) {
                try await alerts.deliveries().filter { $0.status == "delivered" }.count == 9
            }
            let afterTrigger = try await alerts.deliveries()
            #expect(delivered, "\(afterTrigger)")
            #expect(try await sinks.violations() == [])
            for provider in ["twilio", "slack", "discord", "teams", "webhook", "pagerduty", "opsgenie", "telegram"] {
                #expect(try await sinks.requests(provider).count == 1, "\(provider)")
            }
            let mail = try #require(sinks.mails.first, "\(sinks.smtp.output)")
            #expect(mail["tls"] as? Bool == true)
            #expect(mail["auth_user"] as? String == "alerts@mingus.test")
            #expect((mail["violations"] as? [String]) == [])
            #expect((mail["subject"] as? String)?.contains("Ledger database down") == true)

            let history = try await alerts.get("/api/alerts/\(id)")
            #expect(history.status == 200, "\(history.body) \(alerts.cluster.gateway.output.suffix(1500))")
            let deliveries = try #require(history.body["deliveries"] as? [[String: Any]])
            #expect(Set(deliveries.compactMap { $0["channel"] as? String }) ==
                    ["email", "sms", "slack", "discord", "teams", "webhook", "pagerduty", "opsgenie", "telegram"])
            for delivery in deliveries {
                #expect(delivery["status"] as? String == "delivered")
                #expect(delivery["attempts"] as? Int == 1)
                #expect(delivery["latency_ms"] is Double)
            }
            // A delivery is finished when the provider has answered, not when its job began.
            for provider in ["slack", "pagerduty", "telegram"] {
                let received = try #require(try await sinks.requests(provider).first?["time"] as? Double)
                let finished = try #require(try await alerts.cluster.database.query("""
                    SELECT extract(epoch FROM finished_at)::double precision FROM alert_deliveries
                    WHERE channel = \(provider) AND kind = 'firing'
                    """).first?.decode(Double.self, at: 0))
                #expect(finished >= received - 0.001, "\(provider): finished \(finished), provider received \(received)")
            }
            // The webhook names the alert by the id the API gave.
            let webhookBody = try #require(try await sinks.requests("webhook").first?["body"] as? [String: Any])
            let webhookAlerts = ((webhookBody["data"] as? [String: Any])?["alerts"] as? [[String: Any]]) ?? []
            #expect(webhookAlerts.compactMap { $0["id"] as? String } == [id], "\(webhookBody)")
            let providerIDs = Dictionary(uniqueKeysWithValues: deliveries.map { ($0["channel"] as! String, $0["provider_id"]) })
            #expect((providerIDs["sms"] as? String)?.hasPrefix("SM") == true)
            #expect((providerIDs["pagerduty"] as? String)?.hasPrefix("mingus-") == true)
            #expect(providerIDs["opsgenie"] is String)
            #expect(providerIDs["telegram"] is String)
            #expect(providerIDs["discord"] is String)

            let resolved = try await alerts.post([
                "status": "resolved", "severity": "critical", "title": "Ledger database down", "source": "monitor",
                "dedup_key": "ledger-db-down",
            ])
            #expect(resolved.status == 202)
            let resolvedEverywhere = try await eventually(timeout: .seconds(60)) {
                try await alerts.deliveries().filter { $0.kind == "resolved" && $0.status == "delivered" }.count == 9
            }
            let afterResolve = try await alerts.deliveries()
            #expect(resolvedEverywhere, "\(afterResolve)")
            let pagerduty = try await sinks.requests("pagerduty").compactMap { $0["body"] as? [String: Any] }
            #expect(pagerduty.map { $0["event_action"] as? String } == ["trigger", "resolve"])
            #expect(pagerduty.map { $0["dedup_key"] as? String }.allSatisfy { $0 == pagerduty.first?["dedup_key"] as? String })
            let opsgenie = try #require(try await sinks.state()["opsgenie"] as? [String: Any])
            let aliases = try #require(opsgenie["alerts"] as? [String: [String: Any]])
            #expect(aliases.count == 1)
            #expect(aliases.values.first?["status"] as? String == "closed")
            #expect(try await sinks.violations() == [])
            let alert = try await alerts.get("/api/alerts/\(id)")
            #expect(alert.body["status"] as? String == "resolved")
        } catch {
            Issue.record("\(error)\n\(alerts.worker.output.suffix(3000))")
        }
        try await alerts.stop()
        try await sinks.stop()
    }

    @Test("429 waits for the provider's retry signal, 5xx is retried, a permanent 4xx fails at once and goes to the fallback receiver")
    func throttlingRetriesAndFallback() async throws {
        let sinks = try await ProviderSinks()
        try await sinks.control("slack", ["fail": [["status": 429, "retry_after": 2]]])
        try await sinks.control("discord", ["fail": [["status": 503]]])
        try await sinks.control("telegram", ["fail": [["status": 400, "message": "Bad Request: chat not found"]]])
        let receivers = """
              - name: everyone
                fallback: backup
                slack_configs: [{api_url_env: ALERT_SLACK_URL}]
                discord_configs: [{webhook_url_env: ALERT_DISCORD_URL}]
                telegram_configs: [{api_url: \(sinks.contractsBase), bot_token_env: ALERT_TELEGRAM_TOKEN, chat_id: "42"}]
              - name: backup
                webhook_configs: [{url: \(sinks.contractsBase)/hooks/mingus, secret_env: ALERT_WEBHOOK_SECRET}]
            """
        let alerts = try await AlertsCluster.start(config: Self.config(receivers: receivers), environment: sinks.workerEnvironment)
        do {
            let posted = try await alerts.post(["severity": "high", "title": "Payments slow", "source": "monitor"])
            #expect(posted.status == 202)
            let settled = try await eventually(timeout: .seconds(60)) {
                let all = try await alerts.deliveries()
                return all.count == 4 && all.allSatisfy { $0.status != "pending" }
            }
            let all = try await alerts.deliveries()
            #expect(settled, "\(all)\n\(alerts.worker.output.suffix(3000))")
            let byChannel = Dictionary(grouping: all, by: \.channel)
            #expect(byChannel["slack"]?.first?.status == "delivered")
            #expect(byChannel["slack"]?.first?.attempts == 2)
            #expect(byChannel["discord"]?.first?.status == "delivered")
            #expect(byChannel["discord"]?.first?.attempts == 2)
            #expect(byChannel["telegram"]?.first?.status == "failed")
            #expect(byChannel["telegram"]?.first?.attempts == 1)
            #expect(byChannel["telegram"]?.first?.error?.contains("chat not found") == true)
            #expect(byChannel["webhook"]?.first?.status == "delivered")
            #expect(byChannel["webhook"]?.first?.target == "backup/webhook/0")
            // The worker read Slack's Retry-After of 2 s and paused the target for it (how the
            // pause spaces requests is the rate limiter's own test).
            #expect(try await sinks.requests("slack").count == 2)
            let slowDowns = alerts.worker.logLines("provider asked to slow down")
            #expect(slowDowns.map { $0["mingus.retry_after"] as? String } == ["2s"], "\(slowDowns)")
            #expect((slowDowns.first?["mingus.alert.target"] as? String)?.contains("slack") == true, "\(slowDowns)")
            let attempts = try await alerts.cluster.database.query("""
                SELECT d.channel, a.attempt, a.outcome, a.http_status FROM alert_delivery_attempts a
                JOIN alert_deliveries d ON d.id = a.delivery_id ORDER BY d.channel, a.attempt
                """).map { "\(try $0.decode(String.self, at: 0)) \(try $0.decode(Int.self, at: 1)) \(try $0.decode(String.self, at: 2)) \(try $0.decode(Int?.self, at: 3).map(String.init) ?? "-")" }
            #expect(attempts == ["discord 1 retryable 503", "discord 2 delivered -", "slack 1 throttled 429", "slack 2 delivered -",
                                 "telegram 1 permanent 400", "webhook 1 delivered -"])
            #expect(try await sinks.violations() == [])

            // Once the chat exists, replaying the dead-lettered delivery sends it.
            let telegram = try #require(try await alerts.cluster.database.query(
                "SELECT id FROM alert_deliveries WHERE channel = 'telegram'").first?.decode(UUID.self, at: 0))
            let replay = try WorkerProcess("mingusctl", arguments: ["dlq", "replay", "alerts", "--id", "deliver/\(telegram.uuidString.lowercased())"],
                                           environment: alerts.cluster.environment)
            #expect(try await replay.wait(timeout: .seconds(30)) == 0, "\(replay.output)")
            let replayed = try await eventually(timeout: .seconds(30)) {
                try await alerts.deliveries().first { $0.channel == "telegram" }?.status == "delivered"
            }
            #expect(replayed, "\(replay.output)")
            #expect(try await alerts.deliveries().first { $0.channel == "telegram" }?.attempts == 2)
        } catch {
            Issue.record("\(error)\n\(alerts.worker.output.suffix(3000))")
        }
        try await alerts.stop()
        try await sinks.stop()
    }

    @Test("alerts of one group go out together after group_wait; a repeat is deduplicated; silences and inhibition mute; repeat_interval re-notifies")
    func groupingDedupSilencesInhibition() async throws {
        let sinks = try await ProviderSinks()
        let receivers = """
              - name: everyone
                webhook_configs: [{url: \(sinks.contractsBase)/hooks/mingus, secret_env: ALERT_WEBHOOK_SECRET}]
            """
        let config = Self.config(
            receivers: receivers, route: "group_by: [service]\n  group_wait: 2s\n  group_interval: 1s\n  repeat_interval: 3s",
            extra: """
            inhibit_rules:
              - source_matchers: ['severity="critical"']
                target_matchers: ['severity=~"high|medium|low|info"']
                equal: [service]
            """)
        let alerts = try await AlertsCluster.start(config: config, environment: sinks.workerEnvironment)
        do {
            for title in ["Disk full", "Replica lag", "Slow queries"] {
                #expect(try await alerts.post(["severity": "medium", "title": title, "source": "db-monitor",
                                               "labels": ["service": "db"]]).status == 202)
            }
            let repeated = try await alerts.post(["severity": "medium", "title": "Disk full", "source": "db-monitor", "labels": ["service": "db"]])
            #expect(repeated.status == 202)
            // Silenced: the cache service.
            let silence = try await httpRequest(alerts.cluster.base + "/api/alerts/silences", method: "POST",
                                                headers: ["Authorization": "Bearer \(alerts.key)", "Content-Type": "application/json"],
                                                body: try JSONSerialization.data(withJSONObject: [
                                                    "matchers": ["service=\"cache\""], "ends_at": "2099-01-01T00:00:00.500Z", "comment": "maintenance"]))
            #expect(silence.status == 201, "\(silence.body)")
            #expect(try await alerts.post(["severity": "high", "title": "Cache evictions", "source": "m", "labels": ["service": "cache"]]).status == 202)
            // Inhibited: a high alert of the api while a critical one fires (recorded as firing first).
            #expect(try await alerts.post(["severity": "critical", "title": "API down", "source": "m", "labels": ["service": "api"]]).status == 202)
            let inhibitorFiring = try await eventually {
                try await alerts.cluster.database.query(
                    "SELECT count(*) FROM alerts WHERE title = 'API down' AND status = 'firing'")[0].decode(Int.self, at: 0) == 1
            }
            #expect(inhibitorFiring, "\(alerts.worker.output.suffix(2000))")
            #expect(try await alerts.post(["severity": "high", "title": "API errors", "source": "m", "labels": ["service": "api"]]).status == 202)

            // Every alert received (six, one of them twice) and both groups notified.
            func titles(_ requests: [[String: Any]]) -> [[String]] {
                requests.map { request in
                    let alerts = ((request["body"] as? [String: Any])?["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
                    return alerts.compactMap { $0["title"] as? String }.sorted()
                }
            }
            var firstRound: [[String]] = []
            let grouped = try await eventually(timeout: .seconds(30)) {
                let received = try await alerts.cluster.database.query("SELECT count(*), sum(received_count) FROM alerts")[0]
                guard try received.decode(Int.self, at: 0) == 6, try received.decode(Int.self, at: 1) == 7 else { return false }
                firstRound = titles(try await sinks.requests("webhook"))
                return firstRound.contains(["Disk full", "Replica lag", "Slow queries"]) && firstRound.contains(["API down"])
            }
            #expect(grouped, "\(firstRound)\n\(alerts.worker.output.suffix(2000))")
            #expect(!firstRound.flatMap { $0 }.contains("Cache evictions"))
            #expect(!firstRound.flatMap { $0 }.contains("API errors"))
            let counts = try await alerts.cluster.database.query("""
                SELECT title, received_count, suppressed_by FROM alerts ORDER BY title
                """).map { (try $0.decode(String.self, at: 0), try $0.decode(Int.self, at: 1), try $0.decode(String?.self, at: 2)) }
            #expect(counts.first { $0.0 == "Disk full" }?.1 == 2)
            #expect(counts.first { $0.0 == "Cache evictions" }?.2?.hasPrefix("silence:") == true)
            #expect(counts.first { $0.0 == "API errors" }?.2 == "inhibited")
            #expect(counts.count == 6)
            // repeat_interval: the db group, unchanged and still firing, is notified again.
            let repeatedNotice = try await eventually(timeout: .seconds(20)) {
                try await sinks.requests("webhook").filter { request in
                    let alerts = ((request["body"] as? [String: Any])?["data"] as? [String: Any])?["alerts"] as? [[String: Any]]
                    return alerts?.count == 3
                }.count >= 2
            }
            #expect(repeatedNotice)
            #expect(try await sinks.violations() == [])
        } catch {
            Issue.record("\(error)\n\(alerts.worker.output.suffix(3000))")
        }
        try await alerts.stop()
        try await sinks.stop()
    }

    @Test("a channel that hangs for 30 s does not delay the other eight")
    func hangingChannel() async throws {
        let sinks = try await ProviderSinks()
        try await sinks.control("teams", ["delay": 30])
        let receivers = "  - name: everyone\n" + sinks.allTargets(timeout: "40s")
        let alerts = try await AlertsCluster.start(config: Self.config(receivers: receivers), environment: sinks.workerEnvironment)
        do {
            #expect(try await alerts.post(["severity": "critical", "title": "Everything is on fire", "source": "monitor"]).status == 202)
            let others = try await eventually(timeout: .seconds(25)) {
                guard try await alerts.deliveries().filter({ $0.status == "delivered" }).count == 8 else { return false }
                return try await sinks.requests("teams").count == 1
            }
            let all = try await alerts.deliveries()
            #expect(others, "\(all)")
            #expect(all.first { $0.channel == "teams" }?.status == "pending")
            #expect(try await sinks.requests("teams").count == 1)
        } catch {
            Issue.record("\(error)\n\(alerts.worker.output.suffix(3000))")
        }
        try await sinks.control("teams", ["delay": 0])
        try await alerts.stop()
        try await sinks.stop()
    }

    @Test("bad alerts are refused naming the field: unknown severity, missing title, 1 MB description, reserved label")
    func badAlerts() async throws {
        let sinks = try await ProviderSinks()
        let receivers = "  - name: everyone\n    webhook_configs: [{url: \(sinks.contractsBase)/hooks/mingus, secret_env: ALERT_WEBHOOK_SECRET}]"
        let alerts = try await AlertsCluster.start(config: Self.config(receivers: receivers), environment: sinks.workerEnvironment)
        func error(_ body: [String: Any]) -> [String: Any] { body["error"] as? [String: Any] ?? [:] }
        let severity = try await alerts.post(["severity": "apocalyptic", "title": "x", "source": "m"])
        #expect(severity.status == 422)
        #expect(error(severity.body)["field"] as? String == "severity")
        let title = try await alerts.post(["severity": "low", "source": "m"])
        #expect(title.status == 400)
        #expect(error(title.body)["field"] as? String == "title")
        let huge = try await alerts.post(["severity": "low", "title": "x", "description": String(repeating: "a", count: 1_000_000)])
        #expect(huge.status == 413)
        #expect(error(huge.body)["code"] as? String == "payload_too_large")
        let long = try await alerts.post(["severity": "low", "title": "x", "description": String(repeating: "a", count: 20_000)])
        #expect(long.status == 422)
        #expect(error(long.body)["field"] as? String == "description")
        let reserved = try await alerts.post(["severity": "low", "title": "x", "labels": ["severity": "critical"]])
        #expect(reserved.status == 422)
        #expect(error(reserved.body)["field"] as? String == "labels.severity")
        let wrongType = try await alerts.post(["severity": "low", "title": "x", "labels": ["n": 1]])
        #expect(wrongType.status == 400)
        #expect(try await alerts.deliveries().isEmpty)
        try await alerts.stop()
        try await sinks.stop()
    }

    @Test("an invalid routing file stops the worker at start with its line; SIGHUP reloads, keeping the old file when the new one is bad")
    func configurationReload() async throws {
        let sinks = try await ProviderSinks()
        let good = Self.config(receivers: "  - name: everyone\n    webhook_configs: [{url: \(sinks.contractsBase)/hooks/mingus, secret_env: ALERT_WEBHOOK_SECRET}]")
        let bad = good.replacingOccurrences(of: "secret_env", with: "secret")
        let line = bad.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("secret:") }! + 1
        let broken = try await AlertsCluster.start(config: bad, environment: sinks.workerEnvironment)
        let code = try await broken.worker.wait(timeout: .seconds(30))
        #expect(code == MingusProcess.configurationExitStatus)
        #expect(broken.worker.output.contains("\(broken.configFile.path):\(line): receivers[0].webhook_configs[0].secret: secrets are not read from this file"),
                "\(broken.worker.output)")
        try await broken.cluster.stop()

        let alerts = try await AlertsCluster.start(config: good, environment: sinks.workerEnvironment)
        do {
            #expect(try await eventually { alerts.worker.output.contains("consuming") })
            try bad.write(to: alerts.configFile, atomically: true, encoding: .utf8)
            alerts.worker.signal(SIGHUP)
            #expect(try await eventually { alerts.worker.output.contains("reload failed; keeping the previous one") })
            #expect(alerts.worker.output.contains(":\(line): receivers[0].webhook_configs[0].secret"))
            #expect(try await alerts.post(["severity": "low", "title": "Still routed", "source": "m"]).status == 202)
            #expect(try await eventually { try await alerts.deliveries().contains { $0.status == "delivered" } })
            try good.write(to: alerts.configFile, atomically: true, encoding: .utf8)
            alerts.worker.signal(SIGHUP)
            #expect(try await eventually { alerts.worker.output.contains("alerting configuration reloaded") })
        } catch {
            Issue.record("\(error)\n\(alerts.worker.output.suffix(3000))")
        }
        try await alerts.stop()
        try await sinks.stop()
    }
}
