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
        registry.registerBatch(PaymentJob.type, as: PaymentJob.self, schema: try schema(PaymentJob.type),
                               batchable: !processor.waitsOnNetwork) { jobs in
            try await process(jobs)
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

    /// A payment decided in memory, not yet recorded.
    struct Decided {
        var job: PaymentJob
        var context: JobContext
        var outcome: Outcome
        var card: (pan: PAN, expiry: CardExpiry)?
        /// Whether the card passed every check, so that it is vaulted.
        var vaults: Bool
    }

    /// Opens each card, authorizes, vaults the cards, and records the outcomes, their audit
    /// events and, when asked for, webhooks: a batch's payments with a few multi-row statements.
    /// The CVV exists only in memory until the authorization is answered.
    func process(_ jobs: [BatchedJob<PaymentJob>]) async throws {
        guard let db = jobs.first?.context.database else { return }
        var decided: [Decided] = []
        decided.reserveCapacity(jobs.count)
        for job in jobs { decided.append(try await decide(job.body, job.context)) }
        let vaulting = decided.indices.filter { decided[$0].vaults }
        var tokens: [Int: String] = [:]
        if !vaulting.isEmpty {
            let vaulted = try await CardVault.tokenize(vaulting.map { decided[$0].card!.pan }, keyring: try await keys.current(), on: db)
            tokens = Dictionary(uniqueKeysWithValues: zip(vaulting, vaulted))
        }
        try await record(decided, tokens: tokens, on: db)
    }

    /// How one payment ends: opened, validated and authorized, nothing written yet.
    func decide(_ job: PaymentJob, _ context: JobContext) async throws -> Decided {
        var card: (pan: PAN, expiry: CardExpiry)?
        var vaults = false
        let outcome: Outcome
        switch try await openCard(job) {
        case .unreadable(let reason):
            outcome = .failed(reason: reason)
        case .card(let transit):
            do {
                let (pan, expiry, cvv, name) = try transit.validated()
                card = (pan, expiry)
                let money = try Money(minorUnits: job.amount, currency: Currency(job.currency))
                vaults = true
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
        return Decided(job: job, context: context, outcome: outcome, card: card, vaults: vaults)
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

    /// Records the decided payments (those not decided before), then their audit events and webhooks.
    private func record(_ decided: [Decided], tokens: [Int: String], on db: PostgresConnection) async throws {
        let decisions = decided.enumerated().map { index, payment in
            var decision = PaymentDecision(status: payment.outcome.status, token: tokens[index], pan: payment.card?.pan,
                                           expiry: payment.card?.expiry, processor: processor.name)
            switch payment.outcome {
            case .authorized(let code): decision.authorizationCode = code
            case .declined(let code): decision.declineCode = code
            case .failed(let reason): decision.failureReason = reason
            }
            return (decision: decision, job: payment.job)
        }
        // A payment already decided (by an earlier job with the same id) is left as it is.
        let changed = try await PaymentStore.recordDecisions(decisions, on: db)
        let fresh = decisions.indices.filter { changed.contains(decisions[$0].job.transactionId.lowercased()) }
        try await AuditTrail.append(fresh.map { index in
            let (decision, job) = decisions[index]
            var details = ["status": decision.status, "amount": "\(job.amount)", "currency": job.currency, "merchant_id": job.merchantId]
            details["card_type"] = decision.pan?.brand.rawValue
            details["masked_pan"] = decision.pan?.masked
            details["decline_code"] = decision.declineCode
            details["failure_reason"] = decision.failureReason
            return AuditEvent(actor: job.requestedBy, action: "payment.\(decision.status)", resource: "payment/\(job.transactionId)",
                              outcome: decision.authorizationCode != nil ? .success : .failure, origin: "payments-worker", details: details)
        }, component: "payments", on: db)
        for index in fresh {
            let (decision, job) = decisions[index]
            let context = decided[index].context
            context.logger.debug("payment decided", metadata: [
                "mingus.payment.id": "\(job.transactionId)", "mingus.payment.status": "\(decision.status)",
            ])
            guard let url = job.callbackUrl else { continue }
            let data = PaymentEventData(
                transactionId: job.transactionId, status: decision.status, merchantId: job.merchantId, amount: job.amount,
                currency: job.currency, cardType: decision.pan?.brand.rawValue, maskedPan: decision.pan?.masked,
                authorizationCode: decision.authorizationCode, declineCode: decision.declineCode,
                failureReason: decision.failureReason, metadata: job.metadata)
            let event = "payment.\(decision.status)"
            try await context.emit(type: WebhookJob.type, WebhookJob(
                webhookId: "msg_\(job.transactionId.replacingOccurrences(of: "-", with: ""))", url: url, eventType: event,
                payload: WebhookPayload(type: event, timestamp: Date(), data: data)))
        }
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
