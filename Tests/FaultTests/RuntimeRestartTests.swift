import Foundation
import MingusAMQP
import MingusCore
import MingusRuntime
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The worker runtime across service restarts; `make test` runs these alone, after the others.
@Suite("Worker runtime across restarts", .serialized)
struct RuntimeRestartTests {
    @Test("RabbitMQ then PostgreSQL restart while jobs flow: every job completes, none twice")
    func survivesRestarts() async throws {
        let worker = try await TestWorker.make("restart")
        let count = 4_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<50 {
                group.addTask {
                    for index in stride(from: lane, to: count, by: 50) {
                        try await worker.publish("slow", json: #"{"key":"job\#(index)","value":\#(index),"millis":40}"#)
                    }
                }
            }
            try await group.waitForAll()
        }
        await worker.broker.close()
        let process = try worker.start()
        #expect(try await eventually { try await worker.effectCount() >= 300 }, "\(process.output.suffix(2000))")

        try TestEnvironment.services("restart", "rabbitmq")
        let afterBroker = try await worker.effectCount()
        #expect(try await eventually(timeout: .seconds(60)) { try await worker.effectCount() > afterBroker + 200 },
                "consumption resumes after the broker restart: \(process.output.suffix(2000))")

        try TestEnvironment.services("restart", "postgres")
        #expect(try await eventually(timeout: .seconds(120)) { try await worker.effectCount() >= count },
                "\(process.output.suffix(3000))")
        #expect(try await process.wait(timeout: .zero) == nil, "the worker survived both restarts")
        #expect(process.output.contains("connected to RabbitMQ"))

        // Stopped, the worker has finished and acknowledged every job it took: the totals are final.
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        let totals = try await worker.effectTotals()
        #expect(totals.rows == count, "no job applied twice")
        #expect(totals.keys == count, "no job lost")
        await worker.cleanUp()
    }
}
