import Foundation
import MingusSecurity
import MingusPayments
import MingusGateway
import MingusPayments
import MingusPostgres
import TestSupport
import Testing
import Glibc

/// A valid payment request body; `changes` replace or (with NSNull) remove fields.
func paymentBody(card: String = "4242424242424242", _ changes: [String: Any] = [:]) -> [String: Any] {
    var body: [String: Any] = [
        "card_number": card, "expiry_month": 12, "expiry_year": Calendar.current.component(.year, from: Date()) + 2,
        "cvv": card.hasPrefix("37") || card.hasPrefix("34") ? "1234" : "123", "cardholder_name": "Ada Lovelace",
        "amount": 1999, "currency": "EUR", "merchant_id": "shop-42",
    ]
    for (name, value) in changes {
        if value is NSNull { body[name] = nil } else { body[name] = value }
    }
    return body
}

func json(_ object: [String: Any]) throws -> Data {
    try JSONSerialization.data(withJSONObject: object)
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
}

extension Cluster {
    func post(_ path: String, key: String, body: Data, headers extra: [String: String] = [:]) async throws
        -> (status: Int, headers: [AnyHashable: Any], body: String) {
        var headers = ["Authorization": "Bearer \(key)", "Content-Type": "application/json"]
        headers.merge(extra) { _, new in new }
        return try await httpRequest(base + path, method: "POST", headers: headers, body: body)
    }
}

@Suite("Payment and record API: validation, roles, broker outages")
struct PaymentAPITests {
    @Test("every validation rule answers 400 or 422 naming the field and the rule, never echoing the card")
    func validation() async throws {
        let gateway = try await Gateway.start(environment: ["MINGUS_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"], waitUntilReady: false)
        let (_, key) = try await gateway.key([.paymentsWrite])
        let year = Calendar.current.component(.year, from: Date())
        let cases: [(changes: [String: Any], status: Int, field: String, rule: String)] = [
            (["card_number": NSNull()], 400, "card_number", "required"),
            (["amount": "12"], 400, "amount", "type"),
            (["amount": 12.5], 400, "amount", "type"),
            (["expiry_month": "12"], 400, "expiry_month", "type"),
            (["metadata": "x"], 400, "metadata", "type"),
            (["surprise": 1], 400, "surprise", "unknown_field"),
            (["card_number": "4242424242424241"], 422, "card_number", "luhn"),
            (["card_number": "4242 4242 4242 424x"], 422, "card_number", "characters"),
            (["card_number": "4242  4242 4242 4242"], 422, "card_number", "characters"),
            (["card_number": "42424242424"], 422, "card_number", "length"),
            (["card_number": "37828224631000"], 422, "card_number", "length_for_brand"),
            (["card_number": "9999999999999995"], 422, "card_number", "brand"),
            (["expiry_month": 13], 422, "expiry_month", "range"),
            (["expiry_year": 1999], 422, "expiry_year", "range"),
            (["expiry_year": year - 1], 422, "expiry_year", "expired"),
            (["cvv": "12"], 422, "cvv", "format"),
            (["cardholder_name": "R2-D2 <script>"], 422, "cardholder_name", "characters"),
            (["currency": "XXQ"], 422, "currency", "unknown"),
            (["amount": 0], 422, "amount", "positive"),
            (["amount": -5], 422, "amount", "positive"),
            (["amount": 1_000_000_000_001], 422, "amount", "maximum"),
            (["merchant_id": "shop 42"], 422, "merchant_id", "format"),
            (["merchant_id": String(repeating: "m", count: 65)], 422, "merchant_id", "format"),
            (["metadata": Dictionary(uniqueKeysWithValues: (0..<51).map { ("k\($0)", "v") })], 422, "metadata", "max_keys"),
            (["metadata": ["order": 7]], 422, "metadata", "type"),
            (["callback_url": "ftp://example.com/hook"], 422, "callback_url", "format"),
        ]
        for (changes, status, field, rule) in cases {
            let body = paymentBody(changes)
            let response = try await gateway.post("/api/financial/payment/process", key: key, body: try json(body))
            #expect(response.status == status, "\(changes): \(response.body)")
            let error = try errorBody(response.body)
            #expect(error["field"] == field && error["rule"] == rule, "\(changes): \(response.body)")
            #expect(!response.body.contains(body["card_number"] as? String ?? "-"), "\(changes)")
        }
        let notJSON = try await gateway.post("/api/financial/payment/process", key: key, body: Data("{\"card_number\": ".utf8))
        #expect(notJSON.status == 400)
        #expect(try errorBody(notJSON.body)["code"] == "invalid_json")
        let array = try await gateway.post("/api/financial/payment/process", key: key, body: Data("[1]".utf8))
        #expect(array.status == 400)
        let text = try await gateway.post("/api/financial/payment/process", key: key, body: try json(paymentBody()),
                                          headers: ["Content-Type": "text/plain"])
        #expect(text.status == 415)
        var large = paymentBody()
        large["metadata"] = ["note": String(repeating: "x", count: 20_000)]
        let tooLarge = try await gateway.post("/api/financial/payment/process", key: key, body: try json(large))
        #expect(tooLarge.status == 413, "\(tooLarge.body)")
        #expect(try errorBody(tooLarge.body)["code"] == "payload_too_large")
        let badKey = try await gateway.post("/api/financial/payment/process", key: key, body: try json(paymentBody()),
                                            headers: ["Idempotency-Key": String(repeating: "k", count: 256)])
        #expect(badKey.status == 400)
        #expect(try errorBody(badKey.body)["field"] == "Idempotency-Key")

        let (_, records) = try await gateway.key([.recordsWrite])
        let recordCases: [([String: Any], Int, String, String)] = [
            (["user_id": "u1", "record_type": "horoscope", "classification": "internal", "content": [:] as [String: Any]], 422, "record_type", "enum"),
            (["user_id": "u1", "record_type": "statement", "classification": "secret", "content": [:] as [String: Any]], 422, "classification", "enum"),
            (["user_id": "u 1", "record_type": "statement", "classification": "internal", "content": [:] as [String: Any]], 422, "user_id", "format"),
            (["user_id": "u1", "record_type": "statement", "classification": "internal", "content": "text"], 400, "content", "type"),
            (["user_id": "u1", "record_type": "statement", "classification": "internal"], 400, "content", "required"),
        ]
        for (body, status, field, rule) in recordCases {
            let response = try await gateway.post("/api/financial/records/store", key: records, body: try json(body))
            #expect(response.status == status, "\(body): \(response.body)")
            let error = try errorBody(response.body)
            #expect(error["field"] == field && error["rule"] == rule, "\(body): \(response.body)")
        }
        #expect(try await paymentRows(gateway) == 0)
        try await gateway.stopCleanly()
    }

