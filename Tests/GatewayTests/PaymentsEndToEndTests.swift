import Foundation
import Logging
import MingusAMQP
import MingusSecurity
import MingusGateway
import MingusPayments
import MingusPostgres
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An RFC 3339 timestamp as the API writes it (with fractional seconds).
func parseTimestamp(_ text: String) -> Date? {
    try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}

extension Cluster {
    /// Posts a payment; returns the transaction id of a 202.
    func pay(_ body: [String: Any], key: String, headers: [String: String] = [:]) async throws -> String {
        let response = try await post("/api/financial/payment/process", key: key, body: try json(body), headers: headers)
        #expect(response.status == 202, "\(response.body)")
        return try #require(try jsonObject(response.body)["transaction_id"] as? String)
    }

    func payment(_ id: String, key: String) async throws -> [String: Any] {
        let response = try await httpRequest(base + "/api/financial/payment/\(id)", headers: ["Authorization": "Bearer \(key)"])
        #expect(response.status == 200, "\(response.body)")
        return try jsonObject(response.body)
    }

    /// The payment once it is no longer pending.
    func decided(_ id: String, key: String, timeout: Duration = .seconds(60)) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        let done = try await eventually(timeout: timeout) {
            last = try await payment(id, key: key)
            return last["status"] as? String != "pending"
        }
        #expect(done, "payment \(id) still pending\n\(output)")
        return last
    }
}

/// The whole path: gateway → RabbitMQ → payments worker → PostgreSQL. Serialized: the suites
/// share the `mingus.payments` queue, so only one cluster with payments workers runs at a time.
@Suite("Payments end to end", .serialized)
struct PaymentsEndToEndTests {
    @Test("a payment is authorized, tokenized and masked; the number is stored only as ciphertext; a known card keeps its token")
    func authorized() async throws {
        let cluster = try await Cluster.start(workers: 1)
        let (name, key) = try await cluster.key([.paymentsWrite, .paymentsRead])
        let response = try await cluster.post("/api/financial/payment/process", key: key,
                                              body: try json(paymentBody(["metadata": ["order": "A-1"]])))
        #expect(response.status == 202, "\(response.body)")
        let answer = try jsonObject(response.body)
        let id = try #require(answer["transaction_id"] as? String)
        #expect(answer["status"] as? String == "pending")
        #expect(answer["status_url"] as? String == "/api/financial/payment/\(id)")

        let payment = try await cluster.decided(id, key: key)
        #expect(payment["status"] as? String == "authorized", "\(payment)")
        #expect(payment["card_type"] as? String == "visa")
        #expect(payment["masked_pan"] as? String == "************4242")
        #expect(payment["amount"] as? Int == 1999 && payment["currency"] as? String == "EUR")
        #expect((payment["authorization_code"] as? String)?.count == 6)
        let token = try #require(payment["token"] as? String)
        #expect(token.hasPrefix("tok_"))
        let retention = try #require((payment["retention_until"] as? String).flatMap(parseTimestamp))
        #expect(retention.timeIntervalSinceNow > 6.9 * 365 * 86400 && retention.timeIntervalSinceNow < 7.1 * 365 * 86400)

        // The vault holds ciphertext that opens to the number only with the pan key and this token.
        let vault = try await cluster.database.query("SELECT pan_ciphertext, pan_key_version FROM card_tokens WHERE token = \(token)")
        let sealed = SealedValue(version: try vault[0].decode(Int.self, at: 1), combined: try vault[0].decode([UInt8].self, at: 0))
        let keyring = try await cluster.keyring()
        #expect(String(decoding: try keyring.open(sealed, purpose: .pan, context: "card_token:\(token)"), as: UTF8.self) == "4242424242424242")
        #expect(throws: KeyringError.self) { try keyring.open(sealed, purpose: .pan, context: "card_token:tok_other") }
        let rows = try await cluster.database.query("""
            SELECT (SELECT string_agg(row_to_json(p)::text, '') FROM payment_data p)
                || (SELECT string_agg(row_to_json(t)::text, '') FROM card_tokens t)
            """)
        #expect(try rows[0].decode(String.self, at: 0).contains("4242424242424242") == false)

        // The same card, typed with separators, finds its token again.
        let again = try await cluster.decided(try await cluster.pay(paymentBody(card: "4242 4242 4242 4242"), key: key), key: key)
        #expect(again["token"] as? String == token)
        let other = try await cluster.decided(try await cluster.pay(paymentBody(card: "5555555555554444"), key: key), key: key)
        #expect(other["token"] as? String != token && other["card_type"] as? String == "mastercard")

        let audit = try await cluster.database.query("""
            SELECT actor, outcome, details->>'masked_pan' FROM audit_events WHERE action = 'payment.authorized' AND resource = \("payment/\(id)")
            """)
        #expect(audit.count == 1)
        #expect(try audit.first?.decode(String.self, at: 0) == "apikey:\(name)")
        #expect(try audit.first?.decode(String.self, at: 2) == "************4242")
        try await cluster.stopCleanly()
    }

