import Foundation
import MingusCore
import MingusLogs
import MingusPostgres
import MingusRuntime
import Testing
import TestSupport

/// Template ids shared by several logs workers, security rules, and template rates.
@Suite("Logs: shared template ids, security rules, template rates", .serialized)
struct LogDetectionTests {
    static func line(_ service: String, _ message: String, at date: Date? = nil, level: String = "info") -> String {
        var object: [String: Any] = ["service": service, "level": level, "message": message]
        if let date { object["timestamp"] = LogsEndToEndTests.iso(date) }
        return String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func ndjson(_ lines: [String]) -> [UInt8] { Array(lines.joined(separator: "\n").utf8) }

    /// `mingus_logs_lines_total` of a logs worker, from its metrics endpoint.
    static func linesMined(_ worker: WorkerProcess) async throws -> Double {
        let port = try #require(try await loggedPort(worker, message: "health and metrics server listening"), "\(worker.output.suffix(2000))")
        let text = try await httpRequest("http://127.0.0.1:\(port)/metrics").body
        return text.split(separator: "\n").first { $0.hasPrefix("mingus_logs_lines_total") }
            .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
    }

    @Test("two logs workers mining the same lines give each template one id, and announce each new one once")
    func sharedTemplateIDs() async throws {
        try await LogsCluster.with(environment: ["MINGUS_LOGS_WARMUP_LINES": "0"]) { logs in
            let second = try logs.cluster.startWorker("mingus-logs-worker")
            let first = try #require(logs.cluster.workers.first { $0.executable == "mingus-logs-worker" && $0 !== second })
            #expect(try await eventually { second.output.contains("consuming") }, "\(second.output.suffix(2000))")
            // Twenty batches, each with lines of the same three templates: the broker hands them
            // to both workers in turn, and each worker's miner finds the three templates itself.
            var sent: Int64 = 0
            for batch in 0..<20 {
                let lines = (0..<30).map { n -> String in
                    switch n % 3 {
                    case 0: Self.line("api", "user \(batch * 100 + n) logged in from 10.0.\(batch).\(n)")
                    case 1: Self.line("api", "payment \(batch * 1000 + n) settled in \(n + 3) ms")
                    default: Self.line("api", "cache miss for key \(batch * 7 + n) after \(n) probes")
                    }
                }
                #expect(try await logs.send(Self.ndjson(lines), type: "application/x-ndjson").status == 202)
                sent += 30
            }
            try await logs.waitForLines(sent)
            let mined = (try await Self.linesMined(first), try await Self.linesMined(second))
            try #require(mined.0 > 0 && mined.1 > 0, "both workers took lines: \(mined)")

            let live = try await logs.database.query("SELECT id, template, line_count FROM log_templates WHERE merged_into IS NULL ORDER BY id")
                .map { (try $0.decode(Int64.self, at: 0), try $0.decode(String.self, at: 1), try $0.decode(Int64.self, at: 2)) }
            #expect(live.count == 3, "\(live)")
            #expect(Set(live.map(\.1)).count == live.count)
            // Every line names a live template, and each template's count is its lines.
            #expect(try await logs.count("SELECT count(DISTINCT template_id) FROM log_lines") == 3)
            #expect(try await logs.count("""
                SELECT count(*) FROM log_lines l WHERE NOT EXISTS (SELECT 1 FROM log_templates t WHERE t.id = l.template_id AND t.merged_into IS NULL)
                """) == 0)
            for (id, _, count) in live {
                #expect(try await logs.count("SELECT count(*) FROM log_lines WHERE template_id = \(id)") == count)
            }
            // Both workers found each template new; the cluster announced each once.
            #expect(try await logs.count("SELECT count(*) FROM log_anomalies WHERE kind = 'new_template'") == 3)
            #expect(try await logs.count("SELECT count(DISTINCT template_id) FROM log_anomalies WHERE kind = 'new_template'") == 3)
        }
    }

    @Test("security rules count matching lines per source within their window and fire once each; a bad rules file stops the worker with its line")
    func securityRules() async throws {
        let rules = """
            rules:
              - name: ssh_failures
                description: Repeated SSH password failures
                match: '(?i)failed password'
                source: 'from ([0-9.]+)'
                threshold: 3
                window: 5m
                severity: critical
              - name: sudo
                match: 'sudo:.*COMMAND='
                threshold: 1
            """
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("rules") + ".yaml")
        try rules.write(to: file, atomically: true, encoding: .utf8)
        try await LogsCluster.with(environment: ["MINGUS_LOGS_RULES": file.path]) { logs in
            func failures(_ source: String, _ count: Int) -> [String] {
                (0..<count).map { Self.line("sshd", "Failed password for user\($0) from \(source) port \(40000 + $0) ssh2") }
            }
            // Two from each of two sources: below the threshold of either.
            #expect(try await logs.send(Self.ndjson(failures("10.1.1.1", 2) + failures("10.2.2.2", 2)), type: "application/x-ndjson").status == 202)
            try await logs.waitForLines(4)
            #expect(try await logs.count("SELECT count(*) FROM log_anomalies WHERE kind = 'security_rule'") == 0)
            // A third from one source crosses it; more from it within the window add nothing.
            #expect(try await logs.send(Self.ndjson(failures("10.1.1.1", 1)), type: "application/x-ndjson").status == 202)
            try await logs.waitForLines(5)
            #expect(try await logs.send(Self.ndjson(failures("10.1.1.1", 5)), type: "application/x-ndjson").status == 202)
            try await logs.waitForLines(10)
            let fired = try await logs.database.query("SELECT rule, source, service, lines FROM log_anomalies WHERE kind = 'security_rule'")
                .map { (try $0.decode(String.self, at: 0), try $0.decode(String.self, at: 1), try $0.decode(String.self, at: 2), try $0.decode(Int64.self, at: 3)) }
            #expect(fired.count == 1 && fired.first?.0 == "ssh_failures" && fired.first?.1 == "10.1.1.1" && fired.first?.2 == "sshd"
                    && fired.first?.3 == 3, "\(fired)")
            // A privilege change fires at its first line, with no source.
            let sudo = Self.line("auth", "sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id")
            #expect(try await logs.send(Self.ndjson([sudo, Self.line("auth", "session closed for user alice")]), type: "application/x-ndjson").status == 202)
            try await logs.waitForLines(12)
            #expect(try await logs.count("SELECT count(*) FROM log_anomalies WHERE kind = 'security_rule' AND rule = 'sudo' AND source = ''") == 1)
            // Each is an alert with its severity, found by its stable dedup key.
            try #require(try await eventually {
                try await logs.count("SELECT count(*) FROM alerts WHERE dedup_key IN ('logs:security_rule:sshd:ssh_failures:10.1.1.1', 'logs:security_rule:auth:sudo')") == 2
            }, "\(logs.cluster.output)")
            #expect(try await logs.count("SELECT count(*) FROM alerts WHERE dedup_key = 'logs:security_rule:sshd:ssh_failures:10.1.1.1' AND severity = 'critical'") == 1)
            let listed = try await logs.get("/api/logs/anomalies?kind=security_rule")
            let anomalies = try #require(listed.body["anomalies"] as? [[String: Any]])
            #expect(Set(anomalies.compactMap { $0["rule"] as? String }) == ["ssh_failures", "sudo"], "\(listed.body)")

            // A mistake in the file stops a worker at start, naming the file, line and setting.
            let bad = rules.replacingOccurrences(of: "threshold: 3", with: "threshold: many")
            let badFile = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("rules") + ".yaml")
            try bad.write(to: badFile, atomically: true, encoding: .utf8)
            let broken = try WorkerProcess("mingus-logs-worker", environment: logs.cluster.environment.merging(["MINGUS_LOGS_RULES": badFile.path]) { $1 })
            #expect(try await broken.wait(timeout: .seconds(30)) == MingusProcess.configurationExitStatus)
            let line = bad.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("threshold: many") }! + 1
            #expect(broken.output.contains("\(badFile.path):\(line): rules[0].threshold: expected a number above 0"), "\(broken.output.suffix(2000))")
        }
    }

    @Test("a template's rate far above or below its baseline is one anomaly and one alert; steady minutes are not")
    func templateRates() async throws {
        try await LogsCluster.with(environment: ["MINGUS_LOGS_RATES_SCHEDULE": "off"]) { logs in
            let now = Date().timeIntervalSince1970
            let base = (now / 60).rounded(.down) * 60
            var lines: [String] = []
            // Twenty-five steady minutes of two templates, then a minute where one spikes and the
            // other stops.
            for minute in 6...30 {
                let at = Date(timeIntervalSince1970: base - Double(minute * 60) + 5)
                lines += (0..<20).map { Self.line("queue", "queue depth \($0 % 7 + 1) on shard \($0 % 3 + 1)", at: at) }
                lines += (0..<30).map { Self.line("queue", "heartbeat from consumer \($0 + 1) ok", at: at) }
            }
            let spike = Date(timeIntervalSince1970: base - 5 * 60 + 5)
            lines += (0..<300).map { Self.line("queue", "queue depth \($0 % 7 + 1) on shard \($0 % 3 + 1)", at: spike) }
            #expect(try await logs.send(Self.ndjson(lines), type: "application/x-ndjson").status == 202)
            try await logs.waitForLines(Int64(lines.count))

            func evaluate() async throws {
                let id = UUID().uuidString.lowercased()
                try await logs.database.withConnection { db in
                    try await Scheduler.schedule(on: db, id: id, type: LogsRatesJob.type, body: Array("{}".utf8), at: Date())
                }
                try #require(try await eventually {
                    try await logs.count("SELECT count(*) FROM mingus_inbox WHERE message_id = '\(id)'") == 1
                }, "\(logs.cluster.output)")
            }
            try await evaluate()
            let found = try await logs.database.query("""
                SELECT t.template, a.minute, a.lines, a.summary FROM log_anomalies a JOIN log_templates t ON t.id = a.template_id
                WHERE a.kind = 'template_rate' ORDER BY a.minute, t.template
                """).map { (try $0.decode(String.self, at: 0), try $0.decode(Date.self, at: 1), try $0.decode(Int64.self, at: 2),
                            try $0.decode(String.self, at: 3)) }
            let spikes = found.filter { $0.0.hasPrefix("queue depth") }
            let drops = found.filter { $0.0.hasPrefix("heartbeat") }
            #expect(spikes.count == 1 && spikes.first?.1 == spike.addingTimeInterval(-5) && spikes.first?.2 == 300
                    && spikes.first?.3.contains("above") == true, "\(found)")
            #expect(drops.first?.1 == spike.addingTimeInterval(-5) && drops.first?.2 == 0 && drops.allSatisfy { $0.3.contains("below") }, "\(found)")
            #expect(found.allSatisfy { $0.1 >= spike.addingTimeInterval(-5) }, "no steady minute is an anomaly: \(found)")
            // One alert per template, however many minutes stay far from the baseline.
            try #require(try await eventually {
                try await logs.count("SELECT count(*) FROM alerts WHERE dedup_key LIKE 'logs:template_rate:queue:%'") == 2
            }, "\(logs.cluster.output)")
            // Evaluated minutes are not evaluated again.
            try await evaluate()
            #expect(try await logs.count("SELECT count(*) FROM log_anomalies WHERE kind = 'template_rate'") == Int64(found.count))
            #expect(try await logs.count("SELECT count(*) FROM log_template_rates") >= 2)
        }
    }
}
