import Foundation
import Logging
import MingusAMQP
import TestSupport
import Testing

/// Opens a connection to the local broker and declares a quorum queue only this test uses.
private func connectWithQueue(
    url: String = TestEnvironment.amqpURL
) async throws -> (AMQPConnection, String) {
    let connection = try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: Logger(label: "test"))
    let queue = TestEnvironment.uniqueName("test_queue")
    try await connection.declare(AMQPTopology(queues: [.quorum(queue)]))
    return (connection, queue)
}

private func message(_ text: String) -> AMQPMessage {
    AMQPMessage(body: Array(text.utf8), properties: AMQPProperties(contentType: "text/plain", messageID: UUID().uuidString))
}

@Suite("AMQP client against the local RabbitMQ")
struct AMQPClientTests {
    @Test("10,000 messages published with confirms are consumed exactly once")
    func publishAndConsumeExactlyOnce() async throws {
        let (connection, queue) = try await connectWithQueue()
        let count = 10_000
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask { try await connection.publish(message("\(index)"), exchange: "", routingKey: queue) }
            }
            try await group.waitForAll()
        }
        #expect(try await connection.queueInfo(queue).messageCount == UInt32(count))

        var seen = Set<Int>()
        var duplicates = 0
        let consumer = try await connection.consume(queue: queue, prefetch: 200)
        for try await delivery in consumer {
            let index = try #require(Int(String(decoding: delivery.body, as: UTF8.self)))
            if !seen.insert(index).inserted { duplicates += 1 }
            try delivery.ack()
            if seen.count == count { break }
        }
        #expect(duplicates == 0)
        #expect(seen == Set(0..<count))
        // Acknowledgements are asynchronous: a quorum queue applies them shortly after they arrive,
        // and a connection closed before that gets the rest redelivered. A cancelled consumer
        // stays on the queue's count until every delivery to it is settled: wait for that.
        await consumer.cancel()
        let settled = try await eventually { try await connection.queueInfo(queue).consumerCount == 0 }
        #expect(settled, "the broker applied every acknowledgement")
        await connection.close()

        // Every message was acknowledged: nothing is left to redeliver.
        let check = try await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL), logger: Logger(label: "test"))
        #expect(try await check.queueInfo(queue).messageCount == 0)
        try await check.deleteQueue(queue)
        await check.close()
    }

    @Test("a cancelled consumer of a quorum queue is counted until its deliveries are settled")
    func cancelledConsumerCountedUntilSettled() async throws {
        let (connection, queue) = try await connectWithQueue()
        try await connection.publish(message("held"), exchange: "", routingKey: queue)
        let consumer = try await connection.consume(queue: queue, prefetch: 10)
        var iterator = consumer.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        await consumer.cancel()
        #expect(try await connection.queueInfo(queue).consumerCount == 1, "one delivery is still unsettled")
        try delivery.ack()
        #expect(try await eventually { try await connection.queueInfo(queue).consumerCount == 0 })
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test("acknowledgements sent together settle exactly the deliveries acknowledged, around gaps and a nack")
    func gatheredAcknowledgementsSettleOnlyTheirDeliveries() async throws {
        let (connection, queue) = try await connectWithQueue()
        for index in 0..<20 { try await connection.publish(message("\(index)"), exchange: "", routingKey: queue) }
        let consumer = try await connection.consume(queue: queue, prefetch: 20)
        var deliveries: [Int: AMQPDelivery] = [:]
        for try await delivery in consumer {
            deliveries[try #require(Int(String(decoding: delivery.body, as: UTF8.self)))] = delivery
            if deliveries.count == 20 { break }
        }
        // The last first, a gap at 4 left unsettled, 11 requeued between the acknowledgements:
        // one acknowledgement covering everything up to 19 would settle 4 and 11 too.
        for index in [19, 0, 1, 2, 3, 5, 6, 7, 8, 9, 10] { try deliveries[index]!.ack() }
        try deliveries[11]!.nack(requeue: true)
        for index in 12...18 { try deliveries[index]!.ack() }
        await consumer.cancel()
        #expect(try await eventually { try await connection.queueInfo(queue).messageCount == 1 }, "11 is back in the queue")
        #expect(try await connection.queueInfo(queue).consumerCount == 1, "4 is still unsettled")
        await connection.close()

        // Closing the connection requeues 4: exactly 4 and 11 are left.
        let check = try await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL), logger: Logger(label: "test"))
        #expect(try await eventually { try await check.queueInfo(queue).messageCount == 2 })
        var left: Set<String> = []
        while let delivery = try await check.get(queue: queue) {
            left.insert(String(decoding: delivery.body, as: UTF8.self))
            try delivery.ack()
        }
        #expect(left == ["4", "11"])
        try await check.deleteQueue(queue)
        await check.close()
    }

    @Test("a nacked message with requeue is delivered again, marked redelivered")
    func nackRequeueRedelivers() async throws {
        let (connection, queue) = try await connectWithQueue()
        try await connection.publish(message("again"), exchange: "", routingKey: queue)
        let consumer = try await connection.consume(queue: queue, prefetch: 10)
        var iterator = consumer.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(!first.redelivered)
        try first.nack(requeue: true)
        let second = try #require(try await iterator.next())
        #expect(second.body == Array("again".utf8))
        #expect(second.redelivered)
        #expect(second.properties.messageID == first.properties.messageID)
        try second.ack()
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test("publishing to a missing exchange fails with the broker's 404, and the next publish works")
    func missingExchange() async throws {
        let (connection, queue) = try await connectWithQueue()
        let missing = TestEnvironment.uniqueName("no_such_exchange")
        let error = await #expect(throws: AMQPError.self) {
            try await connection.publish(message("lost"), exchange: missing, routingKey: "x")
        }
        #expect(error?.kind == .channelClosed)
        #expect(error?.replyCode == 404)
        #expect(error?.replyText?.contains("NOT_FOUND") == true)
        #expect(error?.replyText?.contains(missing) == true)

        try await connection.publish(message("kept"), exchange: "", routingKey: queue)
        let delivery = try #require(try await connection.get(queue: queue))
        #expect(delivery.body == Array("kept".utf8))
        try delivery.ack()
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test("an unroutable mandatory message is reported as returned with 312 NO_ROUTE")
    func mandatoryReturned() async throws {
        let connection = try await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL), logger: Logger(label: "test"))
        let exchange = TestEnvironment.uniqueName("test_exchange")
        try await connection.declare(AMQPTopology(exchanges: [.init(name: exchange, kind: .direct, durable: false)]))
        let error = await #expect(throws: AMQPError.self) {
            try await connection.publish(message("nowhere"), exchange: exchange, routingKey: "unbound", mandatory: true)
        }
        #expect(error?.kind == .returned)
        #expect(error?.replyCode == 312)
        // Without `mandatory` the broker drops it silently and still confirms.
        try await connection.publish(message("dropped"), exchange: exchange, routingKey: "unbound")
        try await connection.deleteExchange(exchange)
        await connection.close()
    }

    @Test("headers and properties survive the round trip")
    func propertiesRoundTrip() async throws {
        let (connection, queue) = try await connectWithQueue()
        var properties = AMQPProperties(contentType: "application/json", messageID: "m-1", type: "payment.requested")
        properties.headers = [
            "x-attempt": 3, "cloudEvents:source": "/gateway", "flag": true,
            "nested": .table(["a": .array([1, "two"])]),
        ]
        properties.correlationID = "c-1"
        properties.timestamp = Date(timeIntervalSince1970: 1_800_000_000)
        try await connection.publish(AMQPMessage(body: [0, 1, 2, 255], properties: properties), exchange: "", routingKey: queue)
        let delivery = try #require(try await connection.get(queue: queue))
        #expect(delivery.body == [0, 1, 2, 255])
        var headers = delivery.properties.headers
        #expect(headers.removeValue(forKey: "x-delivery-count") == 0, "quorum queues count deliveries")
        #expect(headers == properties.headers)
        #expect(delivery.properties.messageID == "m-1")
        #expect(delivery.properties.type == "payment.requested")
        #expect(delivery.properties.correlationID == "c-1")
        #expect(delivery.properties.timestamp == properties.timestamp)
        #expect(delivery.properties.persistent)
        try delivery.ack()
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test("heartbeats keep the connection alive while its user sleeps for more than two intervals")
    func heartbeatsWhileCallerSleeps() async throws {
        let (connection, queue) = try await connectWithQueue(url: TestEnvironment.amqpURL + "?heartbeat=1")
        let consumer = try await connection.consume(queue: queue, prefetch: 1)
        // With a 1 s heartbeat the broker closes a silent connection after about 2 s.
        try await Task.sleep(for: .seconds(4))
        #expect(connection.isOpen)
        try await connection.publish(message("still here"), exchange: "", routingKey: queue)
        var iterator = consumer.makeAsyncIterator()
        let delivery = try #require(try await iterator.next())
        #expect(delivery.body == Array("still here".utf8))
        try delivery.ack()
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test("inspecting a missing queue fails with 404 and leaves the connection usable")
    func missingQueueInfo() async throws {
        let (connection, queue) = try await connectWithQueue()
        let error = await #expect(throws: AMQPError.self) {
            try await connection.queueInfo(TestEnvironment.uniqueName("no_such_queue"))
        }
        #expect(error?.replyCode == 404)
        #expect(try await connection.queueInfo(queue).messageCount == 0)
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test("bad credentials give one clear error line")
    func badCredentials() async throws {
        let error = await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(
                try AMQPConfiguration(url: "amqp://guest:wrong@127.0.0.1:\(TestEnvironment.amqpPort)/"), logger: Logger(label: "test"))
        }
        #expect(error?.kind == .authenticationFailed)
        #expect(error?.isRecoverable == false)
        let text = try #require(error?.description)
        #expect(!text.contains("\n"))
        #expect(!text.contains("wrong"), "the password never appears in errors")
        #expect(text.contains("127.0.0.1:\(TestEnvironment.amqpPort)"))
    }

    @Test("a closed port gives one clear, recoverable error line")
    func connectionRefused() async throws {
        let error = await #expect(throws: AMQPError.self) {
            _ = try await AMQPConnection.connect(try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:1/"), logger: Logger(label: "test"))
        }
        #expect(error?.kind == .connectionFailed)
        #expect(error?.isRecoverable == true)
        #expect(error?.description.contains("\n") == false)
    }
}