    @Test("sandbox cards: declines carry their code, a twice-unavailable processor is retried to success, an always-unavailable one fails after the last attempt")
    func sandboxOutcomes() async throws {
        let cluster = try await Cluster.start(workers: 1, environment: ["MINGUS_MAX_ATTEMPTS": "3"])
        let (_, key) = try await cluster.key([.paymentsWrite, .paymentsRead])
        let declined = try await cluster.pay(paymentBody(card: SandboxProcessor.declined), key: key)
        let funds = try await cluster.pay(paymentBody(card: SandboxProcessor.insufficientFunds), key: key)
        let flaky = try await cluster.pay(paymentBody(card: SandboxProcessor.unavailableTwice), key: key)
        let down = try await cluster.pay(paymentBody(card: SandboxProcessor.alwaysUnavailable), key: key)

        let first = try await cluster.decided(declined, key: key)
        #expect(first["status"] as? String == "declined" && first["decline_code"] as? String == "card_declined", "\(first)")
        #expect(first["token"] is String, "a declined card is still vaulted, so the masked form and token are known")
        let second = try await cluster.decided(funds, key: key)
        #expect(second["status"] as? String == "declined" && second["decline_code"] as? String == "insufficient_funds")
        let third = try await cluster.decided(flaky, key: key)
        #expect(third["status"] as? String == "authorized", "\(third)")
        let fourth = try await cluster.decided(down, key: key)
        #expect(fourth["status"] as? String == "failed", "\(fourth)")
        #expect((fourth["failure_reason"] as? String)?.contains("after 3 attempts") == true, "\(fourth)")
        try await cluster.stopCleanly()
    }

    @Test("Idempotency-Key: the same request gets the first answer again, another request 422, another API key its own payment")
    func idempotency() async throws {
        let cluster = try await Cluster.start(workers: 1)
        let (_, key) = try await cluster.key([.paymentsWrite, .paymentsRead])
        let (_, otherKey) = try await cluster.key([.paymentsWrite])
        let body = try json(paymentBody())
        let first = try await cluster.post("/api/financial/payment/process", key: key, body: body, headers: ["Idempotency-Key": "order-7"])
        let replay = try await cluster.post("/api/financial/payment/process", key: key, body: body, headers: ["Idempotency-Key": "order-7"])
        #expect(first.status == 202 && replay.status == 202)
        #expect(replay.body == first.body)
        #expect(replay.headers.contains { ($0.key as? String)?.lowercased() == "idempotent-replayed" && "\($0.value)" == "true" })
        let conflict = try await cluster.post("/api/financial/payment/process", key: key, body: try json(paymentBody(["amount": 2000])),
                                              headers: ["Idempotency-Key": "order-7"])
        #expect(conflict.status == 422)
        #expect(try errorBody(conflict.body)["code"] == "idempotency_key_reuse")
        let separate = try await cluster.post("/api/financial/payment/process", key: otherKey, body: body, headers: ["Idempotency-Key": "order-7"])
        #expect(separate.status == 202)
        #expect(try jsonObject(separate.body)["transaction_id"] as? String != (try jsonObject(first.body))["transaction_id"] as? String)

        let id = try #require(try jsonObject(first.body)["transaction_id"] as? String)
        #expect(try await cluster.decided(id, key: key)["status"] as? String == "authorized")
        let settled = try await eventually {
            let pending = try await cluster.database.query("SELECT count(*) FROM payment_data WHERE status = 'pending'")
            return try await paymentRows(cluster) == 2 && (try pending[0].decode(Int.self, at: 0)) == 0
        }
        #expect(settled, "two payments, both decided")

        // After its 24 hours a key starts afresh: another body is a new payment, not a conflict.
        try await cluster.database.execute(
            "UPDATE gateway_idempotency_keys SET expires_at = now() - interval '1 second' WHERE idempotency_key = 'order-7'")
        let renewed = try await cluster.post("/api/financial/payment/process", key: key, body: try json(paymentBody(["amount": 2000])),
                                             headers: ["Idempotency-Key": "order-7"])
        #expect(renewed.status == 202, "\(renewed.body)")
        let renewedID = try #require(try jsonObject(renewed.body)["transaction_id"] as? String)
        #expect(renewedID != id)
        #expect(try await cluster.decided(renewedID, key: key)["amount"] as? Int == 2000)
        try await cluster.stopCleanly()
    }

