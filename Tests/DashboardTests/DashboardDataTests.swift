import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MingusDashboard
import MingusHTTP
import MingusPayments
import MingusPostgres
import MingusSecurity
import MingusSecurityMonitoring
import NIOCore
import TestSupport
import Testing

/// Payments, breaches, alerts and audit events the data tests insert, and what the endpoints must say of them.
private func insertFixtures(_ harness: DashboardHarness, now: Date) async throws {
    let db = harness.database
    // Written as the gateway and the worker write them: pending rows, then decisions (the trigger
    // counts a decision once, whichever statement makes it).
    let hourAgo = now.addingTimeInterval(-3600)
    var pending: [(UUID, Date, String, Int64)] = []
    for n in 0..<8 { pending.append((UUID(), hourAgo.addingTimeInterval(Double(n)), n < 6 ? "USD" : "EUR", Int64(1000 + n))) }
    for (id, at, currency, amount) in pending {
        try await db.execute("""
            INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, created_at, updated_at)
            VALUES (\(id), 'm-1', 'pending', \(amount), \(currency), 'apikey:test', \(at), \(at))
            """)
    }
    let ids = pending.map(\.0)
    // 5 authorized after 120 ms, 2 declined after 40 ms, 1 failed after 3 s; one left pending below.
    try await db.execute("""
        UPDATE payment_data SET status = 'authorized', authorization_code = 'A1', updated_at = created_at + interval '120 milliseconds'
        WHERE transaction_id = ANY(\(Array(ids[0..<5]))::uuid[])
        """)
    try await db.execute("""
        UPDATE payment_data SET status = 'declined', decline_code = '05', updated_at = created_at + interval '40 milliseconds'
        WHERE transaction_id = ANY(\(Array(ids[5..<7]))::uuid[])
        """)
    // A decided payment first written decided (the worker before the gateway's pending row), 3 s.
    try await db.execute("""
        INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, created_at, updated_at)
        VALUES (\(UUID()), 'm-1', 'failed', 500, 'EUR', 'apikey:test', \(hourAgo), \(hourAgo.addingTimeInterval(3)))
        """)
    // An update that changes nothing about the decision is not counted again.
    try await db.execute("UPDATE payment_data SET metadata = '{\"x\": \"1\"}' WHERE status <> 'pending'")
    // Two days old: outside a 24-hour window.
    let old = now.addingTimeInterval(-48 * 3600)
    try await db.execute("""
        INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, created_at, updated_at)
        VALUES (\(UUID()), 'm-1', 'authorized', 999, 'USD', 'apikey:test', \(old), \(old))
        """)

    // Breaches: two open (high, critical), one closed; obligations overdue, due soon, later, met.
    let open1 = UUID(), open2 = UUID(), closed = UUID()
    for (id, severity, status) in [(open1, "high", "investigating"), (open2, "critical", "detected"), (closed, "low", "closed")] {
        try await db.execute("""
            INSERT INTO breaches (id, title, severity, status, discovered_at, aware_at, data_categories, data_encrypted, records_affected,
                                  persons_affected, jurisdictions, entity_roles, reported_by, reported_at)
            VALUES (\(id), \("Breach " + severity), \(severity), \(status), \(now), \(now), ARRAY['email'], false, 10, 10, ARRAY['US-CA'],
                    ARRAY['controller'], 'apikey:test', \(now))
            """)
    }
    let obligations: [(UUID, String, Date, String)] = [
        (open1, "gdpr-authority", now.addingTimeInterval(-3600), "open"),
        (open1, "us-ca-individuals", now.addingTimeInterval(5 * 3600), "open"),
        (open2, "pci-brands", now.addingTimeInterval(10 * 24 * 3600), "open"),
        (open2, "gdpr-individuals", now.addingTimeInterval(-7200), "met"),
    ]
    for (breach, regime, deadline, status) in obligations {
        try await db.execute("""
            INSERT INTO breach_obligations (id, breach_id, regime, regime_name, notify, rules_version, reason, clock, deadline, period, status)
            VALUES (\(UUID()), \(breach), \(regime), \("Regime " + regime), 'authority', 'v1', 'test', 'aware', \(deadline), '72h', \(status))
            """)
    }

    // Alerts: two firing (critical, medium), one resolved.
    for (severity, status, title) in [("critical", "firing", "Disk full"), ("medium", "firing", "Slow queue"), ("high", "resolved", "Old news")] {
        try await db.execute("""
            INSERT INTO alerts (id, fingerprint, status, severity, title, labels, source, starts_at, last_received_at)
            VALUES (\(UUID()), \(title), \(status), \(severity), \(title), '{}', 'test', \(now), \(now))
            """)
    }

    // The audit trail: a change, and a read that the activity list leaves out.
    try await db.withConnection { connection in
        try await AuditTrail.append(AuditEvent(actor: "operator:ana@host", action: "apikey.create", resource: "apikeys/abc", outcome: .success),
                                    component: "mingusctl", on: connection)
        try await AuditTrail.append(AuditEvent(actor: "apikey:reader", action: "http.get", resource: "/api/x", outcome: .success),
                                    component: "gateway", on: connection)
    }
}

