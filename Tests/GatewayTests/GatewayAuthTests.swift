import Foundation
import MingusSecurity
import MingusPayments
import MingusGateway
import MingusPostgres
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A gateway on a database of its own (see ``Cluster``).
typealias Gateway = Cluster

func errorBody(_ text: String) throws -> [String: String] {
    let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    return try #require(object?["error"] as? [String: String], "\(text)")
}

@Suite("Gateway authentication, roles and auditing")
struct GatewayAuthTests {
    @Test("no key, a malformed key, a wrong secret and a revoked key get 401 with a JSON error")
    func unauthorized() async throws {
        let gateway = try await Gateway.start()
        let (name, key) = try await gateway.key([.auditRead])
        let wrongSecret = String(key.dropLast(2)) + (key.hasSuffix("AA") ? "BB" : "AA")
        for headers in [[:], ["Authorization": "Bearer nonsense"], ["Authorization": "Bearer \(wrongSecret)"], ["Authorization": key]] {
            let response = try await httpRequest(gateway.base + "/api/financial/audit", headers: headers)
            #expect(response.status == 401, "\(headers)")
            #expect(try errorBody(response.body)["code"] == "unauthorized")
        }
        #expect(try await httpRequest(gateway.base + "/api/financial/audit", headers: ["Authorization": "Bearer \(key)"]).status == 200)
        #expect(try await APIKeyStore(database: gateway.database).revoke(name) == 1)
        // The gateway trusts a verification for MINGUS_API_KEY_CACHE_SECONDS (5 by default).
        #expect(try await eventually(timeout: .seconds(30)) {
            try await httpRequest(gateway.base + "/api/financial/audit", headers: ["Authorization": "Bearer \(key)"]).status == 401
        })
        try await gateway.stopCleanly()
    }

    @Test("a verified key is trusted for the cache lifetime, then read again: revocation takes effect; wrong secrets never verify")
    func keyCache() async throws {
        let gateway = try await Gateway.start()
        let (name, key) = try await gateway.key([.auditRead])
        let store = APIKeyStore(database: gateway.database)
        let long = APIKeyCache(store: store, lifetime: .seconds(600))
        let short = APIKeyCache(store: store, lifetime: .seconds(1))
        #expect(try await long.verify(key)?.name == name)
        #expect(try await short.verify(key)?.name == name)
        #expect(try await store.revoke(name) == 1)
        #expect(try await store.verify(key) == nil, "the store itself sees the revocation at once")
        #expect(try await long.verify(key)?.name == name, "trusted until the lifetime ends")
        #expect(try await eventually(timeout: .seconds(30)) { try await short.verify(key) == nil }, "read again after the lifetime")
        #expect(try await long.verify(key + "x") == nil)
        let uncached = APIKeyCache(store: store, lifetime: .zero)
        let (other, otherKey) = try await gateway.key([.auditRead])
        #expect(try await uncached.verify(otherKey)?.name == other)
        #expect(try await store.revoke(other) == 1)
        #expect(try await uncached.verify(otherKey) == nil, "a zero lifetime caches nothing")
        try await gateway.stopCleanly()
    }

    @Test("a key without the route's role gets 403 naming the role; admin holds every role")
    func forbidden() async throws {
        let gateway = try await Gateway.start()
        let (_, payments) = try await gateway.key([.paymentsWrite, .paymentsRead])
        let response = try await httpRequest(gateway.base + "/api/financial/audit", headers: ["Authorization": "Bearer \(payments)"])
        #expect(response.status == 403)
        let error = try errorBody(response.body)
        #expect(error["code"] == "forbidden")
        #expect(error["message"]?.contains("audit:read") == true)
        let (_, admin) = try await gateway.key([.admin])
        #expect(try await httpRequest(gateway.base + "/api/financial/audit", headers: ["Authorization": "Bearer \(admin)"]).status == 200)
        try await gateway.stopCleanly()
    }

    @Test("a known path asked with a method it does not take gets 405 with Allow; an unknown path 404; a key comes first")
    func methodNotAllowed() async throws {
        let gateway = try await Gateway.start()
        let (_, admin) = try await gateway.key([.admin])
        let auth = ["Authorization": "Bearer \(admin)"]
        let silences = try await httpRequest(gateway.base + "/api/alerts/silences", method: "PUT", headers: auth)
        #expect(silences.status == 405)
        #expect(silences.headers["Allow"] as? String == "GET, POST")
        #expect(try errorBody(silences.body)["code"] == "method_not_allowed")
        let payment = try await httpRequest(gateway.base + "/api/financial/payment/\(UUID().uuidString.lowercased())", method: "DELETE", headers: auth)
        #expect(payment.status == 405)
        #expect(payment.headers["Allow"] as? String == "GET")
        let health = try await httpRequest(gateway.base + "/healthz", method: "POST")
        #expect(health.status == 405)
        #expect(health.headers["Allow"] as? String == "GET")
        let process = try await httpRequest(gateway.base + "/api/financial/payment/process", method: "OPTIONS", headers: auth)
        #expect(process.status == 405)
        #expect(process.headers["Allow"] as? String == "POST")
        #expect(try await httpRequest(gateway.base + "/api/alerts/silences/x/y", headers: auth).status == 404)
        #expect(try await httpRequest(gateway.base + "/api/alerts/silences", method: "PUT").status == 401)
        try await gateway.stopCleanly()
    }

    @Test("every API request is audited with who, what, outcome and origin, and can be searched with paging")
    func auditedAndSearchable() async throws {
        let gateway = try await Gateway.start()
        let (name, key) = try await gateway.key([.auditRead])
        let auth = ["Authorization": "Bearer \(key)"]
        for _ in 0..<3 { _ = try await httpRequest(gateway.base + "/api/financial/audit?limit=1", headers: auth) }

        let first = try await httpRequest(gateway.base + "/api/financial/audit?limit=2&actor=apikey:\(name)", headers: auth)
        #expect(first.status == 200, "\(first.body)")
        let page = try #require(try JSONSerialization.jsonObject(with: Data(first.body.utf8)) as? [String: Any])
        let events = try #require(page["events"] as? [[String: Any]])
        #expect(events.count == 2)
        #expect(events.allSatisfy { $0["actor"] as? String == "apikey:\(name)" && $0["outcome"] as? String == "success"
            && $0["origin"] as? String == "127.0.0.1" && $0["action"] as? String == "http.get"
            && $0["resource"] as? String == "/api/financial/audit" && $0["occurred_at"] is String })
        let cursor = try #require(page["next_cursor"] as? String)
        let second = try await httpRequest(gateway.base + "/api/financial/audit?limit=2&actor=apikey:\(name)&cursor=\(cursor)", headers: auth)
        let secondPage = try #require(try JSONSerialization.jsonObject(with: Data(second.body.utf8)) as? [String: Any])
        let rest = try #require(secondPage["events"] as? [[String: Any]])
        #expect(secondPage["next_cursor"] is NSNull)
        // Three earlier requests: two on the first page, one after the cursor (the first search's own
        // event is newer than the cursor, so it is not on this page).
        #expect(rest.count == 1)
        #expect(rest.first?["seq"] as? Int != events.last?["seq"] as? Int || rest.first?["stream"] as? String != events.last?["stream"] as? String)

        let bad = try await httpRequest(gateway.base + "/api/financial/audit?from=yesterday", headers: auth)
        #expect(bad.status == 400)
        #expect(try errorBody(bad.body)["field"] == "from")

        // Denied requests are audited too.
        _ = try await httpRequest(gateway.base + "/api/financial/audit", headers: ["Authorization": "Bearer mgk_000000000000_nope"])
        let denied = try await gateway.database.query(
            "SELECT count(*) FROM audit_events WHERE actor = 'anonymous' AND outcome = 'denied' AND resource = '/api/financial/audit'")
        #expect(try denied[0].decode(Int.self, at: 0) >= 1)
        try await gateway.stopCleanly()
    }

    @Test("health routes answer without a key")
    func health() async throws {
        let gateway = try await Gateway.start()
        #expect(try await httpRequest(gateway.base + "/healthz").status == 200)
        #expect(try await eventually { try await httpRequest(gateway.base + "/readyz").status == 200 })
        #expect(try await httpRequest(gateway.base + "/metrics").status == 200)
        try await gateway.stopCleanly()
    }

    @Test("mingusctl apikey create prints the key last; list never shows it; revoke works by name")
    func apikeyCommands() async throws {
        let database = PostgresClient(configuration: PostgresConfiguration(url: TestEnvironment.databaseURL, poolSize: 1))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
        await database.shutdown()
        let name = TestEnvironment.uniqueName("cli")
        let created = try WorkerProcess("mingusctl", arguments: ["apikey", "create", "--name", name, "--role", "audit:read"], environment: [:])
        #expect(try await created.wait(timeout: .seconds(60)) == 0)
        let key = try #require(created.output.split(separator: "\n").last.map(String.init))
        #expect(key.hasPrefix("mgk_"))
        let listed = try WorkerProcess("mingusctl", arguments: ["apikey", "list"], environment: [:])
        #expect(try await listed.wait(timeout: .seconds(60)) == 0)
        #expect(listed.output.contains(name))
        #expect(!listed.output.contains(String(key.suffix(20))))
        let revoked = try WorkerProcess("mingusctl", arguments: ["apikey", "revoke", name], environment: [:])
        #expect(try await revoked.wait(timeout: .seconds(60)) == 0)
        #expect(revoked.output.contains("revoked 1 key(s)"))

        // Both changes are in the audit trail, naming the operator (user and host) and what changed.
        let audit = PostgresClient(configuration: PostgresConfiguration(url: TestEnvironment.databaseURL, poolSize: 1))
        let events = try await audit.query("""
            SELECT action, actor, resource, details->>'roles' FROM audit_events
            WHERE (action = 'apikey.create' AND details->>'name' = \(name)) OR (action = 'apikey.revoke' AND resource = \("apikeys/" + name))
            ORDER BY occurred_at, seq
            """).map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1), try $0.decode(String.self, at: 2), try $0.decode(String?.self, at: 3)) }
        await audit.shutdown()
        #expect(events.map(\.0) == ["apikey.create", "apikey.revoke"], "\(events)")
        #expect(events.allSatisfy { $0.1.hasPrefix("operator:") && $0.1.contains("@") }, "\(events)")
        #expect(events.first?.3 == "audit:read")
        let id = try #require(created.output.split(separator: "\n").first?.split(separator: " ").dropFirst(3).first.map(String.init))
        #expect(events.first?.2 == "apikeys/\(id)", "\(events) \(created.output)")
    }
}
