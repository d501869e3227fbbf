import AsyncHTTPClient
import Foundation
import MingusCore
import MingusDashboard
import MingusPostgres
import MingusSecurity
import NIOCore
import NIOHTTP1
import TestSupport

/// The dashboard's reads with a database of `payments` payments (spread over 30 days, plus
/// breaches, obligations and firing alerts): `GET /dashboard/` with a signed-in session and the
/// four JSON endpoints with an API key, each asked `requests` times by `clients` concurrent
/// clients of a release gateway; p50, p99 and requests/s.
enum DashboardBenchmarks {
    struct Row {
        var name: String
        var requests: Int
        var perSecond: Double
        var p50: Duration
        var p99: Duration
    }

    struct Figures {
        var payments: Int
        var seedSeconds: Double
        var rollupRows: Int64
        var rows: [Row]
    }

    static func run(payments: Int, requests: Int, clients: Int) async throws -> Figures {
        let cluster = try await Cluster.start(keyPurposes: [.dashboardTOTP])
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
        do {
            let db = cluster.database
            // Payments, written in statements of 100,000 rows: the rollup trigger runs once per statement.
            let seedStart = ContinuousClock.now
            var done = 0
            while done < payments {
                let count = min(100_000, payments - done)
                try await db.execute("""
                    INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, card_brand, masked_pan, requested_by,
                                              created_at, updated_at, authorized_at)
                    SELECT gen_random_uuid(), 'm-' || (n % 50), s.status, 100 + (n % 50000), (ARRAY['USD', 'EUR', 'GBP'])[1 + (n % 3)::int],
                           'visa', '************4242', 'apikey:bench', c.at, c.at + ((20 + n % 900) * interval '1 millisecond'),
                           CASE WHEN s.status = 'authorized' THEN c.at END
                    FROM generate_series(\(done + 1)::bigint, \(done + count)::bigint) AS n
                    CROSS JOIN LATERAL (SELECT now() - ((n * 2592000) / \(Int64(payments))::bigint) * interval '1 second' AS at) c
                    CROSS JOIN LATERAL (SELECT CASE WHEN n % 100 < 85 THEN 'authorized' WHEN n % 100 < 97 THEN 'declined' ELSE 'failed' END AS status) s
                    """)
                done += count
            }
            let seedSeconds = (ContinuousClock.now - seedStart).inSeconds
            for n in 0..<50 {
                let breach = UUID()
                try await db.execute("""
                    INSERT INTO breaches (id, title, severity, status, discovered_at, aware_at, data_categories, data_encrypted, records_affected,
                                          persons_affected, jurisdictions, entity_roles, reported_by, reported_at)
                    VALUES (\(breach), \("Breach \(n)"), (ARRAY['low', 'medium', 'high', 'critical'])[1 + \(n)::int % 4],
                            (ARRAY['detected', 'investigating', 'closed'])[1 + \(n)::int % 3], now(), now(), ARRAY['email'], false, 10, 10,
                            ARRAY['US-CA'], ARRAY['controller'], 'apikey:bench', now())
                    """)
                for regime in ["gdpr-authority", "us-ca-individuals", "pci-brands"] {
                    try await db.execute("""
                        INSERT INTO breach_obligations (id, breach_id, regime, regime_name, notify, rules_version, reason, clock, deadline, period)
                        VALUES (\(UUID()), \(breach), \(regime), \(regime), 'authority', 'v1', 'bench', 'aware',
                                now() + ((\(n)::int - 10) * interval '1 hour'), '72h')
                        """)
                }
            }
            try await db.execute("""
                INSERT INTO alerts (id, fingerprint, status, severity, title, labels, source, starts_at, last_received_at)
                SELECT gen_random_uuid(), 'bench-' || n, CASE WHEN n % 4 = 0 THEN 'resolved' ELSE 'firing' END,
                       (ARRAY['critical', 'high', 'medium', 'low', 'info'])[1 + n % 5], 'Alert ' || n, '{}', 'bench',
                       now() - n * interval '1 minute', now()
                FROM generate_series(1, 400) AS n
                """)
            try await db.execute("VACUUM ANALYZE payment_data")
            try await db.execute("VACUUM ANALYZE payment_hourly_rollups")
            let rollupRows = try await db.query("SELECT count(*) FROM payment_hourly_rollups")[0].decode(Int64.self, at: 0)

            // A dashboard user signed in, and an API key.
            let password = "bench password \(UUID().uuidString)"
            let (_, enrollment) = try await DashboardUsers(database: db).create(
                username: "bench", roles: [Role("compliance:read")], password: password, keyring: try await cluster.keyring(), createdBy: "bench")
            let secret = Base32.decode(enrollment.totpSecret)!
            var login = HTTPClientRequest(url: cluster.base + "/dashboard/login")
            login.method = .POST
            login.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            let code = TOTP(secret: secret).code(at: Date())
            login.body = .bytes(ByteBuffer(string: "username=bench&password=\(password.replacingOccurrences(of: " ", with: "+"))&code=\(code)"))
            let signedIn = try await client.execute(login, timeout: .seconds(30))
            guard signedIn.status == .seeOther, let setCookie = signedIn.headers.first(name: "Set-Cookie"),
                  let cookie = setCookie.split(separator: ";").first.map(String.init) else {
                throw WorkerProcessError(message: "the bench user could not sign in: \(signedIn.status)")
            }
            let key = try await cluster.key([Role("compliance:read")]).key

            let targets: [(String, String, (String, String))] = [
                ("GET /dashboard/ (HTML, 6 panels)", "/dashboard/", ("Cookie", cookie)),
                ("GET …/dashboard/overview", "/api/financial/dashboard/overview", ("Authorization", "Bearer \(key)")),
                ("GET …/dashboard/customer-protection", "/api/financial/dashboard/customer-protection", ("Authorization", "Bearer \(key)")),
                ("GET …/customer/data/inventory", "/api/financial/customer/data/inventory", ("Authorization", "Bearer \(key)")),
                ("GET …/dashboard/payment-processing", "/api/financial/dashboard/payment-processing", ("Authorization", "Bearer \(key)")),
                ("GET …/dashboard/data-breaches", "/api/financial/dashboard/data-breaches", ("Authorization", "Bearer \(key)")),
                ("GET …/dashboard/alerts", "/api/financial/dashboard/alerts", ("Authorization", "Bearer \(key)")),
                ("GET …/dashboard/recent-activities", "/api/financial/dashboard/recent-activities", ("Authorization", "Bearer \(key)")),
            ]
            var rows: [Row] = []
            for (name, path, header) in targets {
                func ask() async throws -> Duration {
                    var request = HTTPClientRequest(url: cluster.base + path)
                    request.headers.add(name: header.0, value: header.1)
                    let start = ContinuousClock.now
                    let response = try await client.execute(request, timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 4 << 20)
                    guard response.status == .ok else { throw WorkerProcessError(message: "\(path) answered \(response.status)") }
                    return ContinuousClock.now - start
                }
                for _ in 0..<100 { _ = try await ask() }
                let started = ContinuousClock.now
                let latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
                    for lane in 0..<clients {
                        group.addTask {
                            var mine: [Duration] = []
                            for _ in stride(from: lane, to: requests, by: clients) { mine.append(try await ask()) }
                            return mine
                        }
                    }
                    var all: [Duration] = []
                    for try await part in group { all += part }
                    return all.sorted()
                }
                let seconds = (ContinuousClock.now - started).inSeconds
                rows.append(Row(name: name, requests: latencies.count, perSecond: Double(latencies.count) / seconds,
                                p50: latencies[latencies.count / 2], p99: latencies[min(latencies.count - 1, latencies.count * 99 / 100)]))
            }
            try await client.shutdown()
            try await cluster.stopCleanly()
            return Figures(payments: payments, seedSeconds: seedSeconds, rollupRows: rollupRows, rows: rows)
        } catch {
            try? await client.shutdown()
            try? await cluster.stop()
            throw error
        }
    }
}
