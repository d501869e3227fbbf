import Foundation
import MingusSecurity
import MingusAlerts
import MingusGateway
import MingusPostgres
import TestSupport
import Testing

@Suite("Alert silences API")
struct AlertSilenceTests {
    @Test("a silence takes matcher strings or Alertmanager's matcher objects; it is listed while active, expired by DELETE, then listed only with state=all")
    func lifecycle() async throws {
        let gateway = try await Cluster.start()
        let (_, key) = try await gateway.key([.alertsWrite, .alertsRead])
        let created = try await gateway.call("POST", "/api/alerts/silences", key: key, [
            "matchers": [#"team="db""#, ["name": "service", "value": "cach.*", "isRegex": true],
                         ["name": "env", "value": "dev", "isEqual": false]],
            "ends_at": "2099-01-01T00:00:00Z", "comment": "maintenance",
        ])
        #expect(created.status == 201, "\(created.body)")
        #expect(created.body["matchers"] as? [String] == [#"team="db""#, #"service=~"cach.*""#, #"env!="dev""#])
        let id = try #require(created.body["id"] as? String)

        let active = try await gateway.call("GET", "/api/alerts/silences", key: key)
        let listed = active.body["silences"] as? [[String: Any]] ?? []
        #expect(listed.map { $0["id"] as? String } == [id])
        #expect(listed.first?["state"] as? String == "active")

        let expired = try await gateway.call("DELETE", "/api/alerts/silences/\(id)", key: key)
        #expect(expired.status == 200)
        #expect(expired.body["state"] as? String == "expired")
        #expect((try await gateway.call("GET", "/api/alerts/silences", key: key).body["silences"] as? [Any])?.isEmpty == true)
        let all = try await gateway.call("GET", "/api/alerts/silences?state=all", key: key).body["silences"] as? [[String: Any]] ?? []
        #expect(all.map { $0["state"] as? String } == ["expired"])
        #expect(try await gateway.call("DELETE", "/api/alerts/silences/\(id)", key: key).status == 404)
        try await gateway.stopCleanly()
    }

    @Test("a bad silence is refused with 422 naming the field and the rule")
    func badSilences() async throws {
        let gateway = try await Cluster.start()
        let (_, key) = try await gateway.key([.alertsWrite])
        let cases: [(matchers: Any, field: String, rule: String)] = [
            ([Any](), "matchers", "required"),
            ([42], "matchers[0]", "type"),
            (["team"], "matchers[0]", "format"),
            ([["name": "team"]], "matchers[0].value", "required"),
            ([["value": "db"]], "matchers[0].name", "required"),
            ([["name": "team", "value": "db", "isRegex": "yes"]], "matchers[0].isRegex", "type"),
            ([["name": "team", "value": "db", "regex": true]], "matchers[0].regex", "unknown"),
            ([["name": "team", "value": "(", "isRegex": true]], "matchers[0]", "format"),
            ([["name": "bad name", "value": "db"]], "matchers[0]", "format"),
        ]
        for (matchers, field, rule) in cases {
            let response = try await gateway.call("POST", "/api/alerts/silences", key: key, [
                "matchers": matchers, "ends_at": "2099-01-01T00:00:00Z", "comment": "c",
            ])
            let error = response.body["error"] as? [String: Any]
            #expect(response.status == 422 && error?["field"] as? String == field && error?["rule"] as? String == rule,
                    "\(field): \(response.status) \(response.body)")
        }
        let count = try await gateway.database.query("SELECT count(*) FROM alert_silences")[0].decode(Int.self, at: 0)
        #expect(count == 0)
        try await gateway.stopCleanly()
    }
}

extension Cluster {
    /// An API call with a JSON body (when given); the answer's JSON object (empty when none).
    func call(_ method: String, _ path: String, key: String, _ body: [String: Any]? = nil) async throws
        -> (status: Int, body: [String: Any]) {
        let response = try await httpRequest(base + path, method: method,
                                             headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                                             body: try body.map { try JSONSerialization.data(withJSONObject: $0) })
        let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        return (response.status, object ?? [:])
    }
}
