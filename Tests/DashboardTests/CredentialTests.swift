import Foundation
import MingusDashboard
import Testing

@Suite("Dashboard credentials")
struct CredentialTests {
    @Test("a scrypt hash verifies its password, refuses another, and keeps its parameters in its stored form")
    func passwordRoundTrip() async throws {
        let hash = try await PasswordHash.make("correct horse battery staple")
        #expect(hash.parameters == .recommended)
        #expect(hash.encoded.hasPrefix("scrypt$32768$8$3$"))
        #expect(!hash.description.contains(hash.encoded.split(separator: "$").last!))
        let stored = try #require(PasswordHash(encoded: hash.encoded))
        #expect(try await stored.verify("correct horse battery staple"))
        #expect(try await !stored.verify("correct horse battery stapler"))
        #expect(try await !stored.verify(""))
        let other = try await PasswordHash.make("correct horse battery staple")
        #expect(other.encoded != hash.encoded, "a new salt each time")
        #expect(PasswordHash(encoded: "scrypt$1000$8$1$AAAA$AAAA") == nil, "N must be a power of two, salt and hash long enough")
        #expect(PasswordHash(encoded: "bcrypt$2b$12$whatever") == nil)
    }

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits; the seed is the ASCII of "12345678901234567890").
    @Test("TOTP gives the RFC 6238 Appendix B test vectors", arguments: [
        (Int64(59), "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
    ])
    func rfc6238Vectors(time: Int64, expected: String) {
        let totp = TOTP(secret: Array("12345678901234567890".utf8), digits: 8)
        #expect(totp.code(at: Date(timeIntervalSince1970: TimeInterval(time))) == expected)
    }

    @Test("a 6-digit code is accepted one step either side of now and not two")
    func window() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8))
        let now = Date(timeIntervalSince1970: 1_111_111_111)
        let step = TOTP.step(at: now)
        #expect(totp.code(at: now).count == 6)
        #expect(totp.matchingSteps(totp.code(step: step), at: now) == [step])
        #expect(totp.matchingSteps(totp.code(step: step - 1), at: now) == [step - 1])
        #expect(totp.matchingSteps(totp.code(step: step + 1), at: now) == [step + 1])
        #expect(totp.matchingSteps(totp.code(step: step - 2), at: now).isEmpty)
        #expect(totp.matchingSteps(totp.code(step: step + 2), at: now).isEmpty)
    }

    @Test("base32 follows RFC 4648 and the otpauth URI carries the secret and issuer")
    func base32() {
        let vectors = ["": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB", "foobar": "MZXW6YTBOI"]
        for (plain, encoded) in vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
            #expect(Base32.decode(encoded) == Array(plain.utf8))
            #expect(Base32.decode(encoded.lowercased() + "======".prefix((8 - encoded.count % 8) % 8)) == Array(plain.utf8))
        }
        #expect(Base32.decode("MZ1W") == nil)
        let uri = TOTP.provisioningURI(secret: Array("foobar".utf8), account: "ana", issuer: "Mingus")
        #expect(uri.hasPrefix("otpauth://totp/Mingus:ana?"))
        #expect(uri.contains("secret=MZXW6YTBOI") && uri.contains("issuer=Mingus") && uri.contains("period=30") && uri.contains("digits=6"))
    }
}
