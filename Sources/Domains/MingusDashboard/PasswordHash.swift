import Crypto
import CryptoExtras
public import Foundation
import NIOPosix

/// A dashboard password hashed with scrypt (memory-hard), written with its parameters:
/// `scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>`, so the parameters can be raised later
/// without breaking the hashes already stored.
///
/// The default is OWASP's scrypt recommendation N = 2^15, r = 8, p = 3 (32 MiB per hash).
/// Hashing and verifying run on NIO's blocking thread pool, never on the cooperative pool.
public struct PasswordHash: Sendable, Equatable, CustomStringConvertible {
    /// scrypt's cost parameters.
    public struct Parameters: Sendable, Equatable {
        /// CPU and memory cost (a power of two).
        public var n: Int
        /// Block size.
        public var r: Int
        /// Parallelism.
        public var p: Int

        public init(n: Int, r: Int, p: Int) {
            self.n = n
            self.r = r
            self.p = p
        }

        /// N = 2^15, r = 8, p = 3.
        public static let recommended = Parameters(n: 1 << 15, r: 8, p: 3)
    }

    /// The shortest password accepted (PCI DSS 8.3.6: at least 12 characters).
    public static let minimumLength = 12

    public let parameters: Parameters
    let salt: [UInt8]
    let hash: [UInt8]

    /// The stored form.
    public var encoded: String {
        "scrypt$\(parameters.n)$\(parameters.r)$\(parameters.p)$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())"
    }

    /// Never the hash itself.
    public var description: String { "PasswordHash(scrypt N=\(parameters.n) r=\(parameters.r) p=\(parameters.p))" }

    /// Parses a stored form; nil when it is not one ``encoded`` writes.
    public init?(encoded text: String) {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "scrypt", let n = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
              n > 1, n & (n - 1) == 0, (1...64).contains(r), (1...64).contains(p),
              let salt = Data(base64Encoded: String(parts[4])), let hash = Data(base64Encoded: String(parts[5])),
              salt.count >= 16, hash.count >= 16 else { return nil }
        self.parameters = Parameters(n: n, r: r, p: p)
        self.salt = Array(salt)
        self.hash = Array(hash)
    }

    private init(parameters: Parameters, salt: [UInt8], hash: [UInt8]) {
        self.parameters = parameters
        self.salt = salt
        self.hash = hash
    }

    /// Hashes `password` with a new random 16-byte salt.
    public static func make(_ password: String, parameters: Parameters = .recommended) async throws -> PasswordHash {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let hash = try await derive(password, salt: salt, parameters: parameters)
        return PasswordHash(parameters: parameters, salt: salt, hash: hash)
    }

    /// Whether `password` is the one hashed (compared in constant time).
    public func verify(_ password: String) async throws -> Bool {
        let candidate = try await Self.derive(password, salt: salt, parameters: parameters)
        return candidate.count == hash.count && zip(candidate, hash).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
    }

    static func derive(_ password: String, salt: [UInt8], parameters: Parameters) async throws -> [UInt8] {
        try await NIOThreadPool.singleton.runIfActive {
            let key = try KDF.Scrypt.deriveKey(from: Array(password.utf8), salt: salt, outputByteCount: 32,
                                               rounds: parameters.n, blockSize: parameters.r, parallelism: parameters.p)
            return key.withUnsafeBytes { Array($0) }
        }
    }
}