private func json(_ response: TestResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
}

@Suite("Dashboard data")
struct DashboardDataTests {
    @Test("the four endpoints give the numbers of the rows inserted; bad parameters are 400 naming them")
    func endpoints() async throws {
        try await DashboardHarness.with { harness in
            let now = harness.clock.now
            try await insertFixtures(harness, now: now)
            let key = try await APIKeyStore(database: harness.database).create(name: "dash", roles: [Role("compliance:read")]).key
            let auth: HTTPFields = [.authorization: "Bearer \(key)"]
            try await harness.application().test(.live) { client async throws in
                let payments = try json(try await client.get("/api/financial/dashboard/payment-processing", headers: auth))
                #expect(payments["window_hours"] as? Int == 24)
                #expect(payments["decided"] as? Int == 8)
                #expect(payments["authorized"] as? Int == 5)
                #expect(payments["declined"] as? Int == 2)
                #expect(payments["failed"] as? Int == 1)
                #expect(payments["pending"] as? Int == 1)
                #expect(payments["authorization_rate"] as? Double == 5.0 / 8.0)
                #expect(payments["decline_rate"] as? Double == 2.0 / 8.0)
                let volumes = try #require(payments["volumes"] as? [[String: Any]])
                #expect(volumes.map { $0["currency"] as? String } == ["EUR", "USD"])
                #expect(volumes[1]["authorized_amount"] as? Int == 1000 + 1001 + 1002 + 1003 + 1004)
                #expect(volumes[1]["payments"] as? Int == 6)
                #expect(volumes[0]["total_amount"] as? Int == 1006 + 500)
                let latency = try #require(payments["latency_ms"] as? [String: Any])
                #expect(latency["p50"] as? Int == 250, "five of eight took 120 ms: the 100-250 ms bucket")
                #expect(latency["p95"] as? Int == 5000, "the slowest took 3 s: the 2.5-5 s bucket")
                #expect(latency["max"] as? Int == 3000)
                let mean: Double = (5 * 120 + 2 * 40 + 3000) / 8
                #expect(latency["mean"] as? Double == mean)
                let hourly = try #require(payments["hourly"] as? [[String: Any]])
                #expect(hourly.count == 24)
                #expect(hourly.compactMap { $0["authorized"] as? Int }.reduce(0, +) == 5)
                let week = try json(try await client.get("/api/financial/dashboard/payment-processing?hours=72", headers: auth))
                #expect(week["authorized"] as? Int == 6)
                for bad in ["0", "721", "x"] {
                    let refused = try await client.get("/api/financial/dashboard/payment-processing?hours=\(bad)", headers: auth)
                    #expect(refused.status == .badRequest)
                    let error = try #require(try json(refused)["error"] as? [String: Any])
                    #expect(error["field"] as? String == "hours")
                }

                let breaches = try json(try await client.get("/api/financial/dashboard/data-breaches", headers: auth))
                #expect(breaches["open_breaches"] as? Int == 2)
                #expect(breaches["open_obligations"] as? Int == 3)
                #expect(breaches["overdue"] as? Int == 1)
                #expect(breaches["due_soon"] as? Int == 1)
                let severities = try #require(breaches["by_severity"] as? [[String: Any]])
                #expect(severities.map { $0["severity"] as? String } == ["critical", "high", "medium", "low"])
                #expect(severities.map { $0["open"] as? Int } == [1, 1, 0, 0])
                let deadlines = try #require(breaches["deadlines"] as? [[String: Any]])
                #expect(deadlines.map { $0["regime"] as? String } == ["gdpr-authority", "us-ca-individuals", "pci-brands"])
                #expect(deadlines.map { $0["overdue"] as? Bool } == [true, false, false])

                let alerts = try json(try await client.get("/api/financial/dashboard/alerts", headers: auth))
                #expect(alerts["firing"] as? Int == 2)
                let bySeverity = try #require(alerts["by_severity"] as? [[String: Any]])
                #expect(bySeverity.map { $0["firing"] as? Int } == [1, 0, 1, 0, 0])
                #expect((alerts["latest"] as? [[String: Any]])?.compactMap { $0["title"] as? String }.sorted() == ["Disk full", "Slow queue"])

                // The overview repeats each panel's headline; with no check run, the score is not assessed.
                let overview = try json(try await client.get("/api/financial/dashboard/overview", headers: auth))
                let headline = try #require(overview["payments"] as? [String: Any])
                #expect(headline["decided"] as? Int == 8)
                #expect(headline["pending"] as? Int == 1)
                #expect(headline["authorization_rate"] as? Double == 5.0 / 8.0)
                let open = try #require(overview["breaches"] as? [String: Any])
                #expect(open["open"] as? Int == 2)
                #expect(open["obligations_overdue"] as? Int == 1)
                #expect(open["obligations_due_soon"] as? Int == 1)
                #expect(overview["alerts_firing"] as? Int == 2)
                let score = try #require(overview["score"] as? [String: Any])
                #expect(score["score"] is NSNull, "no evidence yet: no score")
                #expect((score["not_assessed_parts"] as? [String])?.count == 4)
                let pci = try #require(overview["pci"] as? [String: Any])
                #expect(pci["non_compliant"] as? Int == 0)
                #expect(pci["compliant"] as? Int == 0)
                #expect((pci["not_assessed"] as? Int ?? 0) > 0)

                let activity = try json(try await client.get("/api/financial/dashboard/recent-activities?limit=5", headers: auth))
                let entries = try #require(activity["activities"] as? [[String: Any]])
                #expect(entries.contains { $0["action"] as? String == "apikey.create" && $0["actor"] as? String == "operator:ana@host" })
                #expect(!entries.contains { $0["action"] as? String == "http.get" })
                #expect(try await client.get("/api/financial/dashboard/recent-activities?limit=0", headers: auth).status == .badRequest)
            }
        }
    }

