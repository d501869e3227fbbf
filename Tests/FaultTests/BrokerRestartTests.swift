import Foundation
import Logging
import MingusAMQP
import TestSupport
import Testing

/// Tests that stop and start the local services; `make test` runs them after the other suites,
/// one at a time.
@Suite("Broker restart", .serialized)
struct BrokerRestartTests {
    @Test("a RabbitMQ restart ends the consumer and the connection with a recoverable error; a new connection works")
    func rabbitMQRestart() async throws {
        let configuration = try AMQPConfiguration(url: TestEnvironment.amqpURL)
        let connection = try await AMQPConnection.connect(configuration, logger: Logger(label: "test"))
        let queue = TestEnvironment.uniqueName("restart_queue")
        try await connection.declare(AMQPTopology(queues: [.quorum(queue)]))
        try await connection.publish(AMQPMessage(body: Array("before".utf8)), exchange: "", routingKey: queue)
        let consumer = try await connection.consume(queue: queue, prefetch: 10)

        var iterator = consumer.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(first.body == Array("before".utf8))
        // Left unacknowledged: the broker must keep it across the restart.

        try TestEnvironment.services("restart", "rabbitmq")

        let consumerError = await #expect(throws: AMQPError.self) {
            while try await iterator.next() != nil {}
        }
        #expect(consumerError?.isRecoverable == true)
        let closedError = await connection.closed()
        #expect(closedError?.isRecoverable == true)
        #expect(!connection.isOpen)
        #expect(throws: AMQPError.self) { try first.ack() }

        let reconnected = try await AMQPConnection.connect(configuration, logger: Logger(label: "test"))
        let redelivered = try #require(try await reconnected.get(queue: queue))
        #expect(redelivered.body == Array("before".utf8))
        #expect(redelivered.redelivered)
        try redelivered.ack()
        try await reconnected.deleteQueue(queue)
        await reconnected.close()
    }

    @Test("a publish the broker does not confirm in time (a memory alarm blocks the connection) fails with confirmTimeout; publishing works again after the alarm")
    func confirmTimeout() async throws {
        let configuration = try AMQPConfiguration(url: TestEnvironment.amqpURL)
        let connection = try await AMQPConnection.connect(configuration, logger: Logger(label: "test"))
        let queue = TestEnvironment.uniqueName("alarm_queue")
        try await connection.declare(AMQPTopology(queues: [.quorum(queue)]))
        try TestEnvironment.services("rabbitmqctl", "set_vm_memory_high_watermark", "absolute", "1")
        defer { try? TestEnvironment.services("rabbitmqctl", "set_vm_memory_high_watermark", "0.4") }
        do {
            let started = ContinuousClock.now
            let error = await #expect(throws: AMQPError.self) {
                try await connection.publish(AMQPMessage(body: Array("held".utf8)), exchange: "", routingKey: queue,
                                             confirmTimeout: .seconds(1))
            }
            #expect(error?.kind == .confirmTimeout, "\(String(describing: error))")
            #expect(ContinuousClock.now - started >= .seconds(1), "not before its deadline")
        }
        try TestEnvironment.services("rabbitmqctl", "set_vm_memory_high_watermark", "0.4")
        // Once the alarm clears, the connection publishes again (the held message may go too).
        let fresh = try await AMQPConnection.connect(configuration, logger: Logger(label: "test"))
        try await fresh.publish(AMQPMessage(body: Array("after".utf8)), exchange: "", routingKey: queue, confirmTimeout: .seconds(30))
        try await fresh.deleteQueue(queue)
        await fresh.close()
        await connection.close()
    }
}
