import Foundation
import MingusHTTP
import MingusLogs
import MingusPostgres
import MingusSecurity
import Testing
import TestSupport

/// A gateway and a logs worker on a database and broker virtual host of their own.
struct LogsCluster {
    let cluster: Cluster
    let writer: String
    let reader: String

    static func with(environment: [String: String] = [:], _ body: (LogsCluster) async throws -> Void) async throws {
        // The alerts worker stores the anomalies' alerts; it routes them nowhere.
        let config = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("alerting") + ".yaml")
        try "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n".write(to: config, atomically: true, encoding: .utf8)
        let cluster = try await Cluster.start(environment: environment.merging(["MINGUS_ALERTING_CONFIG": config.path]) { $1 },
                                              privateBroker: true)
        do {
            let logs = LogsCluster(cluster: cluster, writer: try await cluster.key([.logsWrite]).key,
                                   reader: try await cluster.key([.logsRead]).key)
            try cluster.startWorker("mingus-logs-worker")
            try cluster.startWorker("mingus-alerts-worker")
            try await body(logs)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
        try await cluster.stopCleanly()
    }

    var database: PostgresClient { cluster.database }

    func send(_ body: [UInt8], type: String, gzip: Bool = false, path: String = "/api/logs") async throws -> (status: Int, body: [String: Any]) {
        var headers = ["Authorization": "Bearer \(writer)", "Content-Type": type]
        if gzip { headers["Content-Encoding"] = "gzip" }
        let answer = try await httpRequest(cluster.base + path, method: "POST", headers: headers,
                                           body: Data(gzip ? try Gzip.compress(body) : body))
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? ["raw": answer.body])
    }

    func get(_ path: String) async throws -> (status: Int, body: [String: Any]) {
        let answer = try await httpRequest(cluster.base + path, headers: ["Authorization": "Bearer \(reader)"])
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? ["raw": answer.body])
    }

    func count(_ sql: String) async throws -> Int64 {
        try await database.query(PostgresQuery(unsafeSQL: sql))[0].decode(Int64.self, at: 0)
    }

    func waitForLines(_ expected: Int64) async throws {
        var stored: Int64 = -1
        let done = try await eventually(timeout: .seconds(60)) {
            stored = try await count("SELECT count(*) FROM log_lines")
            return stored >= expected
        }
        try #require(done && stored == expected, "stored \(stored) of \(expected) lines\n\(cluster.output)")
    }
}

