import AsyncHTTPClient
import Foundation
import Logging
import MingusCore
public import MingusSecurity
import MingusPostgres
public import MingusRuntime
import NIOCore
import NIOHTTP1

/// The payments worker's job handlers: card payments, financial records, merchant webhooks and
/// key rewraps. `mingus-payments-worker` runs ``MingusRuntime/WorkerDefinition/payments``.
public struct PaymentsWorker: Sendable {
    let keys: KeyringCache
    let processor: any PaymentProcessor
    let maxAttempts: Int
    let webhookSigner: WebhookSigner?

    public init(keys: KeyringCache, processor: any PaymentProcessor, maxAttempts: Int, webhookSigner: WebhookSigner?) {
        self.keys = keys
        self.processor = processor
        self.maxAttempts = maxAttempts
        self.webhookSigner = webhookSigner
    }

    /// Every job type of the worker, each body checked against the schema `schema` gives for its type.
    public func registry(schema: (String) throws -> JSONSchema) throws -> JobRegistry {
        var registry = JobRegistry()
        registry.register(PaymentJob.type, as: PaymentJob.self, schema: try schema(PaymentJob.type),
                          batchable: !processor.waitsOnNetwork) { job, context in
            try await process(job, context)
        }
        registry.register(RecordJob.type, as: RecordJob.self, schema: try schema(RecordJob.type)) { job, context in
            try await store(job, context)
        }
        registry.register(WebhookJob.type, as: WebhookJob.self, schema: try schema(WebhookJob.type), batchable: false) { job, context in
            try await deliver(job, context)
        }
        registry.register(RewrapJob.type, as: RewrapJob.self, schema: try schema(RewrapJob.type), batchable: false) { job, context in
            try await rewrap(job, context)
        }
        return registry
    }

    // MARK: - Payments

    /// How a payment ended.
    enum Outcome {
        case authorized(code: String)
        case declined(code: String)
        case failed(reason: String)

        var status: String {
            switch self {
            case .authorized: "authorized"
            case .declined: "declined"
            case .failed: "failed"
            }
        }
    }

    /// Opens the card, vaults it, authorizes, and records the outcome, an audit event and, when
    /// asked for, a webhook. The CVV exists only in memory until the authorization is answered.
    func process(_ job: PaymentJob, _ context: JobContext) async throws {
        var token: String?
        var card: (pan: PAN, expiry: CardExpiry)?
        let outcome: Outcome
        switch try await openCard(job) {
        case .unreadable(let reason):
            outcome = .failed(reason: reason)
        case .card(let transit):
            do {
                let (pan, expiry, cvv, name) = try transit.validated()
                card = (pan, expiry)
                let money = try Money(minorUnits: job.amount, currency: Currency(job.currency))
                token = try await CardVault.tokenize(pan, keyring: try await keys.current(), on: context.database)
                let request = AuthorizationRequest(
                    transactionID: job.transactionId, merchantID: job.merchantId, pan: pan, expiry: expiry, cvv: cvv,
                    cardholder: name, money: money, attempt: context.attempt)
                do {
                    outcome = switch try await processor.authorize(request) {
                    case .authorized(let code): .authorized(code: code)
                    case .declined(let code): .declined(code: code)
                    }
                } catch let error as ProcessorUnavailable where context.attempt >= maxAttempts {
                    outcome = .failed(reason: "\(error) after \(context.attempt) attempts")
                }
            } catch CardValidationError.expired {
                outcome = .declined(code: "expired_card")
            } catch let error as CardValidationError {
                outcome = .failed(reason: "card data invalid: \(error.field) breaks \(error.rule)")
            } catch let error as MoneyValidationError {
                outcome = .failed(reason: "amount invalid: \(error.field) breaks \(error.rule)")
            }
        }
        try await record(job, outcome: outcome, token: token, card: card, context)
    }

    /// The card fields of a job, or why they can never be read.
    enum OpenedCard {
        case card(TransitCard)
        /// Altered or foreign ciphertext, or a retired key: retrying cannot help.
        case unreadable(String)
    }

    private func openCard(_ job: PaymentJob) async throws -> OpenedCard {
        guard let sealed = try? SealedValue(encoded: job.card) else {
            return .unreadable("the card field is not a sealed value")
        }
        let keyring = try await keys.current(having: sealed.version, of: .transit)
        guard keyring.versions(.transit).contains(sealed.version) else {
            return .unreadable("transit key v\(sealed.version) is unknown or retired")
        }
        guard let plaintext = try? keyring.open(sealed, purpose: .transit, context: PaymentJob.transitContext(job.transactionId)) else {
            return .unreadable("the sealed card does not open: altered, or sealed for another payment")
        }
        // A decoding error could quote the input, so only the fact is kept.
        guard let card = try? JSONDecoder.mingus.decode(TransitCard.self, from: Data(plaintext)) else {
            return .unreadable("the sealed card is not the expected JSON object")
        }
        return .card(card)
    }

