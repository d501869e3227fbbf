import Foundation
import HTTPTypes
import Hummingbird
import MingusPayments
import MingusPostgres
import MingusRuntime

/// `POST /api/financial/payment/process` and `GET /api/financial/payment/{transaction_id}`.
///
/// A payment is validated, its card fields sealed with the `transit` key, and published as a
/// `payments.process` job with confirms; the answer is 202 with the transaction id. The card
/// number never leaves this process in clear, and the pending row keeps only its masked form.
struct PaymentRoutes: Sendable {
    let database: PostgresClient
    let keys: KeyringCache
    let publisher: JobPublisher
    let idempotency: IdempotencyStore

    static let bodyLimit = 16 * 1024
    static let fields: Set<String> = ["card_number", "expiry_month", "expiry_year", "cvv", "cardholder_name", "amount",
                                      "currency", "merchant_id", "metadata", "callback_url"]

    func addRoutes(to group: RouterGroup<GatewayContext>) {
        group.post("process") { request, context -> Response in
            let identity = try context.require(.paymentsWrite)
            return try await process(request, identity: identity)
        }
        group.get(":transaction_id") { _, context -> Response in
            _ = try context.require(.paymentsRead)
            return try await status(context.parameters.get("transaction_id") ?? "")
        }
    }

    /// A payment request that passed every check.
    struct ValidPayment {
        var card: TransitCard
        var pan: PAN
        var money: Money
        var merchantID: String
        var metadata: [String: String]?
        var callbackURL: String?
    }

    static func validate(_ body: JSONRequestBody) throws -> ValidPayment {
        let card = TransitCard(
            cardNumber: try body.string("card_number"), expiryMonth: Int(try body.integer("expiry_month")),
            expiryYear: Int(try body.integer("expiry_year")), cvv: try body.string("cvv"),
            cardholderName: try body.string("cardholder_name"))
        let amount = try body.integer("amount")
        let currency = try body.string("currency")
        let merchantID = try body.string("merchant_id")
        let metadata = try body.optionalObject("metadata")
        let callbackURL = try body.optionalString("callback_url")
        let pan: PAN
        do {
            pan = try card.validated().pan
        } catch {
            throw invalidField(error.field, rule: error.rule, error.description)
        }
        guard pan.brand != .unknown else {
            throw invalidField("card_number", rule: "brand", "Card number belongs to no card brand this gateway accepts")
        }
        let money: Money
        do {
            money = try Money(minorUnits: amount, currency: Currency(currency))
        } catch {
            throw invalidField(error.field, rule: error.rule, error.description)
        }
        guard isIdentifier(merchantID, length: 1...64, extra: "._-") else {
            throw invalidField("merchant_id", rule: "format", "merchant_id must be 1-64 of A-Z, a-z, 0-9, '.', '_' and '-'")
        }
        var labels: [String: String]?
        if let metadata {
            guard metadata.count <= 50 else { throw invalidField("metadata", rule: "max_keys", "metadata has more than 50 keys") }
            labels = try metadata.mapValues { value in
                guard case .string(let text) = value else {
                    throw invalidField("metadata", rule: "type", "metadata values must be strings")
                }
                guard text.unicodeScalars.count <= 500 else { throw invalidField("metadata", rule: "max_length", "a metadata value is longer than 500 characters") }
                return text
            }
            guard metadata.keys.allSatisfy({ (1...40).contains($0.unicodeScalars.count) }) else {
                throw invalidField("metadata", rule: "key_length", "metadata keys must be 1-40 characters")
            }
            // Stored as jsonb, which cannot hold U+0000.
            guard !metadata.keys.contains(where: { $0.contains("\0") }), !(labels ?? [:]).values.contains(where: { $0.contains("\0") }) else {
                throw invalidField("metadata", rule: "characters", "metadata keys and values cannot contain U+0000")
            }
        }
        if let callbackURL {
            // As sent: no IDNA or percent-encoding of what a URI cannot hold (non-ASCII, a stray '%').
            guard callbackURL.utf8.count <= 2048, let url = URL(string: callbackURL, encodingInvalidCharacters: false), ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
                  url.host?.isEmpty == false else {
                throw invalidField("callback_url", rule: "format", "callback_url must be an http or https URL of at most 2048 bytes")
            }
        }
        return ValidPayment(card: card, pan: pan, money: money, merchantID: merchantID, metadata: labels, callbackURL: callbackURL)
    }

