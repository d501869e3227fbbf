import Crypto
public import Foundation

/// Signs webhook requests as the Standard Webhooks specification describes: headers
/// `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
/// (`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`), with a `whsec_<base64>` secret.
public struct WebhookSigner: Sendable {
    private let key: SymmetricKey

    /// Reads a `whsec_`-prefixed base64 secret (the prefix is optional).
    public init(secret: String) throws {
        let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst("whsec_".count)) : secret
        guard let raw = Data(base64Encoded: encoded), raw.count >= 24 else {
            throw WebhookSecretError()
        }
        key = SymmetricKey(data: raw)
    }

    /// A new random secret in the `whsec_` form.
    public static func makeSecret() -> String {
        "whsec_" + SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    /// The three signature headers for `body` sent as message `id` at `timestamp`.
    public func headers(id: String, timestamp: Date, body: [UInt8]) -> [(name: String, value: String)] {
        let seconds = String(Int64(timestamp.timeIntervalSince1970))
        let signature = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(seconds).".utf8) + body, using: key)
        return [
            ("webhook-id", id),
            ("webhook-timestamp", seconds),
            ("webhook-signature", "v1," + Data(signature).base64EncodedString()),
        ]
    }
}

/// A webhook secret that is not `whsec_` followed by base64 of at least 24 bytes.
public struct WebhookSecretError: Error, CustomStringConvertible {
    public init() {}
    public var description: String { "the webhook secret must be whsec_ followed by base64 of at least 24 random bytes" }
}
