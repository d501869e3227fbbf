import Foundation
import MingusAMQP
import MingusCore
import MingusPostgres
import MingusRuntime
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The shared worker runtime, through real `mingus-test-worker` processes, RabbitMQ and PostgreSQL.
@Suite("Worker runtime")
struct WorkerRuntimeTests {
    @Test("jobs are applied once each and acknowledged; an emitted job is relayed through the outbox")
    func appliesAndEmits() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        for index in 0..<50 {
            try await worker.publish("insert", json: #"{"key":"k\#(index)","value":\#(index)}"#)
        }
        try await worker.publish("emit", json: #"{"key":"parent","value":7}"#)
        let done = try await eventually { try await worker.effectTotals().rows >= 52 }
        #expect(done, "\(process.output.suffix(2000))")
        let totals = try await worker.effectTotals()
        #expect(totals.rows == 52 && totals.keys == 52)
        let child = try await worker.database.query(
            "SELECT value FROM runtime_test_effects WHERE worker = \(worker.name) AND key = 'parent-child'")
        #expect(try child.first?.decode(Int.self, at: 0) == 7)
        #expect(try await worker.depth(worker.queues.queue) == 0)
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("a redelivered job whose effect committed is acknowledged without running again")
    func duplicateIsNotReapplied() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        let id = try await worker.publish("insert", json: #"{"key":"once","value":1}"#)
        #expect(try await eventually { try await worker.effectCount() == 1 })
        // The same job id again, as a broker redelivery would bring it.
        try await worker.publish("insert", json: #"{"key":"once","value":1}"#, id: id)
        try await worker.publish("insert", json: #"{"key":"marker","value":2}"#)
        #expect(try await eventually { try await worker.effectCount() == 2 })
        let keys = try await worker.database.query(
            "SELECT key FROM runtime_test_effects WHERE worker = \(worker.name) ORDER BY key").map { try $0.decode(String.self, at: 0) }
        #expect(keys == ["marker", "once"])
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("malformed bodies, unknown types and envelopes without an id are dead-lettered at once with the reason")
    func neverSucceedingMessagesAreDeadLettered() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        try await worker.publish("insert", json: #"{"key":"bad","value":"not a number"}"#, id: "schema-violation")
        try await worker.publish("insert", json: #"{"key":"#, id: "not-json")
        try await worker.publish("noop", json: #"[1,2"#, id: "undecodable")
        try await worker.publish("unheard.of", json: "{}", id: "unknown-type")
        try await worker.publishRaw(AMQPMessage(body: Array("{}".utf8)), routingKey: "\(worker.name).insert")

        #expect(try await eventually { try await worker.depth(worker.queues.deadLetterQueue) == 5 }, "\(process.output.suffix(2000))")
        var reasons: [String: (reason: String, error: String)] = [:]
        while let letter = try await worker.broker.get(queue: worker.queues.deadLetterQueue) {
            let headers = letter.properties.headers
            reasons[letter.properties.messageID ?? "none"] = (
                headers[JobEnvelope.reasonHeader]?.stringValue ?? "", headers[JobEnvelope.errorHeader]?.stringValue ?? "")
            #expect(headers[JobEnvelope.originalQueueHeader]?.stringValue == worker.queues.queue)
            try letter.ack()
        }
        #expect(reasons["schema-violation"]?.reason == "schema")
        #expect(reasons["schema-violation"]?.error.contains("/value") == true)
        #expect(reasons["schema-violation"]?.error.contains("not a number") == false, "values never appear in reasons")
        #expect(reasons["not-json"]?.reason == "schema")
        #expect(reasons["undecodable"]?.reason == "undecodable")
        #expect(reasons["unknown-type"]?.reason == "unknown_type")
        #expect(reasons["unknown-type"]?.error.contains("unheard.of") == true)
        #expect(reasons["none"]?.reason == "malformed_envelope")
        #expect(try await worker.effectCount() == 0)
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("a job that fails twice then succeeds is retried with growing delays")
    func retriesWithGrowingDelays() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        try await worker.publish("flaky", json: #"{"key":"flaky","failures":2}"#)
        #expect(try await eventually(timeout: .seconds(20)) { try await worker.effectCount() == 1 }, "\(process.output.suffix(2000))")
        let attempts = try await worker.attempts("flaky")
        #expect(attempts.map(\.attempt) == [1, 2, 3])
        let firstDelay = attempts[1].at.timeIntervalSince(attempts[0].at)
        let secondDelay = attempts[2].at.timeIntervalSince(attempts[1].at)
        // Tier delays are 1 s then 2 s, each with up to 25 % jitter.
        #expect(firstDelay >= 0.9 && firstDelay < 1.9, "first delay \(firstDelay)")
        #expect(secondDelay >= 1.9 && secondDelay < 3.5, "second delay \(secondDelay)")
        #expect(secondDelay > firstDelay)
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("SIGTERM lets jobs in flight finish and be acknowledged, and the process exits 0")
    func gracefulShutdownDrains() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start(["MINGUS_DRAIN_TIMEOUT": "20"])
        for index in 0..<10 {
            try await worker.publish("slow", json: #"{"key":"slow\#(index)","millis":2000}"#)
        }
        let started = try await eventually {
            try await worker.database.query(
                "SELECT count(*) FROM runtime_test_attempts WHERE worker = \(worker.name)")[0].decode(Int.self, at: 0) == 10
        }
        #expect(started, "\(process.output.suffix(2000))")
        #expect(try await worker.effectCount() == 0, "the jobs are still running when SIGTERM arrives")
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(20)) == 0, "\(process.output.suffix(2000))")
        #expect(try await worker.effectTotals() == (10, 10))
        // Acknowledged before exit: nothing is left to redeliver.
        #expect(try await worker.depth(worker.queues.queue) == 0)
        await worker.cleanUp()
    }
}
