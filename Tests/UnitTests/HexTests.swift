import MingusCore
import Testing

@Suite("Hex")
struct HexTests {
    @Test("every byte value becomes two lowercase digits, high nibble first")
    func encodesEveryByte() {
        let all = Hex.encode(0...255 as ClosedRange<UInt8>)
        #expect(all.count == 512)
        #expect(all.hasPrefix("000102030405060708090a0b0c0d0e0f10"))
        #expect(all.hasSuffix("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"))
        #expect(Hex.encode([0xa5, 0x5a]) == "a55a")
        #expect(Hex.encode([UInt8]()) == "")
    }

    @Test("random hex has the asked length, only hex digits, and differs between calls")
    func randomHex() {
        let first = Hex.random(bytes: 16)
        let second = Hex.random(bytes: 16)
        #expect(first.count == 32)
        #expect(first.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(first != second)
    }
}