    @Test("headless Chromium loads the signed-in page without console errors, shows the API's figures, and leaves a screenshot")
    func browser() async throws {
        try await DashboardHarness.with { harness in
            try await insertFixtures(harness, now: harness.clock.now)
            try await insertProcesses(harness)
            let account = try await harness.createUser(roles: [Role("compliance:read"), Role("security:read")])
            let key = try await APIKeyStore(database: harness.database).create(name: "dash", roles: [Role("compliance:read")]).key
            try await harness.application().test(.live) { client async throws in
                let port = try #require(client.port)
                let token = try #require(sessionToken(try await client.signIn(account.username, account.password, harness.code(account))))
                let payments = try json(try await client.get("/api/financial/dashboard/payment-processing", headers: [.authorization: "Bearer \(key)"]))
                let breaches = try json(try await client.get("/api/financial/dashboard/data-breaches", headers: [.authorization: "Bearer \(key)"]))

                let artifacts = TestEnvironment.repositoryRoot.appendingPathComponent(".build/test-artifacts/dashboard")
                let screenshot = artifacts.appendingPathComponent("dashboard.png")
                try? FileManager.default.removeItem(at: screenshot)
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["python3", TestEnvironment.repositoryRoot.appendingPathComponent("Deploy/local/browser_check.py").path,
                                     "http://127.0.0.1:\(port)/dashboard/", "--cookie", "\(DashboardRoutes.cookieName)=\(token)",
                                     "--screenshot", screenshot.path]
                // Output to files and the exit awaited through the termination handler: nothing here
                // blocks a thread of the cooperative pool, which serves the page Chromium asks for.
                let outputFile = artifacts.appendingPathComponent("browser-check.json")
                let errorFile = artifacts.appendingPathComponent("browser-check.stderr")
                try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
                FileManager.default.createFile(atPath: outputFile.path, contents: nil)
                FileManager.default.createFile(atPath: errorFile.path, contents: nil)
                process.standardOutput = try FileHandle(forWritingTo: outputFile)
                process.standardError = try FileHandle(forWritingTo: errorFile)
                let status: Int32 = try await withCheckedThrowingContinuation { continuation in
                    process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                    do { try process.run() } catch { continuation.resume(throwing: error) }
                }
                let out = try Data(contentsOf: outputFile)
                let err = try Data(contentsOf: errorFile)
                #expect(status == 0, "\(String(decoding: err, as: UTF8.self))")
                let result = try #require(try JSONSerialization.jsonObject(with: out) as? [String: Any], "\(String(decoding: err, as: UTF8.self))")
                #expect(result["path"] as? String == "/dashboard/", "the session cookie signed the browser in")
                #expect((result["errors"] as? [String]) == [], "console errors: \(result["errors"] ?? "")")
                let text = try #require(result["text"] as? String)
                #expect(text.contains(account.username))
                #expect(text.contains("Payments, last 24 hours") && text.contains("Open alerts") && text.contains("Recent activity"))
                #expect(text.contains("Compliance score") && text.contains("PCI DSS v4.0 requirements") && text.contains("not assessed"))
                let decided = try #require(payments["decided"] as? Int)
                let rate = try #require(payments["authorization_rate"] as? Double)
                #expect(text.contains("\(decided)\ndecided") || text.contains("\(decided) decided"), "\(text.prefix(800))")
                #expect(text.contains(String(format: "%.1f %%", rate * 100)))
                #expect(text.contains("Regime gdpr-authority"))
                #expect(text.contains("Integrations status") && text.contains("no instance alive"), "\(text.suffix(1500))")
                #expect(breaches["overdue"] as? Int == 1)
                #expect(FileManager.default.fileExists(atPath: screenshot.path))
            }
        }
    }
}