    @Test("a payment with callback_url sends a Standard Webhooks request that an independent verifier accepts, retried after a 503")
    func webhook() async throws {
        let cluster = try await Cluster.start(workers: 1)
        let receiver = try WorkerProcess(
            "python", arguments: [TestEnvironment.fixturesDirectory.appendingPathComponent("webhook_receiver.py").path],
            environment: ["WEBHOOK_SECRET": cluster.webhookSecret, "FAIL_FIRST": "1"],
            bin: TestEnvironment.pythonBin)
        var port: Int?
        _ = try await eventually {
            port = receiver.output.split(separator: "\n").first { $0.hasPrefix("listening ") }.flatMap { Int($0.dropFirst(10)) }
            return port != nil
        }
        let receiverPort = try #require(port, "\(receiver.output)")
        let (_, key) = try await cluster.key([.paymentsWrite, .paymentsRead])
        let id = try await cluster.pay(paymentBody(["callback_url": "http://127.0.0.1:\(receiverPort)/hooks/payments"]), key: key)

        var lines: [[String: Any]] = []
        let delivered = try await eventually(timeout: .seconds(60)) {
            lines = receiver.output.split(separator: "\n").dropFirst().compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            return lines.contains { $0["verified"] as? Bool == true }
        }
        #expect(delivered, "\(receiver.output)\n\(cluster.output)")
        #expect(lines.first?["answer"] as? Int == 503, "the first attempt was refused")
        let verified = try #require(lines.first { $0["verified"] as? Bool == true })
        #expect(lines.allSatisfy { $0["verified"] as? Bool != false }, "no request failed verification: \(lines)")
        #expect(verified["path"] as? String == "/hooks/payments")
        let ids = Set(lines.compactMap { ($0["headers"] as? [String: String])?["webhook-id"] })
        #expect(ids.count == 1, "retries keep the webhook-id: \(ids)")
        let payload = try #require(verified["payload"] as? [String: Any])
        #expect(payload["type"] as? String == "payment.authorized")
        let data = try #require(payload["data"] as? [String: Any])
        #expect(data["transaction_id"] as? String == id && data["masked_pan"] as? String == "************4242")
        #expect(!receiver.output.contains("4242424242424242"))
        receiver.signal(SIGTERM)
        #expect(try await receiver.wait(timeout: .seconds(10)) != nil, "the receiver stops on SIGTERM")
        try await cluster.stopCleanly()
    }

