@testable import MingusRuntime
import Testing

/// How the worker's lanes share deliveries: batches grow with load.
@Suite("Delivery buffer")
struct DeliveryBufferTests {
    @Test("an idle consumer hands the first delivery out at once; while that lane commits, the rest gather into one batch")
    func gathersWhileALaneCommits() async {
        let buffer = DeliveryBuffer<Int>()
        buffer.append(1)
        #expect(await buffer.take(max: 10) == [1])
        // Lane A is committing [1]; a second lane waits instead of taking single deliveries.
        async let second = buffer.take(max: 10)
        for item in 2...5 { buffer.append(item) }
        buffer.batchDone()
        // Lane A is back: the waiting lane gets everything that arrived meanwhile, as one batch.
        #expect(await second == [2, 3, 4, 5])
    }

    @Test("a full batch goes to a free lane even while another lane commits")
    func fullBatchesRunSideBySide() async {
        let buffer = DeliveryBuffer<Int>()
        buffer.append(0)
        #expect(await buffer.take(max: 3) == [0])
        async let second = buffer.take(max: 3)
        for item in 1...4 { buffer.append(item) }
        #expect(await second == [1, 2, 3], "three waiting: a full batch, taken while the first lane still commits")
        buffer.batchDone()
        buffer.batchDone()
        #expect(await buffer.take(max: 3) == [4])
    }

    @Test("a lane that took nothing batchable lets the others go on; finishing hands out the rest, then nil")
    func finish() async {
        let buffer = DeliveryBuffer<Int>()
        buffer.append(1)
        #expect(await buffer.take(max: 5) == [1])
        buffer.append(2)
        async let waiting = buffer.take(max: 5)
        buffer.finish()
        #expect(await waiting == [2], "once finished, what is left is handed out whatever else runs")
        #expect(await buffer.take(max: 5) == nil)
    }
}
