import Crypto
public import Foundation

/// Time-based one-time passwords (RFC 6238): HMAC-SHA1 over the 30-second step since 1970,
/// dynamically truncated to 6 digits (RFC 4226). A code is accepted for the current step and one
/// step either side; the caller refuses a step already used (``DashboardUsers``).
public struct TOTP: Sendable {
    /// Seconds per step.
    public static let period: Int64 = 30
    /// Steps accepted either side of the current one (clock drift, a code typed at the turn).
    public static let window: Int64 = 1

    let secret: [UInt8]
    let digits: Int

    /// A generator for `secret` (20 random bytes for SHA-1, RFC 4226 §4).
    public init(secret: [UInt8], digits: Int = 6) {
        self.secret = secret
        self.digits = digits
    }

    /// A new random 20-byte secret.
    public static func makeSecret() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// The step of `date`.
    public static func step(at date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 / Double(period)).rounded(.down))
    }

    /// The code of `step`, zero-padded to ``digits``.
    public func code(step: Int64) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Array($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary = (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        var modulus: UInt32 = 1
        for _ in 0..<digits { modulus *= 10 }
        let value = String(binary % modulus)
        return String(repeating: "0", count: digits - value.count) + value
    }

    /// The code at `date`.
    public func code(at date: Date) -> String {
        code(step: Self.step(at: date))
    }

    /// The steps within the window around `date` whose code is `code`, newest first (in
    /// practice at most one). Compared in constant time per step.
    public func matchingSteps(_ code: String, at date: Date) -> [Int64] {
        let now = Self.step(at: date)
        let given = Array(code.utf8)
        return stride(from: now + Self.window, through: now - Self.window, by: -1).filter { step in
            let expected = Array(self.code(step: step).utf8)
            return expected.count == given.count && zip(expected, given).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
        }
    }

    /// The `otpauth://` URI authenticator apps read (usually as a QR code).
    public static func provisioningURI(secret: [UInt8], account: String, issuer: String) -> String {
        var components = URLComponents()
        components.scheme = "otpauth"
        components.host = "totp"
        components.path = "/\(issuer):\(account)"
        components.queryItems = [
            URLQueryItem(name: "secret", value: Base32.encode(secret)), URLQueryItem(name: "issuer", value: issuer),
            URLQueryItem(name: "algorithm", value: "SHA1"), URLQueryItem(name: "digits", value: "6"),
            URLQueryItem(name: "period", value: "\(period)"),
        ]
        return components.string ?? ""
    }
}

/// RFC 4648 base32 (upper case, no padding when encoding; padding and case ignored when decoding).
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// `bytes` in base32 without padding.
    public static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: output, as: UTF8.self)
    }

    /// The bytes of `text`, nil when it has a character outside the alphabet.
    public static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.uppercased().utf8 where character != UInt8(ascii: "=") && character != UInt8(ascii: " ") {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                output.append(UInt8((buffer >> UInt32(bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return output
    }
}
