import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
import MingusPostgres
public import MingusRuntime
import MingusSecurity

/// `POST /api/financial/payment/process` and `GET /api/financial/payment/{transaction_id}`.
///
/// A payment is validated, its card fields sealed with the `transit` key, and published as a
/// `payments.process` job with confirms; the answer is 202 with the transaction id. The card
/// number never leaves this process in clear, and the pending row keeps only its masked form.
public struct PaymentRoutes: Sendable {
    let database: PostgresClient
    let keys: KeyringCache
    let publisher: JobPublisher
    let idempotency: IdempotencyStore
    /// Pending rows (with their idempotent answers) of concurrent requests, committed together.
    let pendingRows: GroupCommitter<PendingWrite>

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        keys = gateway.keys
        publisher = gateway.publisher
        idempotency = gateway.idempotency
        pendingRows = GroupCommitter(database: gateway.database, logger: gateway.logger) { writes, db in
            try await PaymentStore.insertPending(writes.map(\.payment), on: db)
            for write in writes {
                guard let answer = write.idempotentAnswer else { continue }
                try await IdempotencyStore.complete(apiKeyID: answer.apiKeyID, key: answer.key, status: 202, body: answer.body, on: db)
            }
        }
    }

    /// An accepted payment's pending row and, for a request with an `Idempotency-Key`, the answer kept for it.
    struct PendingWrite: Sendable {
        var payment: PendingPayment
        var idempotentAnswer: (apiKeyID: String, key: String, body: [UInt8])?
    }

    static let bodyLimit = 16 * 1024
    static let fields: Set<String> = ["card_number", "expiry_month", "expiry_year", "cvv", "cardholder_name", "amount",
                                      "currency", "merchant_id", "metadata", "callback_url"]

    /// The routes, to mount at `/api/financial/payment`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        routes.group(requiring: .paymentsWrite).post("process") { request, context in
            try await process(request, caller: try context.caller())
        }
        routes.group(requiring: .paymentsRead).get(":transaction_id") { _, context in
            APIResponse(try await status(context.parameters.get("transaction_id") ?? ""))
        }
        return routes
    }

    /// The answer to an accepted payment.
    struct Accepted: Encodable, Sendable {
        var transactionId: String
        var status = "pending"
        var statusUrl: String
    }

    /// A payment as `GET` answers it: never the card number.
    struct Payment: Encodable, Sendable {
        var transactionId: String
        var status: String
        var merchantId: String
        var amount: Int64
        var currency: String
        @Nullable var cardType: String?
        @Nullable var maskedPan: String?
        @Nullable var token: String?
        @Nullable var authorizationCode: String?
        @Nullable var declineCode: String?
        @Nullable var failureReason: String?
        @Nullable var createdAt: Date?
        @Nullable var updatedAt: Date?
        @Nullable var authorizedAt: Date?
        @Nullable var retentionUntil: Date?
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
            throw APIError.invalidField(error.field, rule: error.rule, error.description)
        }
        guard pan.brand != .unknown else {
            throw APIError.invalidField("card_number", rule: "brand", "Card number belongs to no card brand this gateway accepts")
        }
        let money: Money
        do {
            money = try Money(minorUnits: amount, currency: Currency(currency))
        } catch {
            throw APIError.invalidField(error.field, rule: error.rule, error.description)
        }
        guard isIdentifier(merchantID, length: 1...64, extra: "._-") else {
            throw APIError.invalidField("merchant_id", rule: "format", "merchant_id must be 1-64 of A-Z, a-z, 0-9, '.', '_' and '-'")
        }
        var labels: [String: String]?
        if let metadata {
            guard metadata.count <= 50 else { throw APIError.invalidField("metadata", rule: "max_keys", "metadata has more than 50 keys") }
            labels = try metadata.mapValues { value in
                guard case .string(let text) = value else {
                    throw APIError.invalidField("metadata", rule: "type", "metadata values must be strings")
                }
                guard text.unicodeScalars.count <= 500 else {
                    throw APIError.invalidField("metadata", rule: "max_length", "a metadata value is longer than 500 characters")
                }
                return text
            }
            guard metadata.keys.allSatisfy({ (1...40).contains($0.unicodeScalars.count) }) else {
                throw APIError.invalidField("metadata", rule: "key_length", "metadata keys must be 1-40 characters")
            }
            // Stored as jsonb, which cannot hold U+0000.
            guard !metadata.keys.contains(where: { $0.contains("\0") }), !(labels ?? [:]).values.contains(where: { $0.contains("\0") }) else {
                throw APIError.invalidField("metadata", rule: "characters", "metadata keys and values cannot contain U+0000")
            }
        }
        if let callbackURL {
            // As sent: no IDNA or percent-encoding of what a URI cannot hold (non-ASCII, a stray '%').
            guard callbackURL.utf8.count <= 2048, let url = URL(string: callbackURL, encodingInvalidCharacters: false),
                  ["http", "https"].contains(url.scheme?.lowercased() ?? ""),
                  url.host?.isEmpty == false else {
                throw APIError.invalidField("callback_url", rule: "format", "callback_url must be an http or https URL of at most 2048 bytes")
            }
        }
        return ValidPayment(card: card, pan: pan, money: money, merchantID: merchantID, metadata: labels, callbackURL: callbackURL)
    }

    private func process(_ request: Request, caller: APIKeyIdentity) async throws -> Response {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.fields)
        let idempotencyKey = try IdempotencyStore.key(from: request)
        let payment = try Self.validate(body)

        var transactionID = UUID().uuidString.lowercased()
        if let idempotencyKey {
            switch try await idempotency.claim(apiKeyID: caller.id, key: idempotencyKey,
                                               requestHash: IdempotencyStore.hash(request, body: body.raw)) {
            case .replay(let status, let bytes):
                return .json(.init(code: status), bytes: bytes, headers: [HTTPField.Name("Idempotent-Replayed")!: "true"])
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
                currency: payment.money.currency.code, card: sealed.encoded, requestedBy: caller.actor, requestedAt: requestedAt,
                metadata: payment.metadata, callbackUrl: payment.callbackURL)
            try await publisher.publish(type: PaymentJob.type, id: transactionID, body: job, traceID: nil)

            let statusURL = "/api/financial/payment/\(transactionID)"
            let answer = APIResponse(.accepted, Accepted(transactionId: transactionID, statusUrl: statusURL), headers: [.location: statusURL])
            let bytes = try answer.encodedBody()
            let pending = PendingPayment(
                transactionID: transactionID, merchantID: payment.merchantID, money: payment.money, pan: payment.pan,
                metadata: payment.metadata, callbackURL: payment.callbackURL, requestedBy: caller.actor, requestedAt: requestedAt)
            try await pendingRows.commit(PendingWrite(payment: pending, idempotentAnswer: idempotencyKey.map { (caller.id, $0, bytes) }))
            return .json(.accepted, bytes: bytes, headers: answer.headers)
        } catch {
            if let idempotencyKey { await idempotency.release(apiKeyID: caller.id, key: idempotencyKey) }
            throw error
        }
    }

    private func status(_ id: String) async throws -> Payment {
        guard let uuid = UUID(uuidString: id) else {
            throw APIError.invalidParameter("transaction_id", rule: "format", "transaction_id must be a UUID")
        }
        guard let found = try await PaymentStore.find(uuid, on: database) else {
            throw APIError.notFound("no payment with this transaction_id")
        }
        return Payment(
            transactionId: found.transactionID, status: found.status, merchantId: found.merchantID, amount: found.amount,
            currency: found.currency, cardType: found.cardType, maskedPan: found.maskedPAN, token: found.token,
            authorizationCode: found.authorizationCode, declineCode: found.declineCode, failureReason: found.failureReason,
            createdAt: found.createdAt, updatedAt: found.updatedAt, authorizedAt: found.authorizedAt,
            retentionUntil: found.retentionUntil)
    }
}