    @Test("each route needs its role: 401 without a key, 403 naming the missing role")
    func roles() async throws {
        let gateway = try await Gateway.start(environment: ["MINGUS_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"], waitUntilReady: false)
        let routes: [(method: String, path: String, role: Role)] = [
            ("POST", "/api/financial/payment/process", .paymentsWrite),
            ("GET", "/api/financial/payment/\(UUID().uuidString.lowercased())", .paymentsRead),
            ("POST", "/api/financial/records/store", .recordsWrite),
            ("GET", "/api/financial/records/user/u1", .recordsRead),
            ("GET", "/api/financial/audit", .auditRead),
        ]
        for route in routes {
            let anonymous = try await httpRequest(gateway.base + route.path, method: route.method, body: route.method == "POST" ? Data("{}".utf8) : nil)
            #expect(anonymous.status == 401, "\(route)")
            for other in GatewayApplication.roles where other != route.role && other != .admin {
                let (_, key) = try await gateway.key([other])
                let response = try await httpRequest(gateway.base + route.path, method: route.method,
                                                     headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
                                                     body: route.method == "POST" ? Data("{}".utf8) : nil)
                #expect(response.status == 403, "\(route) with \(other)")
                #expect(try errorBody(response.body)["message"]?.contains(route.role.rawValue) == true)
            }
            let (_, holder) = try await gateway.key([route.role])
            let allowed = try await httpRequest(gateway.base + route.path, method: route.method,
                                                headers: ["Authorization": "Bearer \(holder)", "Content-Type": "application/json"],
                                                body: route.method == "POST" ? Data("{}".utf8) : nil)
            #expect(allowed.status != 401 && allowed.status != 403, "\(route): \(allowed.body)")
        }
        try await gateway.stopCleanly()
    }

    @Test("with the broker unreachable a valid payment gets 503 with Retry-After, and nothing is stored")
    func brokerUnavailable() async throws {
        let gateway = try await Gateway.start(environment: ["MINGUS_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"], waitUntilReady: false)
        let (_, key) = try await gateway.key([.paymentsWrite])
        let response = try await gateway.post("/api/financial/payment/process", key: key, body: try json(paymentBody()),
                                              headers: ["Idempotency-Key": "outage-1"])
        #expect(response.status == 503, "\(response.body)")
        #expect(response.headers.first { ($0.key as? String)?.lowercased() == "retry-after" }.map { "\($0.value)" } == "5")
        #expect(try errorBody(response.body)["code"] == "unavailable")
        #expect(try await paymentRows(gateway) == 0)
        let pending = try await gateway.database.query(
            "SELECT count(*) FROM gateway_idempotency_keys WHERE idempotency_key = 'outage-1' AND (locked_until IS NULL OR response_status IS NOT NULL)")
        #expect(try pending[0].decode(Int.self, at: 0) == 1, "the key is released for a retry, with no answer stored")
        try await gateway.stopCleanly()
    }

    @Test("a gateway purges idempotency keys past their 24 hours when it starts, and keeps the others")
    func purgesExpiredIdempotencyKeys() async throws {
        let gateway = try await Gateway.start()
        try await gateway.database.execute("""
            INSERT INTO gateway_idempotency_keys (api_key_id, idempotency_key, request_hash, resource_id, expires_at)
            SELECT 'purge-test', 'key-' || n, '\\x00'::bytea, gen_random_uuid(),
                   CASE WHEN n <= 3 THEN now() - interval '1 minute' ELSE now() + interval '1 hour' END
            FROM generate_series(1, 5) AS n
            """)
        // A second gateway on the same database purges as it starts. The first one's purge at
        // start may itself run after the insert, so either gateway may be the one that purges.
        let second = try WorkerProcess("mingus-gateway", environment: gateway.environment)
        // The purge is logged once it has committed.
        let purged = try await eventually {
            second.output.contains("purged expired idempotency keys")
                || gateway.gateway.output.contains("purged expired idempotency keys")
        }
        #expect(purged, "\(gateway.output)\n[second gateway]\n\(second.output.suffix(2000))")
        let kept = try await gateway.database.query(
            "SELECT idempotency_key FROM gateway_idempotency_keys ORDER BY idempotency_key").map { try $0.decode(String.self, at: 0) }
        #expect(kept == ["key-4", "key-5"])
        second.signal(SIGTERM)
        #expect(try await second.wait(timeout: .seconds(30)) == 0)
        try await gateway.stopCleanly()
    }
}

func paymentRows(_ cluster: Cluster) async throws -> Int {
    try await cluster.database.query("SELECT count(*) FROM payment_data")[0].decode(Int.self, at: 0)
}