@Suite("Logs: intake from every shipper format, redaction, storage, templates, anomalies", .serialized)
struct LogsEndToEndTests {
    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    @Test("every format is taken, lines are redacted before they are queued or stored, and a card number raises one alert")
    func intakeAndRedaction() async throws {
        try await LogsCluster.with { logs in
            let pans = randomCardNumbers(3)
            let minute = Self.iso(Date().addingTimeInterval(-3600))
            // JSON lines (Vector, Fluent Bit): one broken line among good ones.
            let ndjson = """
                {"timestamp":"\(minute)","service":"billing","level":"error","message":"charge failed for card \(pans[0]) of jane@example.com"}
                {"timestamp":"\(minute)","service":"billing","level":"info","message":"login user=bob password=hunter2 ok"}
                {"this is not json
                {"date":\(Date().timeIntervalSince1970),"log":"fluent bit line","kubernetes":{"container_name":"web"}}
                """
            let first = try await logs.send(Array(ndjson.utf8), type: "application/x-ndjson")
            #expect(first.status == 202, "\(first.body)")
            #expect(first.body["accepted"] as? Int == 4 && first.body["malformed"] as? Int == 1)
            #expect(first.body["redacted"] as? [String: Int] == ["card": 1, "email": 1, "secret": 1])
            // A JSON array, gzip-compressed.
            let array = #"[{"message":"GET /health 200","service":"web","level":"debug"},"a bare string line"]"#
            #expect(try await logs.send(Array(array.utf8), type: "application/json", gzip: true).status == 202)
            // Loki push.
            let nanos = String(Int64(Date().timeIntervalSince1970 * 1e9))
            let loki = #"{"streams":[{"stream":{"service_name":"checkout","level":"warn"},"values":[["\#(nanos)","slow upstream \#(pans[1])"],["\#(nanos)","retry 2"]]}]}"#
            let pushed = try await logs.send(Array(loki.utf8), type: "application/json", path: "/api/logs/loki/api/v1/push")
            #expect(pushed.status == 204, "\(pushed.body)")
            // OTLP/HTTP JSON.
            let otlp = #"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ledger"}}]},"scopeLogs":[{"logRecords":[{"timeUnixNano":"\#(nanos)","severityNumber":17,"body":{"stringValue":"posting failed"}}]}]}]}"#
            #expect(try await logs.send(Array(otlp.utf8), type: "application/json").status == 202)
            // Syslog, RFC 5424 and RFC 3164, and a plain line.
            let syslog = "<11>1 \(minute) host1 sshd 42 - - Failed password for root from 10.0.0.7\n<30>Nov 26 12:00:00 host2 cron[77]: job done\nplain text line with \(pans[2])\n"
            #expect(try await logs.send(Array(syslog.utf8), type: "text/plain").status == 202)

            try await logs.waitForLines(4 + 2 + 2 + 1 + 3)
            let services = try await logs.database.query("SELECT DISTINCT service FROM log_lines ORDER BY 1").map { try $0.decode(String.self, at: 0) }
            #expect(Set(services).isSuperset(of: ["billing", "web", "checkout", "ledger", "sshd", "cron"]), "\(services)")
            #expect(try await logs.count("SELECT count(*) FROM log_lines WHERE service = 'ledger' AND level = 'error'") == 1)
            #expect(try await logs.count("SELECT count(*) FROM log_lines WHERE service = 'sshd' AND level = 'error'") == 1)
            #expect(try await logs.count("SELECT count(*) FROM log_lines WHERE raw") == 1)
            #expect(try await logs.count("SELECT count(*) FROM log_lines WHERE message LIKE '%<card>%'") == 3)
            #expect(try await logs.count("SELECT count(*) FROM log_lines WHERE message LIKE '%password=<secret>%'") == 1)
            #expect(try await logs.count("SELECT count(*) FROM log_templates") > 0)

            // One card-number anomaly per service, each one alert (in the outbox), none naming the number.
            try #require(try await eventually {
                try await logs.count("SELECT count(*) FROM log_anomalies WHERE kind = 'card_number'") == 3
            })
            try #require(try await eventually {
                try await logs.count("SELECT count(*) FROM alerts WHERE dedup_key LIKE 'logs:card_number:%' AND severity = 'critical'") == 3
            })
            let alerts = try await logs.database.query("SELECT title || ' ' || description || ' ' || labels::text FROM alerts").map {
                try $0.decode(String.self, at: 0)
            }
            #expect(!alerts.contains { text in pans.contains { text.contains($0) } })
            let anomalies = try await logs.get("/api/logs/anomalies?kind=card_number")
            #expect((anomalies.body["anomalies"] as? [[String: Any]])?.count == 3)

            // Search, with keyset paging.
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await logs.get("/api/logs?service=billing&limit=1" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200, "\(page.body)")
                seen += (page.body["lines"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
                cursor = page.body["next_cursor"] as? String
            } while cursor != nil
            #expect(seen.count == 2 && seen.allSatisfy { !$0.contains(pans[0]) })
            #expect((try await logs.get("/api/logs?text=HUNTER").body["lines"] as? [Any])?.isEmpty == true)
            #expect((try await logs.get("/api/logs?level=warn").body["lines"] as? [Any])?.count == 2)
            #expect(try await logs.get("/api/logs?level=loud").status == 400)

            // Nothing of the card numbers reached the database's or the broker's files.
            let probe = randomCardNumbers(1)[0]
            try await logs.database.execute("CREATE TABLE leak_probe (value text)")
            try await logs.database.execute("INSERT INTO leak_probe VALUES (\(probe))")
            try await logs.database.execute("CHECKPOINT")
            let postgres = TestEnvironment.servicesDirectory.appendingPathComponent("postgres")
            let rabbitmq = TestEnvironment.servicesDirectory.appendingPathComponent("rabbitmq")
            let hits = try DigitScanner(pans + [probe]).scan(folders: [postgres, rabbitmq])
            #expect(hits.contains { $0.found.contains(probe) }, "the scan sees what reaches PostgreSQL's files")
            #expect(hits.allSatisfy { $0.found.isSubset(of: [probe]) }, "card numbers at rest: \(hits.map(\.file))")
            #expect(try DigitScanner(pans).scan(folders: [], files: ([logs.cluster.gateway] + logs.cluster.workers).map(\.logFile)).isEmpty)
        }
    }

    @Test("an error burst is one anomaly and one alert; a template first seen after the warm-up is an anomaly")
    func anomalies() async throws {
        try await LogsCluster.with(environment: ["MINGUS_LOGS_ERROR_BURST": "5", "MINGUS_LOGS_WARMUP_LINES": "10"]) { logs in
            let minute = Self.iso(Date().addingTimeInterval(-600))
            func errors(_ n: Int) -> [UInt8] {
                Array((0..<n).map { #"{"timestamp":"\#(minute)","service":"api","level":"error","message":"upstream timeout after \#($0) ms"}"# }
                    .joined(separator: "\n").utf8)
            }
            #expect(try await logs.send(errors(6), type: "application/x-ndjson").status == 202)
            try await logs.waitForLines(6)
            #expect(try await logs.send(errors(6), type: "application/x-ndjson").status == 202)
            try await logs.waitForLines(12)
            #expect(try await logs.count("SELECT count(*) FROM log_anomalies WHERE kind = 'error_burst' AND service = 'api'") == 1)
            #expect(try await logs.count("SELECT count(*) FROM log_anomalies WHERE kind = 'new_template'") == 0, "still warming up")
            let novel = #"{"service":"api","level":"info","message":"replica promoted to primary in zone b"}"#
            #expect(try await logs.send(Array(novel.utf8), type: "application/x-ndjson").status == 202)
            try await logs.waitForLines(13)
            let templates = try await logs.database.query("""
                SELECT a.dedup_key, t.example FROM log_anomalies a JOIN log_templates t ON t.id = a.template_id WHERE a.kind = 'new_template'
                """).map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1)) }
            #expect(templates.count == 1 && templates.first?.1.contains("replica promoted") == true, "\(templates)")
            // One alert each, found by its dedup key.
            try #require(try await eventually {
                try await logs.count("SELECT count(*) FROM alerts WHERE dedup_key LIKE 'logs:new_template:api:%'") == 1
            })
            #expect(try await logs.count("SELECT count(*) FROM alerts WHERE dedup_key = 'logs:error_burst:api'") == 1)
        }
    }

    @Test("bad bodies are refused whole with a JSON error; nothing is queued")
    func badBodies() async throws {
        try await LogsCluster.with { logs in
            let cases: [([UInt8], String, Bool, Int)] = [
                (Array("<xml/>".utf8), "application/xml", false, 415),
                (Array("[1, 2".utf8), "application/json", false, 400),
                (Array(#"{"streams": 3}"#.utf8), "application/json", false, 400),
                (Array("not gzip".utf8), "text/plain", true, 400),
            ]
            for (body, type, gzip, status) in cases {
                var headers = ["Authorization": "Bearer \(logs.writer)", "Content-Type": type]
                if gzip { headers["Content-Encoding"] = "gzip" }
                let answer = try await httpRequest(logs.cluster.base + "/api/logs", method: "POST", headers: headers, body: Data(body))
                #expect(answer.status == status && answer.body.contains("\"error\""), "\(type): \(answer.status) \(answer.body)")
            }
            let bomb = try Gzip.compress([UInt8](repeating: 0x61, count: 65 << 20))
            let tooLarge = try await httpRequest(logs.cluster.base + "/api/logs", method: "POST",
                                                 headers: ["Authorization": "Bearer \(logs.writer)", "Content-Type": "text/plain",
                                                           "Content-Encoding": "gzip"], body: Data(bomb))
            #expect(tooLarge.status == 413)
            let unauthorized = try await httpRequest(logs.cluster.base + "/api/logs", method: "POST",
                                                     headers: ["Authorization": "Bearer \(logs.reader)", "Content-Type": "text/plain"],
                                                     body: Data("x".utf8))
            #expect(unauthorized.status == 403)
            #expect(try await logs.count("SELECT count(*) FROM log_lines") == 0)
        }
    }
}
