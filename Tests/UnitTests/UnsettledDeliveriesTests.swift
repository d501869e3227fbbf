@testable import MingusAMQP
import Testing

@Suite("Unsettled deliveries of a consumer channel")
struct UnsettledDeliveriesTests {
    @Test("settling out of order keeps the oldest unsettled tag; unknown and repeated tags are refused")
    func outOfOrder() {
        var unsettled = UnsettledDeliveries()
        func settle(_ tag: UInt64) -> Bool { unsettled.settle(tag) }
        for tag in UInt64(1)...6 { unsettled.delivered(tag) }
        #expect(unsettled.oldest == 1)
        #expect(settle(3))
        #expect(settle(2))
        #expect(unsettled.oldest == 1)
        #expect(!settle(3), "settled twice")
        #expect(!settle(9), "never delivered")
        #expect(settle(1))
        #expect(unsettled.oldest == 4, "2 and 3 were settled while 1 was open")
        unsettled.settle(upTo: 5)
        #expect(unsettled.oldest == 6)
        #expect(!settle(4))
        #expect(settle(6))
        #expect(unsettled.oldest == nil)
    }

    @Test("agrees with a plain set through 20,000 random deliveries and settlements")
    func agreesWithASet() {
        var generator = SplitMix(seed: 11)
        var unsettled = UnsettledDeliveries()
        var model: Set<UInt64> = []
        var next: UInt64 = 1
        for _ in 0..<20_000 {
            switch generator.next() % 10 {
            case 0...4:
                unsettled.delivered(next)
                model.insert(next)
                next += 1
            case 5...7:
                // Mostly the oldest ones, as a worker's lanes finish them; sometimes any tag.
                let tag = generator.next() % 4 == 0 ? generator.next() % (next + 2) : (model.min() ?? 0) + generator.next() % 8
                let settled = unsettled.settle(tag)
                #expect(settled == (model.remove(tag) != nil), "tag \(tag)")
            case 8:
                let tag = (model.min() ?? next) + generator.next() % 4
                unsettled.settle(upTo: tag)
                model = model.filter { $0 > tag }
            default:
                break
            }
            #expect(unsettled.oldest == model.min())
        }
    }
}

/// A small deterministic generator, so a failure repeats.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
