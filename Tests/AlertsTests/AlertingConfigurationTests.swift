import Foundation
@testable import MingusAlerts
import MingusCore
import Testing
import TestSupport

/// The configuration's error message for `yaml`, or nil when it loads.
private func configurationError(_ yaml: String, environment: [String: String] = ["HOOK_SECRET": WebhookSignerSecret.value]) -> String? {
    do {
        _ = try AlertingConfiguration(yaml: yaml, file: "alerting.yaml", environment: environment)
        return nil
    } catch {
        return error.description
    }
}

private enum WebhookSignerSecret {
    static let value = "whsec_" + Data(repeating: 7, count: 32).base64EncodedString()
}

private let valid = """
    route:
      receiver: ops
      group_by: [service]
      group_wait: 10s
      routes:
        - matchers: ['severity="critical"']
          receiver: pager
          continue: true
        - matchers: ['team=~"db|cache"']
          receiver: db
          group_interval: 1m
        - receiver: ops
          matchers: ['team="web"']
    receivers:
      - name: ops
        webhook_configs: [{url: "http://127.0.0.1:9/ops", secret_env: HOOK_SECRET}]
      - name: pager
        fallback: ops
        webhook_configs: [{url: "http://127.0.0.1:9/pager", secret_env: HOOK_SECRET}]
      - name: db
        webhook_configs:
          - url: http://127.0.0.1:9/db
            secret_env: HOOK_SECRET
            send_resolved: false
            rate_limit: {per_second: 0.5, burst: 3}
    inhibit_rules:
      - source_matchers: ['severity="critical"']
        target_matchers: ['severity!="critical"']
        equal: [service]
    """

@Suite("Alert routing configuration")
struct AlertingConfigurationTests {
    @Test("routes match depth first: the first matching child, more with continue, else the parent")
    func routing() throws {
        let configuration = try AlertingConfiguration(yaml: valid, environment: ["HOOK_SECRET": WebhookSignerSecret.value])
        func receivers(_ labels: [String: String]) -> [String] { configuration.routes(for: labels).map(\.receiver) }
        #expect(receivers(["severity": "critical", "team": "db"]) == ["pager", "db"])
        #expect(receivers(["severity": "critical", "team": "web"]) == ["pager", "ops"])
        #expect(receivers(["severity": "low", "team": "cache"]) == ["db"])
        #expect(receivers(["severity": "low", "team": "dbx"]) == ["ops"])
        #expect(configuration.routes(for: ["severity": "critical"]).map(\.id) == [#"{}/{severity="critical"}"#])
        let db = try #require(configuration.routes(for: ["team": "db"]).first)
        #expect(db.groupBy == ["service"])
        #expect(db.groupWait == .seconds(10))
        #expect(db.groupInterval == .seconds(60))
        #expect(db.repeatInterval == .seconds(14_400))
        #expect(db.groupLabels(["service": "ledger", "team": "db"]) == ["service": "ledger"])
        let target = try #require(configuration.target(receiver: "db", name: "db/webhook/0"))
        #expect(target.sendResolved == false)
        #expect(target.rateLimit == RateLimit(perSecond: 0.5, burst: 3))
        #expect(configuration.receivers["pager"]?.fallback == "ops")
        let rule = try #require(configuration.inhibitRules.first)
        #expect(rule.inhibits(["severity": "high", "service": "a"], by: ["severity": "critical", "service": "a"]))
        #expect(!rule.inhibits(["severity": "high", "service": "a"], by: ["severity": "critical", "service": "b"]))
        #expect(!rule.inhibits(["severity": "critical", "service": "a"], by: ["severity": "critical", "service": "a"]))
    }