    private func process(_ request: Request, identity: APIKeyIdentity) async throws -> Response {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.fields)
        let idempotencyKey = try IdempotencyStore.key(from: request)
        let payment = try Self.validate(body)

        var transactionID = UUID().uuidString.lowercased()
        if let idempotencyKey {
            switch try await idempotency.claim(apiKeyID: identity.id, key: idempotencyKey,
                                               requestHash: IdempotencyStore.hash(request, body: body.raw)) {
            case .replay(let status, let bytes):
                return jsonResponse(.init(code: status), bytes: bytes, headers: [HTTPField.Name("Idempotent-Replayed")!: "true"])
            case .proceed(let resourceID):
                transactionID = resourceID
            }
        }
        do {
            let keyring = try await keys.current()
            let sealed = try keyring.seal(Array(try JSONEncoder.mingus.encode(payment.card)), purpose: .transit,
                                          context: PaymentJob.transitContext(transactionID))
            let requestedAt = Date()
            let job = PaymentJob(
                transactionId: transactionID, merchantId: payment.merchantID, amount: payment.money.amount,
                currency: payment.money.currency.code, card: sealed.encoded, requestedBy: identity.actor, requestedAt: requestedAt,
                metadata: payment.metadata, callbackUrl: payment.callbackURL)
            try await publisher.publish(type: PaymentJob.type, id: transactionID, body: job, traceID: nil)

            let statusURL = "/api/financial/payment/\(transactionID)"
            let answer = Array(try JSONSerialization.data(
                withJSONObject: ["transaction_id": transactionID, "status": "pending", "status_url": statusURL],
                options: [.sortedKeys, .withoutEscapingSlashes]))
            let metadata = String(decoding: try JSONEncoder.mingus.encode(payment.metadata ?? [:]), as: UTF8.self)
            try await database.withTransaction { db in
                try await db.execute("""
                    INSERT INTO payment_data (transaction_id, merchant_id, status, amount, currency, card_brand, masked_pan,
                                              metadata, callback_url, requested_by, created_at)
                    VALUES (\(transactionID)::uuid, \(payment.merchantID), 'pending', \(payment.money.amount),
                            \(payment.money.currency.code), \(payment.pan.brand.rawValue), \(payment.pan.masked),
                            \(metadata)::jsonb, \(payment.callbackURL), \(identity.actor), \(requestedAt))
                    ON CONFLICT (transaction_id) DO NOTHING
                    """)
                if let idempotencyKey {
                    try await IdempotencyStore.complete(apiKeyID: identity.id, key: idempotencyKey, status: 202, body: answer, on: db)
                }
            }
            return jsonResponse(.accepted, bytes: answer, headers: [.location: statusURL])
        } catch {
            if let idempotencyKey { await idempotency.release(apiKeyID: identity.id, key: idempotencyKey) }
            throw error
        }
    }

    private func status(_ id: String) async throws -> Response {
        guard let uuid = UUID(uuidString: id) else {
            throw APIError(.badRequest, code: "invalid_parameter", message: "transaction_id must be a UUID", field: "transaction_id", rule: "format")
        }
        guard let row = try await database.query("""
            SELECT transaction_id::text, status, merchant_id, amount, currency, card_brand, masked_pan, card_token,
                   authorization_code, decline_code, failure_reason, created_at, updated_at, authorized_at, retention_until
            FROM payment_data WHERE transaction_id = \(uuid.uuidString.lowercased())::uuid
            """).first else {
            throw APIError(.notFound, code: "not_found", message: "no payment with this transaction_id")
        }
        func optional(_ index: Int) throws -> Any { try row.decode(String?.self, at: index) ?? NSNull() }
        func date(_ index: Int) throws -> Any { try row.decode(Date?.self, at: index).map(timestamp) ?? NSNull() }
        return try jsonResponse(.ok, [
            "transaction_id": try row.decode(String.self, at: 0),
            "status": try row.decode(String.self, at: 1),
            "merchant_id": try row.decode(String.self, at: 2),
            "amount": try row.decode(Int64.self, at: 3),
            "currency": try row.decode(String.self, at: 4),
            "card_type": try optional(5),
            "masked_pan": try optional(6),
            "token": try optional(7),
            "authorization_code": try optional(8),
            "decline_code": try optional(9),
            "failure_reason": try optional(10),
            "created_at": try date(11),
            "updated_at": try date(12),
            "authorized_at": try date(13),
            "retention_until": try date(14),
        ])
    }
}