/// Heartbeats of three process kinds: `gateway` alive and ready, `reports` alive but not ready,
/// `billing` last seen a minute ago.
private func insertProcesses(_ harness: DashboardHarness) async throws {
    try await harness.database.execute("""
        INSERT INTO mingus_processes (instance, kind, host, pid, started_at, last_seen_at, ready, stopped_at) VALUES
            ('gateway-1', 'gateway', 'h', 1, now() - interval '1 hour', now(), true, NULL),
            ('reports-1', 'reports', 'h', 2, now() - interval '1 hour', now(), false, NULL),
            ('billing-1', 'billing', 'h', 3, now() - interval '1 hour', now() - interval '1 minute', true, NULL)
        """)
}

@Suite("Dashboard status panel")
struct DashboardStatusPanelTests {
    @Test("the status panel shows each part healthy, degraded or down and why, worst first, only to users with security:read")
    func statusPanel() async throws {
        try await DashboardHarness.with { harness in
            try await insertProcesses(harness)
            // The panel's data is the status view's.
            let report = try await DashboardData.integrationsStatus(DashboardInput(database: harness.database, now: harness.clock.now))
            func item(_ component: String, _ name: String) -> IntegrationsStatus.Item? {
                report.items.first { $0.component == component && $0.name == name }
            }
            #expect(item("process", "gateway")?.status == "healthy")
            #expect(item("process", "reports")?.status == "degraded")
            #expect(item("process", "reports")?.reasons == ["1 of 1 instances not ready"])
            #expect(item("process", "billing")?.status == "down")
            #expect(item("process", "billing")?.reasons.first?.hasPrefix("no instance alive") == true)
            #expect(item("audit", "checkpoint")?.reasons == ["no audit checkpoint yet"])
            #expect(report.status == "down")

            let security = try await harness.createUser(roles: [Role("compliance:read"), Role("security:read")])
            let compliance = try await harness.createUser()
            try await harness.application().test(.live) { client async throws in
                let token = try #require(sessionToken(try await client.signIn(security.username, security.password, harness.code(security))))
                let page = try await client.get("/dashboard/", cookie: token)
                #expect(page.status == .ok)
                let html = String(buffer: page.body)
                let panel = try #require(html.range(of: #"id="panel-status""#).map { String(html[$0.lowerBound...]) })
                let section = panel.components(separatedBy: "</section>")[0]
                #expect(section.contains(#"<span class="figure health-down" id="status-overall">down</span>"#), "\(section)")
                #expect(section.contains(#"<span class="figure" id="status-down">"#))
                #expect(section.contains("no instance alive"))
                #expect(section.contains("1 of 1 instances not ready"))
                #expect(section.contains("no audit checkpoint yet"))
                // Worst first: the down process comes before the degraded one, which comes before the healthy gateway.
                let down = try #require(section.range(of: "process billing")), degraded = try #require(section.range(of: "process reports"))
                let healthy = try #require(section.range(of: "process gateway"))
                #expect(down.lowerBound < degraded.lowerBound && degraded.lowerBound < healthy.lowerBound)
                #expect(section.contains(#"<td class="health-healthy">healthy</td>"#))

                let other = try #require(sessionToken(try await client.signIn(compliance.username, compliance.password, harness.code(compliance))))
                let plain = String(buffer: try await client.get("/dashboard/", cookie: other).body)
                #expect(plain.contains(#"id="panel-alerts""#))
                #expect(!plain.contains(#"id="panel-status""#), "compliance:read alone does not see the status panel")
            }
        }
    }
}

