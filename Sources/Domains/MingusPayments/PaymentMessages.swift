public import Foundation

/// `payments.process`: a card payment accepted by the gateway (`Contracts/schemas/payments.process.v1.json`).
/// The card fields travel only inside ``card``, sealed with the `transit` data key.
public struct PaymentJob: Codable, Sendable {
    public static let type = "payments.process"

    public var transactionId: String
    public var merchantId: String
    /// Minor units of ``currency``.
    public var amount: Int64
    public var currency: String
    /// ``TransitCard`` as JSON, sealed (`v<version>.<base64>`) with the context ``transitContext(_:)``.
    public var card: String
    public var requestedBy: String
    public var requestedAt: Date
    public var metadata: [String: String]?
    public var callbackUrl: String?

    public init(transactionId: String, merchantId: String, amount: Int64, currency: String, card: String,
                requestedBy: String, requestedAt: Date, metadata: [String: String]?, callbackUrl: String?) {
        self.transactionId = transactionId
        self.merchantId = merchantId
        self.amount = amount
        self.currency = currency
        self.card = card
        self.requestedBy = requestedBy
        self.requestedAt = requestedAt
        self.metadata = metadata
        self.callbackUrl = callbackUrl
    }

    /// The authenticated context of a payment's sealed card: ciphertext moved to another payment does not open.
    public static func transitContext(_ transactionID: String) -> String { "payment:\(transactionID)" }
}

/// The card fields of a payment between the gateway and the payments worker. Only ever exists
/// in memory or sealed; its descriptions never show the values.
public struct TransitCard: Codable, Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var cardNumber: String
    public var expiryMonth: Int
    public var expiryYear: Int
    public var cvv: String
    public var cardholderName: String

    public init(cardNumber: String, expiryMonth: Int, expiryYear: Int, cvv: String, cardholderName: String) {
        self.cardNumber = cardNumber
        self.expiryMonth = expiryMonth
        self.expiryYear = expiryYear
        self.cvv = cvv
        self.cardholderName = cardholderName
    }

    public var description: String { "TransitCard(redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// The validated card: number, expiry (not past at `date`), CVV for the brand, name.
    public func validated(at date: Date = Date()) throws(CardValidationError) -> (pan: PAN, expiry: CardExpiry, cvv: CVV, name: CardholderName) {
        let pan = try PAN(cardNumber)
        let expiry = try CardExpiry(month: expiryMonth, year: expiryYear)
        try expiry.validateNotExpired(at: date)
        let cvv = try CVV(self.cvv, brand: pan.brand)
        let name = try CardholderName(cardholderName)
        return (pan, expiry, cvv, name)
    }
}

/// The kinds of financial record, each with a retention policy (`retention_policies`).
public enum RecordType: String, Codable, Sendable, CaseIterable {
    case transaction, statement
    case taxDocument = "tax_document"
    case loan, investment
    case accountProfile = "account_profile"
    case healthExpense = "health_expense"
}

/// How sensitive a record is.
public enum DataClassification: String, Codable, Sendable, CaseIterable {
    case `public`, `internal`, confidential, restricted
    case highlyRestricted = "highly_restricted"
}

/// `payments.record.store`: a financial record to keep, its content sealed with the `transit` key.
public struct RecordJob: Codable, Sendable {
    public static let type = "payments.record.store"

    public var recordId: String
    public var userId: String
    public var recordType: RecordType
    public var classification: DataClassification
    /// The record's JSON content, sealed with the context ``transitContext(_:)``.
    public var content: String
    public var requestedBy: String
    public var requestedAt: Date

    public init(recordId: String, userId: String, recordType: RecordType, classification: DataClassification,
                content: String, requestedBy: String, requestedAt: Date) {
        self.recordId = recordId
        self.userId = userId
        self.recordType = recordType
        self.classification = classification
        self.content = content
        self.requestedBy = requestedBy
        self.requestedAt = requestedAt
    }

    public static func transitContext(_ recordID: String) -> String { "record:\(recordID)" }
    /// The authenticated context of a record's content at rest.
    public static func storageContext(_ recordID: String) -> String { "financial_record:\(recordID)" }
}

/// `payments.webhook`: one event for a merchant's `callback_url`, signed when sent (Standard Webhooks).
public struct WebhookJob: Codable, Sendable {
    public static let type = "payments.webhook"

    public var webhookId: String
    public var url: String
    public var eventType: String
    /// The request body: `{"type", "timestamp", "data"}`.
    public var payload: WebhookPayload
}

/// The body of a payment webhook, as Standard Webhooks suggests: type, timestamp, data.
public struct WebhookPayload: Codable, Sendable, Equatable {
    public var type: String
    public var timestamp: Date
    public var data: PaymentEventData
}

/// What a payment webhook tells: never the card number, only its masked form.
public struct PaymentEventData: Codable, Sendable, Equatable {
    public var transactionId: String
    public var status: String
    public var merchantId: String
    public var amount: Int64
    public var currency: String
    public var cardType: String?
    public var maskedPan: String?
    public var authorizationCode: String?
    public var declineCode: String?
    public var failureReason: String?
    public var metadata: [String: String]?
}

/// `payments.rewrap`: moves ciphertext of a purpose to the newest data key version, a batch per job.
public struct RewrapJob: Codable, Sendable {
    public static let type = "payments.rewrap"

    /// `pan` (the token vault, with fingerprints) or `records` (financial record contents).
    public var purpose: String
    public var batchSize: Int?

    public init(purpose: String, batchSize: Int? = nil) {
        self.purpose = purpose
        self.batchSize = batchSize
    }
}
