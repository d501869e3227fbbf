import Foundation
@testable import MingusAlerts
import Testing

@Suite("Derived UUIDs")
struct DerivedUUIDTests {
    static let base = UUID(uuidString: "6F9619FF-8B86-D011-B42D-00C04FC964FF")!

    @Test("a derived UUID is version 8 with the RFC 9562 variant")
    func versionAndVariant() {
        for salt in ["", "backup/webhook/0", "everyone/slack/3", String(repeating: "x", count: 500)] {
            let id = derivedUUID(Self.base, salt).uuid
            #expect(id.6 >> 4 == 0x8, "version nibble of \(salt)")
            #expect(id.8 >> 6 == 0b10, "variant bits of \(salt)")
        }
    }

    @Test("the same inputs give the same UUID, other inputs another; the other bits are SHA-256's")
    func determinism() {
        let id = derivedUUID(Self.base, "backup/webhook/0")
        #expect(derivedUUID(Self.base, "backup/webhook/0") == id)
        #expect(derivedUUID(Self.base, "backup/webhook/1") != id)
        #expect(derivedUUID(UUID(uuidString: "6F9619FF-8B86-D011-B42D-00C04FC96500")!, "backup/webhook/0") != id)
        // SHA-256("6F9619FF-8B86-D011-B42D-00C04FC964FF|backup/webhook/0") starts with
        // e632c2a1 9649 faae de74 ee1096177d42: only the version nibble (fa → 8a) and the variant
        // bits (de → 9e) differ.
        #expect(id.uuidString.lowercased() == "e632c2a1-9649-8aae-9e74-ee1096177d42")
    }
}