    @Test("records are stored encrypted with their type's retention and standard, listed per user with paging")
    func records() async throws {
        let cluster = try await Cluster.start(workers: 1)
        let (_, key) = try await cluster.key([.recordsWrite, .recordsRead])
        let user = TestEnvironment.uniqueName("user")
        let marker = "statement-marker-\(UUID().uuidString)"
        let bodies: [[String: Any]] = [
            ["user_id": user, "record_type": "statement", "classification": "confidential",
             "content": ["period": "2026-10", "balance": 120_000, "note": marker] as [String: Any]],
            ["user_id": user, "record_type": "health_expense", "classification": "highly_restricted",
             "content": ["provider": "clinic", "amount": 4_500] as [String: Any]],
        ]
        var ids: [String] = []
        for body in bodies {
            let response = try await cluster.post("/api/financial/records/store", key: key, body: try json(body))
            #expect(response.status == 202, "\(response.body)")
            ids.append(try #require(try jsonObject(response.body)["record_id"] as? String))
        }
        var page: [String: Any] = [:]
        #expect(try await eventually {
            let response = try await httpRequest(cluster.base + "/api/financial/records/user/\(user)?limit=1", headers: ["Authorization": "Bearer \(key)"])
            page = try jsonObject(response.body)
            return (try await cluster.database.query("SELECT count(*) FROM financial_records")[0].decode(Int.self, at: 0)) == 2
        }, "\(cluster.output)")
        let response = try await httpRequest(cluster.base + "/api/financial/records/user/\(user)?limit=1", headers: ["Authorization": "Bearer \(key)"])
        page = try jsonObject(response.body)
        let first = try #require((page["records"] as? [[String: Any]])?.first)
        let cursor = try #require(page["next_cursor"] as? String)
        let second = try jsonObject(try await httpRequest(cluster.base + "/api/financial/records/user/\(user)?limit=1&cursor=\(cursor)",
                                                          headers: ["Authorization": "Bearer \(key)"]).body)
        let rest = try #require(second["records"] as? [[String: Any]])
        #expect(rest.count == 1 && second["next_cursor"] is NSNull)
        let all = [first] + rest
        let statement = try #require(all.first { $0["record_type"] as? String == "statement" })
        #expect((statement["content"] as? [String: Any])?["note"] as? String == marker)
        #expect(statement["compliance_standard"] as? String == "SOX" && statement["classification"] as? String == "confidential")
        let health = try #require(all.first { $0["record_type"] as? String == "health_expense" })
        #expect(health["compliance_standard"] as? String == "HIPAA" && (health["content"] as? [String: Any])?["amount"] as? Int == 4_500)
        let retention = try #require((health["retention_until"] as? String).flatMap(parseTimestamp))
        #expect(abs(retention.timeIntervalSinceNow - 6 * 365.25 * 86400) < 3 * 86400)
        let stored = try await cluster.database.query("SELECT string_agg(row_to_json(r)::text, '') FROM financial_records r")
        #expect(try stored[0].decode(String.self, at: 0).contains(marker) == false, "content is encrypted at rest")
        try await cluster.stopCleanly()
    }

    @Test("after keys rotate, mingusctl keys rewrap moves vault and records to the new versions; tokens and contents survive")
    func rotationAndRewrap() async throws {
        let cluster = try await Cluster.start(workers: 1)
        let (_, key) = try await cluster.key([.paymentsWrite, .paymentsRead, .recordsWrite, .recordsRead])
        let cards = ["4242424242424242", "4012888888881881", "5555555555554444", "378282246310005", "6011111111111117"]
        var tokens: [String: String] = [:]
        for card in cards {
            tokens[card] = try #require(try await cluster.decided(try await cluster.pay(paymentBody(card: card), key: key), key: key)["token"] as? String)
        }
        let user = TestEnvironment.uniqueName("user")
        for index in 0..<3 {
            let body: [String: Any] = ["user_id": user, "record_type": "tax_document", "classification": "restricted", "content": ["year": 2020 + index]]
            #expect(try await cluster.post("/api/financial/records/store", key: key, body: try json(body)).status == 202)
        }
        #expect(try await eventually { (try await cluster.database.query("SELECT count(*) FROM financial_records")[0].decode(Int.self, at: 0)) == 3 })

        for purpose in [KeyPurpose.pan, .records, .fingerprint] { try await Keyring.rotate(purpose, kek: cluster.kek, database: cluster.database) }
        for purpose in ["pan", "records"] {
            let command = try WorkerProcess("mingusctl", arguments: ["keys", "rewrap", "--purpose", purpose, "--batch-size", "2"],
                                            environment: cluster.environment)
            #expect(try await command.wait(timeout: .seconds(60)) == 0, "\(command.output)")
        }
        let moved = try await eventually(timeout: .seconds(60)) {
            let row = try await cluster.database.query("""
                SELECT (SELECT count(*) FROM card_tokens WHERE pan_key_version = 2 AND fingerprint_version = 2),
                       (SELECT count(*) FROM financial_records WHERE content_key_version = 2)
                """)[0]
            return try row.decode(Int.self, at: 0) == cards.count && row.decode(Int.self, at: 1) == 3
        }
        #expect(moved, "\(cluster.output)")
        let page = try jsonObject(try await httpRequest(cluster.base + "/api/financial/records/user/\(user)", headers: ["Authorization": "Bearer \(key)"]).body)
        let years = (page["records"] as? [[String: Any]] ?? []).compactMap { ($0["content"] as? [String: Any])?["year"] as? Int }
        #expect(Set(years) == [2020, 2021, 2022])
        #expect((page["records"] as? [[String: Any]] ?? []).allSatisfy { $0["key_version"] as? Int == 2 })
        for card in cards.prefix(2) {
            let again = try await cluster.decided(try await cluster.pay(paymentBody(card: card), key: key), key: key)
            #expect(again["token"] as? String == tokens[card], "the rewrapped fingerprint still finds the token")
        }
        let audit = try await cluster.database.query("SELECT count(*) FROM audit_events WHERE action = 'keys.rewrap'")
        #expect(try audit[0].decode(Int.self, at: 0) >= 4, "batches of 2 over 5 cards and 3 records")
        try await cluster.stopCleanly()
    }
}