@Suite("Payment rollups")
struct PaymentRollupTests {
    @Test("the worker's upsert (a pending row decided, a new row decided) counts each decision once, and a redelivery adds nothing")
    func upsertCountsOnce() async throws {
        try await DashboardHarness.with { harness in
            let db = harness.database
            let pending = UUID(), fresh = UUID()
            let at = Date().addingTimeInterval(-2)
            try await db.execute("""
                INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, created_at)
                VALUES (\(pending), 'm', 'pending', 100, 'USD', 'x', \(at))
                """)
            for _ in 0..<2 {
                // The shape of PaymentStore.recordDecisions: insert, or decide a pending row.
                try await db.execute("""
                    INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, created_at)
                    SELECT * FROM unnest(\([pending, fresh])::uuid[], ARRAY['m', 'm'], ARRAY['authorized', 'declined'],
                                         ARRAY[100, 200]::bigint[], ARRAY['USD', 'USD'], ARRAY['x', 'x'], \([at, at])::timestamptz[])
                    ON CONFLICT (transaction_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()
                    WHERE payment_data.status = 'pending'
                    """)
            }
            let activity = try await DashboardData.paymentProcessing(DashboardInput(database: db, now: Date()))
            #expect(activity.decided == 2 && activity.authorized == 1 && activity.declined == 1 && activity.pending == 0)
            #expect(activity.volumes.first?.totalAmount == 300)
        }
    }
}

@Suite("Dashboard figures reuse")
struct FiguresReuseTests {
    @Test("a figure is reused within its lifetime and read afresh without one")
    func reuse() async throws {
        try await DashboardHarness.with { harness in
            let key = try await APIKeyStore(database: harness.database).create(name: "dash", roles: [Role("compliance:read")]).key
            let auth: HTTPFields = [.authorization: "Bearer \(key)"]
            let uri = "/api/financial/dashboard/payment-processing"
            @Sendable func decide() async throws {
                try await harness.database.execute("""
                    INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, requested_by, created_at, updated_at)
                    VALUES (\(UUID()), 'm', 'authorized', 100, 'USD', 'x', now(), now())
                    """)
            }
            try await harness.application(figuresLifetime: .seconds(3600)).test(.live) { client async throws in
                #expect(try json(try await client.get(uri, headers: auth))["decided"] as? Int == 0)
                try await decide()
                #expect(try json(try await client.get(uri, headers: auth))["decided"] as? Int == 0, "the figure of the first read, reused")
            }
            try await harness.application(figuresLifetime: .zero).test(.live) { client async throws in
                #expect(try json(try await client.get(uri, headers: auth))["decided"] as? Int == 1)
                try await decide()
                #expect(try json(try await client.get(uri, headers: auth))["decided"] as? Int == 2)
            }
        }
    }
}