    private func record(_ job: PaymentJob, outcome: Outcome, token: String?, card: (pan: PAN, expiry: CardExpiry)?,
                        _ context: JobContext) async throws {
        var code: String?
        var decline: String?
        var reason: String?
        switch outcome {
        case .authorized(let value): code = value
        case .declined(let value): decline = value
        case .failed(let value): reason = value
        }
        let authorized = code != nil
        let decision = PaymentDecision(status: outcome.status, token: token, pan: card?.pan, expiry: card?.expiry,
                                       authorizationCode: code, declineCode: decline, failureReason: reason, processor: processor.name)
        // A payment already decided (by an earlier job with the same id) is left as it is.
        guard try await PaymentStore.recordDecision(decision, of: job, on: context.database) else { return }
        var details = ["status": outcome.status, "amount": "\(job.amount)", "currency": job.currency, "merchant_id": job.merchantId]
        details["card_type"] = card?.pan.brand.rawValue
        details["masked_pan"] = card?.pan.masked
        details["decline_code"] = decline
        details["failure_reason"] = reason
        _ = try await AuditTrail.append(
            AuditEvent(actor: job.requestedBy, action: "payment.\(outcome.status)", resource: "payment/\(job.transactionId)",
                       outcome: authorized ? .success : .failure, origin: "payments-worker", details: details),
            component: "payments", on: context.database)
        context.logger.debug("payment decided", metadata: [
            "mingus.payment.id": "\(job.transactionId)", "mingus.payment.status": "\(outcome.status)",
        ])
        guard let url = job.callbackUrl else { return }
        let data = PaymentEventData(
            transactionId: job.transactionId, status: outcome.status, merchantId: job.merchantId, amount: job.amount,
            currency: job.currency, cardType: card?.pan.brand.rawValue, maskedPan: card?.pan.masked, authorizationCode: code,
            declineCode: decline, failureReason: reason, metadata: job.metadata)
        let event = "payment.\(outcome.status)"
        try await context.emit(type: WebhookJob.type, WebhookJob(
            webhookId: "msg_\(job.transactionId.replacingOccurrences(of: "-", with: ""))", url: url, eventType: event,
            payload: WebhookPayload(type: event, timestamp: Date(), data: data)))
    }

    // MARK: - Records

    /// Stores a financial record: content sealed under the newest `records` key, retention date
    /// and compliance standard from the record type's policy.
    func store(_ job: RecordJob, _ context: JobContext) async throws {
        guard let sealed = try? SealedValue(encoded: job.content) else {
            throw PermanentJobError("the content field is not a sealed value")
        }
        let keyring = try await keys.current(having: sealed.version, of: .transit)
        let content: [UInt8]
        do {
            content = try keyring.open(sealed, purpose: .transit, context: RecordJob.transitContext(job.recordId))
        } catch {
            throw PermanentJobError("the sealed content does not open: altered, sealed for another record, or an unknown key")
        }
        let atRest = try keyring.seal(content, purpose: .records, context: RecordJob.storageContext(job.recordId))
        guard let standard = try await RecordStore.insert(job, content: atRest, on: context.database) else { return }
        _ = try await AuditTrail.append(
            AuditEvent(actor: job.requestedBy, action: "record.stored", resource: "record/\(job.recordId)", outcome: .success,
                       origin: "payments-worker",
                       details: ["user_id": job.userId, "record_type": job.recordType.rawValue,
                                 "classification": job.classification.rawValue,
                                 "compliance_standard": standard,
                                 "key_version": "\(atRest.version)"]),
            component: "payments", on: context.database)
    }

    // MARK: - Webhooks

    /// Sends a merchant webhook, signed at send time (a fresh timestamp on every attempt, the same
    /// `webhook-id`). 2xx is delivered; 410 Gone stops for good; anything else is retried.
    func deliver(_ job: WebhookJob, _ context: JobContext) async throws {
        guard let signer = webhookSigner else {
            throw PermanentJobError("no webhook signing secret: set MINGUS_WEBHOOK_SECRET or MINGUS_WEBHOOK_SECRET_FILE")
        }
        let body = Array(try JSONEncoder.mingus.encode(job.payload))
        var request = HTTPClientRequest(url: job.url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "mingus-webhooks/1")
        for header in signer.headers(id: job.webhookId, timestamp: Date(), body: body) {
            request.headers.add(name: header.name, value: header.value)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let status = response.status.code
        _ = try? await response.body.collect(upTo: 64 * 1024)
        switch status {
        case 200..<300:
            context.logger.info("webhook delivered", metadata: ["mingus.webhook.id": "\(job.webhookId)", "mingus.http.status": "\(status)"])
        case 410:
            throw PermanentJobError("the receiver answered 410 Gone")
        default:
            throw WebhookRejected(status: Int(status))
        }
    }

    // MARK: - Rewrap

    /// Moves one batch of ciphertext to the newest key version and, while more remain, emits
    /// the next batch's job. Plaintext exists only inside this process.
    func rewrap(_ job: RewrapJob, _ context: JobContext) async throws {
        let limit = job.batchSize ?? 500
        let keyring = try await keys.reload()
        let moved: Int
        switch job.purpose {
        case "pan": moved = try await CardVault.rewrap(limit: limit, keyring: keyring, on: context.database)
        case "records": moved = try await RecordStore.rewrap(limit: limit, keyring: keyring, on: context.database)
        default: throw PermanentJobError("purpose must be pan or records")
        }
        _ = try await AuditTrail.append(
            AuditEvent(actor: "system:payments-worker", action: "keys.rewrap", resource: "keys/\(job.purpose)", outcome: .success,
                       origin: "payments-worker", details: ["rows": "\(moved)"]),
            component: "payments", on: context.database)
        if moved == limit {
            try await context.emit(type: RewrapJob.type, job, id: "rewrap-\(job.purpose)-\(UUID().uuidString.lowercased())")
        }
    }
}

/// A webhook receiver answered with a status that may change on a later attempt.
struct WebhookRejected: Error, CustomStringConvertible {
    var status: Int
    var description: String { "the receiver answered HTTP \(status)" }
}
