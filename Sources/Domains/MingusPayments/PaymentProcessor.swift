import Crypto
import Foundation
import MingusCore

/// What a processor is asked to authorize. The card values are sensitive and live only in memory.
public struct AuthorizationRequest: Sendable {
    /// Also the processor's idempotency key: asking twice authorizes once.
    public var transactionID: String
    public var merchantID: String
    public var pan: PAN
    public var expiry: CardExpiry
    public var cvv: CVV
    public var cardholder: CardholderName
    public var money: Money
    /// The delivery attempt of the payment job (1 for the first).
    public var attempt: Int
}

/// A processor's answer.
public enum AuthorizationResult: Sendable, Equatable {
    case authorized(code: String)
    case declined(code: String)
}

/// The processor could not answer now (timeout, outage); the payment is retried later.
public struct ProcessorUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "processor unavailable: \(reason)" }
}

/// The boundary to a card processor (acquirer or payment service provider).
///
/// An adapter must treat ``AuthorizationRequest/transactionID`` as an idempotency key: a job can be
/// delivered again after a crash between the authorization and the commit.
public protocol PaymentProcessor: Sendable {
    /// Names the processor in `payment_data.processor`.
    var name: String { get }
    /// Whether authorizing waits on the network: such payments run concurrently, each in its own
    /// transaction, instead of in batches.
    var waitsOnNetwork: Bool { get }
    func authorize(_ request: AuthorizationRequest) async throws -> AuthorizationResult
}

/// A processor with documented, deterministic outcomes for tests and local runs. Every card not
/// listed is authorized, with an authorization code derived from the transaction id.
///
/// | card number | outcome |
/// |---|---|
/// | 4000000000000002 | declined `card_declined` |
/// | 4000000000009995 | declined `insufficient_funds` |
/// | 4000000000000127 | declined `incorrect_cvc` |
/// | 4000000000000119 | unavailable on the first two attempts, then authorized |
/// | 4000000000000259 | always unavailable (the payment fails after the last attempt) |
public struct SandboxProcessor: PaymentProcessor {
    public let name = "sandbox"
    public let waitsOnNetwork = false

    public static let declined = "4000000000000002"
    public static let insufficientFunds = "4000000000009995"
    public static let incorrectCVC = "4000000000000127"
    public static let unavailableTwice = "4000000000000119"
    public static let alwaysUnavailable = "4000000000000259"

    public init() {}

    public func authorize(_ request: AuthorizationRequest) async throws -> AuthorizationResult {
        switch request.pan.digits {
        case Self.declined: return .declined(code: "card_declined")
        case Self.insufficientFunds: return .declined(code: "insufficient_funds")
        case Self.incorrectCVC: return .declined(code: "incorrect_cvc")
        case Self.unavailableTwice where request.attempt <= 2:
            throw ProcessorUnavailable("sandbox outage on attempt \(request.attempt) of this card")
        case Self.alwaysUnavailable:
            throw ProcessorUnavailable("sandbox outage for this card")
        default:
            let digest = SHA256.hash(data: Data(request.transactionID.utf8))
            return .authorized(code: Hex.encode(digest.prefix(3)).uppercased())
        }
    }
}