extension PaymentsEndToEndTests {
    @Test("leak test: after 200 payments no card number is in any PostgreSQL or RabbitMQ file (after a checkpoint) or any process log; probes written to each server are found")
    func noCardNumberAtRest() async throws {
        let cluster = try await Cluster.start(workers: 2, environment: ["MINGUS_LOG_LEVEL": "debug"])
        let (_, key) = try await cluster.key([.paymentsWrite, .paymentsRead])
        let numbers = randomCardNumbers(200)
        #expect(numbers.allSatisfy { (try? PAN($0)) != nil })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, number) in numbers.enumerated() {
                // Typed as people type them: plain, grouped by spaces, grouped by hyphens.
                let groups = stride(from: 0, to: 16, by: 4).map { String(Array(number)[$0..<$0 + 4]) }
                let typed = [number, groups.joined(separator: " "), groups.joined(separator: "-")][index % 3]
                group.addTask {
                    _ = try await cluster.pay(paymentBody(card: typed), key: key)
                }
                if index % 16 == 15 { try await group.waitForAll() }
            }
            try await group.waitForAll()
        }
        let decided = try await eventually(timeout: .seconds(120)) {
            try await cluster.database.query("SELECT count(*) FROM payment_data WHERE status = 'authorized'")[0].decode(Int.self, at: 0) == 200
        }
        #expect(decided, "\(cluster.output)")
        // Probe numbers written in clear on purpose show that the scan sees what reaches each
        // server's disk: one in a table (then a checkpoint), one in a message of a scratch
        // quorum queue (written to the broker's log before the publish is confirmed).
        let probes = randomCardNumbers(2)
        let (databaseProbe, brokerProbe) = (probes[0], probes[1])
        try await cluster.database.execute("CREATE TABLE leak_probe (value text)")
        try await cluster.database.execute("INSERT INTO leak_probe VALUES (\(databaseProbe))")
        try await cluster.database.execute("CHECKPOINT")
        let broker = try await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL), logger: Logger(label: "test"))
        let scratch = TestEnvironment.uniqueName("leak_probe")
        try await broker.declare(AMQPTopology(queues: [.quorum(scratch)]))
        try await broker.publish(AMQPMessage(body: Array("leak probe \(brokerProbe)".utf8)), exchange: "", routingKey: scratch)

        let postgres = TestEnvironment.servicesDirectory.appendingPathComponent("postgres")
        let rabbitmq = TestEnvironment.servicesDirectory.appendingPathComponent("rabbitmq")
        let scanned = Result { try DigitScanner(numbers + probes).scan(folders: [postgres, rabbitmq]) }
        try await broker.deleteQueue(scratch)
        await broker.close()
        let dataHits = try scanned.get()
        func found(_ probe: String, under folder: URL) -> Bool {
            let prefix = folder.resolvingSymlinksInPath().path + "/"
            return dataHits.contains { $0.file.hasPrefix(prefix) && $0.found.contains(probe) }
        }
        #expect(found(databaseProbe, under: postgres), "the probe written to PostgreSQL is found in \(postgres.path)")
        #expect(found(brokerProbe, under: rabbitmq), "the probe published to RabbitMQ is found in \(rabbitmq.path)")
        let leaks = dataHits.filter { !$0.found.subtracting(probes).isEmpty }
        #expect(leaks.isEmpty, "card numbers at rest: \(leaks.map(\.file))")
        let scanner = DigitScanner(numbers)
        let processes = [cluster.gateway] + cluster.workers
        try await cluster.stopCleanly()
        let logHits = try scanner.scan(folders: [], files: processes.map(\.logFile))
        #expect(logHits.isEmpty, "card numbers in logs: \(logHits.map(\.file))")
        // The scanner itself finds a number written in any of the three forms.
        let sample = "x" + numbers[0].prefix(8) + " " + numbers[0].dropFirst(8) + "y"
        #expect(Data(sample.utf8).withUnsafeBytes { scanner.scan($0) } == [numbers[0]])
        #expect(processes.contains { $0.output.contains("payment decided") }, "the scanned logs are the workers' real logs")
    }
}