    @Test("the example in Deploy/ is valid once its secret file exists")
    func example() throws {
        let secret = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("secret"))
        try WebhookSignerSecret.value.write(to: secret, atomically: true, encoding: .utf8)
        let text = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("Deploy/alerting.example.yaml"), encoding: .utf8)
            .replacingOccurrences(of: ".services/keys/webhook.secret", with: secret.path)
        let configuration = try AlertingConfiguration(yaml: text)
        #expect(configuration.receivers.keys.sorted() == ["oncall", "ops"])
        #expect(configuration.routes(for: ["severity": "critical"]).map(\.receiver) == ["oncall"])
        #expect(configuration.inhibitRules.count == 1)
    }

    @Test("every mistake is refused with the file, the line, the setting and the reason")
    func errors() {
        let cases: [(String, String)] = [
            (valid.replacingOccurrences(of: "group_wait: 10s", with: "group_wait: soon"),
             "alerting.yaml:4: route.group_wait: expected a duration such as 30s, 5m, 4h or 1h30m"),
            (valid.replacingOccurrences(of: "continue: true", with: "continu: true"),
             "alerting.yaml:8: route.routes[0]: unknown setting 'continu'"),
            (valid.replacingOccurrences(of: "secret_env: HOOK_SECRET\n        send_resolved", with: "secret: whsec_abc\n        send_resolved"),
             "alerting.yaml:23: receivers[2].webhook_configs[0].secret: secrets are not read from this file: use secret_env or secret_file"),
            (valid.replacingOccurrences(of: "team=~\"db|cache\"", with: "team=~\"db(\""),
             "alerting.yaml:9: route.routes[1].matchers[0]: 'db(' is not a valid regular expression"),
            (valid.replacingOccurrences(of: "receiver: db\n", with: "receiver: dba\n"),
             "alerting.yaml:10: route.routes[1].receiver: no receiver named 'dba'"),
            (valid.replacingOccurrences(of: "fallback: ops", with: "fallback: nobody"),
             "alerting.yaml:18: receivers.pager.fallback: no receiver named 'nobody'"),
            (valid.replacingOccurrences(of: "group_interval: 1m", with: "group_interval: 1m\n      repeat_interval: 30s"),
             "repeat_interval must be at least group_interval"),
            (valid.replacingOccurrences(of: "  - name: ops\n", with: "  - name: ops\n  - name: ops\n"),
             "receiver 'ops' is defined twice"),
            (valid.replacingOccurrences(of: "  receiver: ops\n  group_by", with: "  receiver: ops\n  matchers: ['a=\"b\"']\n  group_by"),
             "the root route matches every alert; it takes no matchers"),
            ("route:\n  receiver: ops\nreceivers:\n  - name: ops\n    pagerduty_configs: [{routing_key_env: PD}]\n",
             "alerting.yaml:5: receivers[0].pagerduty_configs[0].routing_key_env: environment variable PD is not set"),
            ("route:\n  receiver: ops\nreceivers:\n  - name: ops\n    sms_configs: [{account_sid: AC1, auth_token_env: HOOK_SECRET, from: '+1555', to: '5551234'}]\n",
             "'5551234' is not an E.164 phone number"),
            ("route:\n  receiver: ops\nreceivers:\n  - name: ops\n    email_configs: [{to: ops@x.test, from: a@x.test, smarthost: mail.x.test}]\n",
             "alerting.yaml:5: receivers[0].email_configs[0].smarthost: expected host:port"),
            ("route:\n  receiver: ops\n  group_by: [alertname\n", "alerting.yaml:3: did not find expected ',' or ']' (while parsing a flow sequence)"),
        ]
        for (yaml, expected) in cases {
            let message = configurationError(yaml)
            #expect(message?.contains(expected) == true, "expected \(expected), got \(message ?? "no error")")
        }
    }

    @Test("anchors, aliases, merge keys and values over several lines are read as Alertmanager reads them")
    func anchorsAndBlockValues() throws {
        let yaml = """
            route:
              receiver: ops
              group_by: &labels [alertname, service]
              routes:
                - matchers:
                    - >-
                      alertname=~"Disk almost full|Disk
                      failing"
                  receiver: db
                  group_interval: 1m
                - matchers: [
                    'severity="critical"',
                    'team=~"db|cache"'
                  ]
                  receiver: pager
            receivers:
              - name: ops
                webhook_configs:
                  - &hook
                    url: http://127.0.0.1:9/ops
                    secret_env: HOOK_SECRET
                    rate_limit: {per_second: 0.5, burst: 3}
              - name: db
                webhook_configs:
                  - <<: *hook
                    url: http://127.0.0.1:9/db
                    send_resolved: false
              - name: pager
                fallback: ops
                webhook_configs: [*hook]
            inhibit_rules:
              - source_matchers: ['severity="critical"']
                target_matchers: ['severity!="critical"']
                equal: *labels
            """
        let configuration = try AlertingConfiguration(yaml: yaml, environment: ["HOOK_SECRET": WebhookSignerSecret.value])
        #expect(configuration.routes(for: ["alertname": "Disk failing"]).map(\.id) == [#"{}/{alertname=~"Disk almost full|Disk failing"}"#])
        #expect(configuration.routes(for: ["severity": "critical", "team": "cache"]).map(\.receiver) == ["pager"])
        #expect(configuration.route.routes[0].groupBy == ["alertname", "service"])
        func url(_ receiver: String) -> String? {
            guard case .webhook(let url, _)? = configuration.receivers[receiver]?.targets.first?.settings else { return nil }
            return url
        }
        #expect(url("ops") == "http://127.0.0.1:9/ops")
        #expect(url("db") == "http://127.0.0.1:9/db")
        #expect(url("pager") == "http://127.0.0.1:9/ops")
        let db = try #require(configuration.target(receiver: "db", name: "db/webhook/0"))
        #expect(db.sendResolved == false)
        #expect(db.rateLimit == RateLimit(perSecond: 0.5, burst: 3))
        #expect(configuration.target(receiver: "pager", name: "pager/webhook/0")?.rateLimit == RateLimit(perSecond: 0.5, burst: 3))
        #expect(configuration.inhibitRules.first?.equal == ["alertname", "service"])
    }

    @Test("an inline secret is refused wherever an alias or a merge key takes it, at the line it is written on")
    func inlineSecretThroughAlias() {
        let anchored = """
            route:
              receiver: ops
            receivers:
              - name: ops
                webhook_configs:
                  - &hook
                    url: http://127.0.0.1:9/ops
                    secret: whsec_abc
              - name: db
                webhook_configs: [*hook]
            """
        #expect(configurationError(anchored)
                == "alerting.yaml:8: receivers[0].webhook_configs[0].secret: secrets are not read from this file: use secret_env or secret_file")
        let merged = """
            route:
              receiver: ops
            receivers:
              - name: ops
                webhook_configs:
                  - &hook
                    url: http://127.0.0.1:9/ops
                    secret_env: HOOK_SECRET
              - name: db
                webhook_configs:
                  - <<: [*hook, {secret: whsec_abc}]
                    url: http://127.0.0.1:9/db
            """
        #expect(configurationError(merged)
                == "alerting.yaml:11: receivers[1].webhook_configs[0].secret: secrets are not read from this file: use secret_env or secret_file")
        let aliased = """
            route:
              receiver: ops
            receivers:
              - name: ops
                webhook_configs:
                  - url: http://127.0.0.1:9/ops
                    secret_env: &variable HOOK_SECRET
              - name: db
                webhook_configs:
                  - url: http://127.0.0.1:9/db
                    secret: *variable
            """
        #expect(configurationError(aliased)
                == "alerting.yaml:11: receivers[1].webhook_configs[0].secret: secrets are not read from this file: use secret_env or secret_file")
    }

    @Test("matchers: equality, negation, anchored regexes, a missing label as empty, quoting")
    func matchers() throws {
        #expect(try LabelMatcher(parsing: #"team="db""#).matches(["team": "db"]))
        #expect(try !LabelMatcher(parsing: #"team="db""#).matches(["team": "dbx"]))
        #expect(try LabelMatcher(parsing: #"team!="db""#).matches([:]))
        #expect(try LabelMatcher(parsing: #"team=~"d.""#).matches(["team": "db"]))
        #expect(try !LabelMatcher(parsing: #"team=~"d""#).matches(["team": "db"]))
        #expect(try LabelMatcher(parsing: #"team!~"web|api""#).matches(["team": "db"]))
        #expect(try LabelMatcher(parsing: #"team="""#).matches([:]))
        #expect(try LabelMatcher(parsing: #"name="say \"hi\"""#).value == #"say "hi""#)
        #expect(try LabelMatcher(parsing: "team=db").description == #"team="db""#)
        #expect(throws: LabelMatcherError.self) { try LabelMatcher(parsing: "9team=\"x\"") }
        #expect(throws: LabelMatcherError.self) { try LabelMatcher(parsing: "team") }
        #expect(DurationText.parse("1h30m") == .seconds(5400))
        #expect(DurationText.parse("500ms") == .milliseconds(500))
        #expect(DurationText.parse("0s") == .zero)
        #expect(DurationText.parse("5") == nil)
        #expect(DurationText.parse("5x") == nil)
        #expect(DurationText.format(.seconds(5400)) == "1h30m")
    }

    @Test("providers' retry signals are read from their own places; answers are classified")
    func answers() {
        func classify(_ channel: AlertChannel, _ status: Int, _ body: String, _ headers: [(String, String)] = []) -> AttemptResult {
            ChannelRequests.classify(channel, status: status, headers: headers.map { (name: $0.0, value: $0.1) }, body: Array(body.utf8))
        }
        #expect(classify(.discord, 429, #"{"message":"rate limited","retry_after":0.25,"global":false}"#)
                == .throttled(retryAfter: .milliseconds(250), detail: "429: rate limited"))
        #expect(classify(.telegram, 429, #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#)
                == .throttled(retryAfter: .seconds(3), detail: "429: Too Many Requests: retry after 3"))
        #expect(classify(.slack, 429, "", [("Retry-After", "7")]) == .throttled(retryAfter: .seconds(7), detail: "429: no body"))
        #expect(classify(.slack, 404, "channel_not_found") == .permanent(detail: "404: channel_not_found", httpStatus: 404))
        #expect(classify(.pagerduty, 502, "") == .retryable(detail: "502: no body", httpStatus: 502))
        #expect(classify(.webhook, 400, "") == .retryable(detail: "400: no body", httpStatus: 400))
        #expect(classify(.webhook, 410, "") == .permanent(detail: "410: the endpoint is gone", httpStatus: 410))
        #expect(classify(.pagerduty, 202, #"{"status":"success","dedup_key":"k1"}"#) == .delivered(providerID: "k1"))
        #expect(classify(.telegram, 200, #"{"ok":true,"result":{"message_id":42}}"#) == .delivered(providerID: "42"))
        #expect(classify(.sms, 201, #"{"sid":"SM123"}"#) == .delivered(providerID: "SM123"))
    }

    @Test("routes are named by their matchers, so reordering them keeps their groups; equal siblings get their position")
    func routeIDs() throws {
        func ids(_ routes: String) throws -> [String] {
            let yaml = "route:\n  receiver: ops\n  routes:\n" + routes + """
                receivers:
                  - name: ops
                    webhook_configs: [{url: "http://127.0.0.1:9/ops", secret_env: HOOK_SECRET}]
                """
            let configuration = try AlertingConfiguration(yaml: yaml, environment: ["HOOK_SECRET": WebhookSignerSecret.value])
            return configuration.route.routes.map(\.id)
        }
        let web = "    - matchers: ['team=\"web\"', 'env=\"prod\"']\n"
        let db = "    - matchers: ['team=\"db\"']\n      routes:\n        - matchers: ['severity=\"critical\"']\n"
        let forward = try ids(web + db)
        #expect(forward == [#"{}/{env="prod",team="web"}"#, #"{}/{team="db"}"#])
        #expect(Set(try ids(db + web)) == Set(forward))
        #expect(try ids(web + web) == [#"{}/{env="prod",team="web"}"#, #"{}/{env="prod",team="web"}#1"#])
    }

    @Test("an email has Date, From, To, Subject, a Message-ID per delivery, and text and HTML parts")
    func email() throws {
        let settings = EmailSettings(host: "mail.test", port: 587, security: .starttls, username: nil, password: nil,
                                     from: "alerts@mingus.test", to: ["ops@mingus.test"], hello: "localhost", caFile: nil)
        let alert = NotifiedAlert(id: UUID(), status: .firing, severity: .critical, title: "Disk <full> ünïcode", description: "d",
                                  labels: ["service": "db"], source: "m", startsAt: Date(), endsAt: nil)
        let notification = AlertNotification(status: .firing, receiver: "r", groupLabels: [:], groupKey: "k", alerts: [alert])
        let delivery = UUID()
        let message = EmailMessage.build(notification, settings: settings, delivery: delivery,
                                         now: Date(timeIntervalSince1970: 1_795_000_000))
        #expect(message.contains("Date: Wed, 18 Nov 2026 11:06:40 +0000\r\n"))
        #expect(message.contains("\r\nFrom: alerts@mingus.test\r\n"))
        #expect(message.contains("\r\nMessage-ID: <\(delivery.uuidString.lowercased())@mingus.test>\r\n"))
        #expect(message.contains("Subject: =?UTF-8?B?"))
        #expect(message.contains("Content-Type: text/plain; charset=utf-8"))
        #expect(message.contains("Content-Type: text/html; charset=utf-8"))
        #expect(!message.contains("\n\n"))
        #expect(EmailMessage.html(notification).contains("Disk &lt;full&gt;"))
    }
}
