public import Foundation
import MingusRuntime
#if canImport(Glibc)
import Glibc
#endif

/// Local stand-ins for every provider: the HTTP contract server and a real SMTP server (STARTTLS
/// with AUTH), both Python programs under `Tests/Fixtures`, started for one test.
public final class ProviderSinks: @unchecked Sendable {
    // @unchecked: every property is set once in init.
    public let contracts: WorkerProcess
    public let smtp: WorkerProcess
    public let contractsBase: String
    public let smtpPort: Int
    public let certificates: URL
    public let secrets: [String: String]

    static let python = TestEnvironment.pythonBin

    public init() async throws {
        let webhookSecret = WebhookSigner.makeSecret()
        secrets = [
            "WEBHOOK_SECRET": webhookSecret, "TWILIO_ACCOUNT_SID": "AC" + String(repeating: "a1", count: 16),
            "TWILIO_AUTH_TOKEN": "twilio-token", "PAGERDUTY_ROUTING_KEY": String(repeating: "R0", count: 16),
            "OPSGENIE_API_KEY": "genie-key", "TELEGRAM_BOT_TOKEN": "123456:ABC-def", "SLACK_PATH": "/services/T000/B000/XXXX",
            "DISCORD_PATH": "/api/webhooks/123/tok", "TEAMS_PATH": "/workflows/abc/triggers/manual/paths/invoke",
            "TEAMS_SIG": "teams-signature", "WEBHOOK_PATH": "/hooks/mingus",
            "SMTP_USER": "alerts@mingus.test", "SMTP_PASSWORD": "smtp-test-password",
        ]
        certificates = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("smtp-certs"))
        let fixtures = TestEnvironment.fixturesDirectory
        contracts = try WorkerProcess("python", arguments: [fixtures.appendingPathComponent("provider_contracts.py").path],
                                      environment: secrets, bin: Self.python)
        smtp = try WorkerProcess("python", arguments: [fixtures.appendingPathComponent("smtp_server.py").path],
                                 environment: secrets.merging(["SMTP_MODE": "starttls", "SMTP_CERT_DIR": certificates.path]) { _, new in new },
                                 bin: Self.python)
        guard let contractsPort = try await listeningPort(contracts), let smtpPort = try await listeningPort(smtp) else {
            throw WorkerProcessError(message: "sinks did not start: \(contracts.output) \(smtp.output)")
        }
        contractsBase = "http://127.0.0.1:\(contractsPort)"
        self.smtpPort = smtpPort
    }

    /// The environment the alerts worker reads its secrets from.
    public var workerEnvironment: [String: String] {
        [
            "ALERT_SLACK_URL": contractsBase + secrets["SLACK_PATH"]!,
            "ALERT_DISCORD_URL": contractsBase + secrets["DISCORD_PATH"]!,
            "ALERT_TEAMS_URL": contractsBase + secrets["TEAMS_PATH"]! + "?api-version=1&sig=" + secrets["TEAMS_SIG"]!,
            "ALERT_WEBHOOK_SECRET": secrets["WEBHOOK_SECRET"]!, "ALERT_TWILIO_TOKEN": secrets["TWILIO_AUTH_TOKEN"]!,
            "ALERT_PAGERDUTY_KEY": secrets["PAGERDUTY_ROUTING_KEY"]!, "ALERT_OPSGENIE_KEY": secrets["OPSGENIE_API_KEY"]!,
            "ALERT_TELEGRAM_TOKEN": secrets["TELEGRAM_BOT_TOKEN"]!, "ALERT_SMTP_PASSWORD": secrets["SMTP_PASSWORD"]!,
        ]
    }

    /// One target of every channel, as a receiver's YAML (indented for `receivers:` items).
    public func allTargets(timeout: String = "10s", unlimited: Bool = true) -> String {
        let limit = unlimited ? "\n        rate_limit: {per_second: 1000, burst: 1000}" : ""
        return """
            email_configs:
              - to: [ops@mingus.test]
                from: alerts@mingus.test
                smarthost: 127.0.0.1:\(smtpPort)
                tls: starttls
                auth_username: alerts@mingus.test
                auth_password_env: ALERT_SMTP_PASSWORD
                ca_file: \(certificates.appendingPathComponent("ca.pem").path)
                timeout: \(timeout)\(limit)
            sms_configs:
              - api_url: \(contractsBase)
                account_sid: \(secrets["TWILIO_ACCOUNT_SID"]!)
                auth_token_env: ALERT_TWILIO_TOKEN
                from: "+15005550006"
                to: "+15551234567"
                timeout: \(timeout)\(limit)
            slack_configs:
              - api_url_env: ALERT_SLACK_URL
                timeout: \(timeout)\(limit)
            discord_configs:
              - webhook_url_env: ALERT_DISCORD_URL
                timeout: \(timeout)\(limit)
            teams_configs:
              - webhook_url_env: ALERT_TEAMS_URL
                timeout: \(timeout)\(limit)
            webhook_configs:
              - url: \(contractsBase + secrets["WEBHOOK_PATH"]!)
                secret_env: ALERT_WEBHOOK_SECRET
                timeout: \(timeout)\(limit)
            pagerduty_configs:
              - url: \(contractsBase)/v2/enqueue
                routing_key_env: ALERT_PAGERDUTY_KEY
                timeout: \(timeout)\(limit)
            opsgenie_configs:
              - api_url: \(contractsBase)
                api_key_env: ALERT_OPSGENIE_KEY
                tags: [mingus, test]
                timeout: \(timeout)\(limit)
            telegram_configs:
              - api_url: \(contractsBase)
                bot_token_env: ALERT_TELEGRAM_TOKEN
                chat_id: "-100123"
                timeout: \(timeout)\(limit)
        """
    }

    public func control(_ provider: String, _ settings: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: settings.merging(["provider": provider]) { _, new in new })
        let answer = try await httpRequest(contractsBase + "/_control", method: "POST", headers: ["Content-Type": "application/json"], body: body)
        guard answer.status == 200 else { throw WorkerProcessError(message: "the contract server refused a control request: \(answer.body)") }
    }

    public func requests(_ provider: String) async throws -> [[String: Any]] {
        let answer = try await httpRequest(contractsBase + "/_requests?provider=\(provider)")
        return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [[String: Any]] ?? []
    }

    public func violations() async throws -> [String] {
        let answer = try await httpRequest(contractsBase + "/_violations")
        return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String] ?? ["unreadable: \(answer.body)"]
    }

    public func state() async throws -> [String: Any] {
        let answer = try await httpRequest(contractsBase + "/_state")
        return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any] ?? [:]
    }

    /// The mails the SMTP server accepted, as it logged them.
    public var mails: [[String: Any]] {
        smtp.output.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }.filter { $0["accepted"] as? Bool == true }
    }

    public func stop() async throws {
        for process in [contracts, smtp] {
            process.signal(SIGTERM)
            _ = try await process.wait(timeout: .seconds(10))
        }
    }
}

