import CRabbitMQ
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The connection's thread-confined side: the librabbitmq connection, its channels, the
/// publishes awaiting confirms and the consumers. Every method runs on the connection's thread.
final class ConnectionWorker {
    private static let publishChannel: UInt16 = 1
    private static let operationsChannel: UInt16 = 2

    private struct PendingConfirm {
        let continuation: CheckedContinuation<Void, any Error>
        let messageID: String?
        /// When the publisher stops waiting for the broker's answer.
        let deadline: ContinuousClock.Instant?
    }

    private struct Consumer {
        let tag: String
        let continuation: AsyncThrowingStream<AMQPDelivery, any Error>.Continuation
    }

    private let core: ConnectionCore
    private let connection: amqp_connection_state_t
    private let socketFD: Int32
    private let pollInterval: Int32
    private var logger: Logger { core.logger }

    private var openChannels: Set<UInt16> = []
    private var channelEpochs: [UInt16: UInt64] = [:]
    private var nextConsumerChannel: UInt16 = 3
    private var consumers: [UInt16: Consumer] = [:]
    /// Each consumer channel's deliveries not settled yet.
    private var unsettled: [UInt16: UnsettledDeliveries] = [:]
    /// Acknowledgements asked for since the last command was taken, sent together by ``sendAcks()``.
    private var acksToSend: [UInt16: [UInt64]] = [:]

    private var nextPublishSequence: UInt64 = 1
    private var lowestUnconfirmed: UInt64 = 1
    private var pendingConfirms: [UInt64: PendingConfirm] = [:]
    /// The earliest deadline among pending confirms, if any has one.
    private var earliestConfirmDeadline: ContinuousClock.Instant?
    /// Returned mandatory messages by message id, until their confirm arrives.
    private var returned: [String: AMQPError] = [:]
    /// Publishes held back while the broker blocks the connection.
    private var heldPublishes: [HeldPublish] = []

    private struct HeldPublish {
        let deadline: ContinuousClock.Instant?
        let continuation: CheckedContinuation<Void, any Error>
        let send: () -> Void
    }
    private var blocked = false

    private var closedError: AMQPError?
    private var closing = false

    private init(core: ConnectionCore, connection: amqp_connection_state_t) {
        self.core = core
        self.connection = connection
        self.socketFD = amqp_get_sockfd(connection)
        let heartbeat = Int32(core.configuration.heartbeat.components.seconds)
        // Wake at least four times per heartbeat interval to send ours and notice missing ones.
        self.pollInterval = heartbeat > 0 ? min(1000, heartbeat * 250) : 1000
    }

    // MARK: Opening and the loop

    /// Connects, negotiates TLS when configured, and logs in.
    static func open(core: ConnectionCore) throws -> ConnectionWorker {
        let configuration = core.configuration
        guard let connection = amqp_new_connection() else {
            throw AMQPError(.library, "cannot allocate an AMQP connection")
        }
        let target = configuration.redactedDescription
        do {
            let socket = try makeSocket(connection, configuration)
            var timeout = timeval(configuration.connectTimeout)
            let status = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &timeout)
            if status != AMQP_STATUS_OK.rawValue {
                throw AMQPError(.connectionFailed, "cannot connect to RabbitMQ at \(target): \(describe(status))")
            }
            _ = amqp_set_handshake_timeout(connection, &timeout)
            let heartbeat = Int32(configuration.heartbeat.components.seconds)
            let reply = mingus_amqp_login_plain(
                connection, configuration.virtualHost, 2047, 131_072, heartbeat,
                configuration.user, configuration.password, configuration.connectionName)
            switch reply.reply_type {
            case AMQP_RESPONSE_NORMAL:
                break
            case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == MINGUS_CONNECTION_CLOSE:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                let code = Int(close.reply_code)
                let kind: AMQPError.Kind = code == 403 ? .authenticationFailed : .connectionFailed
                throw AMQPError(kind, "RabbitMQ at \(target) refused the login", replyCode: code,
                                replyText: close.reply_text.string)
            case AMQP_RESPONSE_LIBRARY_EXCEPTION:
                // RabbitMQ closes the socket on bad credentials for clients that do not ask for a reason.
                throw AMQPError(.authenticationFailed,
                                "RabbitMQ at \(target) closed the connection during login (check user, password and vhost): \(describe(reply.library_error))")
            default:
                throw AMQPError(.connectionFailed, "RabbitMQ at \(target) refused the login")
            }
        } catch {
            amqp_destroy_connection(connection)
            throw error
        }
        core.logger.debug("AMQP connection open", metadata: ["mingus.amqp.vhost": "\(configuration.virtualHost)"])
        return ConnectionWorker(core: core, connection: connection)
    }

    private static func makeSocket(_ connection: amqp_connection_state_t, _ configuration: AMQPConfiguration) throws -> OpaquePointer {
        guard let tls = configuration.tls else {
            guard let socket = amqp_tcp_socket_new(connection) else {
                throw AMQPError(.library, "cannot create a TCP socket")
            }
            return socket
        }
        guard let socket = amqp_ssl_socket_new(connection) else {
            throw AMQPError(.library, "cannot create a TLS socket")
        }
        amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
        amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
        if let ca = tls.caCertificatePath, amqp_ssl_socket_set_cacert(socket, ca) != AMQP_STATUS_OK.rawValue {
            throw AMQPError(.connectionFailed, "cannot read the CA certificate file \(ca)")
        }
        if let certificate = tls.certificatePath, let key = tls.keyPath,
           amqp_ssl_socket_set_key(socket, certificate, key) != AMQP_STATUS_OK.rawValue {
            throw AMQPError(.connectionFailed, "cannot read the client certificate \(certificate) or key \(key)")
        }
        return socket
    }

    /// Serves commands and frames until the connection closes; returns why (nil when closed on request).
    func run() -> AMQPError? {
        while closedError == nil && !closing {
            for command in core.takeCommands() {
                if closedError != nil || closing {
                    command.fail(closedError ?? AMQPError(.connectionClosed, "connection closed by the application"))
                } else {
                    command.run(self)
                }
            }
            sendAcks()
            if closedError != nil || closing { break }
            readFrames(timeoutMicroseconds: 0)
            expireConfirms()
            if closedError != nil || core.hasCommands { continue }
            if waitForInput() {
                readFrames(timeoutMicroseconds: 0)
            } else {
                // Idle for a poll interval: a short wait lets librabbitmq notice a missed heartbeat.
                readFrames(timeoutMicroseconds: 1000)
            }
        }
        if closing && closedError == nil {
            // Close consumer channels first: the broker answers channel.close after it has taken the
            // acknowledgements sent before it on that channel.
            for channel in openChannels.filter({ $0 > Self.operationsChannel }).sorted() {
                let reply = amqp_channel_close(connection, channel, Int32(AMQP_REPLY_SUCCESS))
                if reply.reply_type != AMQP_RESPONSE_NORMAL { break }
                openChannels.remove(channel)
            }
            let reply = amqp_connection_close(connection, Int32(AMQP_REPLY_SUCCESS))
            if reply.reply_type != AMQP_RESPONSE_NORMAL {
                logger.debug("AMQP close handshake failed; closing the socket")
            }
        }
        let reason = closedError
        failEverything(reason ?? AMQPError(.connectionClosed, "connection closed by the application"))
        amqp_destroy_connection(connection)
        return reason
    }

    /// Waits until the socket or the wake-up pipe is readable; false on timeout.
    private func waitForInput() -> Bool {
        var fds = [
            pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: core.wakeReadFD, events: Int16(POLLIN), revents: 0),
        ]
        let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress!, 2, pollInterval) }
        return ready > 0
    }

    func closeRequested() {
        closing = true
    }

    // MARK: Frames

    private func readFrames(timeoutMicroseconds: Int) {
        var timeout = timeval(tv_sec: 0, tv_usec: timeoutMicroseconds)
        while closedError == nil {
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame_noblock(connection, &frame, &timeout)
            timeout = timeval(tv_sec: 0, tv_usec: 0)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            guard status == AMQP_STATUS_OK.rawValue else {
                connectionFailed(AMQPError(.connectionClosed, "AMQP connection lost: \(Self.describe(status))"))
                return
            }
            if frame.frame_type == UInt8(AMQP_FRAME_METHOD) {
                handleMethod(channel: frame.channel, method: frame.payload.method)
            }
        }
        if closedError == nil {
            amqp_maybe_release_buffers(connection)
        }
    }

    private func handleMethod(channel: UInt16, method: amqp_method_t) {
        switch method.id {
        case MINGUS_BASIC_DELIVER:
            let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let consumerTag = deliver.consumer_tag.string
            let exchange = deliver.exchange.string
            let routingKey = deliver.routing_key.string
            let deliveryTag = deliver.delivery_tag
            let redelivered = deliver.redelivered != 0
            guard let (properties, body) = readContent(channel: channel) else { return }
            let tag = AMQPDeliveryTag(channel: channel, value: deliveryTag, channelEpoch: channelEpochs[channel, default: 0])
            guard let consumer = consumers[channel], consumer.tag == consumerTag else {
                // Arrived after the consumer was cancelled: give it back to the queue at once.
                _ = amqp_basic_nack(connection, channel, deliveryTag, 0, 1)
                return
            }
            unsettled[channel]?.delivered(deliveryTag)
            consumer.continuation.yield(AMQPDelivery(
                body: body, properties: properties, exchange: exchange, routingKey: routingKey,
                redelivered: redelivered, tag: tag, messageCount: nil, settler: core))
        case MINGUS_BASIC_ACK where channel == Self.publishChannel:
            let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nackedBy: nil)
        case MINGUS_BASIC_NACK where channel == Self.publishChannel:
            let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0,
                    nackedBy: AMQPError(.nacked, "the broker refused the message (basic.nack)"))
        case MINGUS_BASIC_RETURN:
            let basicReturn = method.decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let error = AMQPError(.returned, "message returned as unroutable", replyCode: Int(basicReturn.reply_code),
                                  replyText: basicReturn.reply_text.string)
            guard let (properties, _) = readContent(channel: channel) else { return }
            if let id = properties.messageID { returned[id] = error }
        case MINGUS_BASIC_CANCEL:
            if let consumer = consumers.removeValue(forKey: channel) {
                consumer.continuation.finish(throwing: AMQPError(.consumerCancelled, "the broker cancelled the consumer (queue deleted?)"))
            }
        case MINGUS_CHANNEL_CLOSE:
            let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = AMQPError(.channelClosed, "the broker closed channel \(channel)", replyCode: Int(close.reply_code),
                                  replyText: close.reply_text.string)
            acknowledgeChannelClose(channel)
            channelClosed(channel, error)
        case MINGUS_CONNECTION_CLOSE:
            let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var ok = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(connection, 0, MINGUS_CONNECTION_CLOSE_OK, &ok)
            connectionFailed(AMQPError(.connectionClosed, "the broker closed the connection",
                                       replyCode: Int(close.reply_code), replyText: close.reply_text.string))
        case MINGUS_CONNECTION_BLOCKED:
            let blockedMethod = method.decoded.assumingMemoryBound(to: amqp_connection_blocked_t.self).pointee
            blocked = true
            core.setBlocked(true, reason: blockedMethod.reason.string)
        case MINGUS_CONNECTION_UNBLOCKED:
            blocked = false
            core.setBlocked(false, reason: "")
            let held = heldPublishes
            heldPublishes = []
            for publish in held { publish.send() }
        default:
            logger.debug("ignoring AMQP method", metadata: ["mingus.amqp.method": "\(method.id)", "mingus.amqp.channel": "\(channel)"])
        }
    }

    /// Reads the header and body frames that follow a deliver, return or get-ok.
    private func readContent(channel: UInt16) -> (AMQPProperties, [UInt8])? {
        var message = amqp_message_t()
        let reply = amqp_read_message(connection, channel, &message, 0)
        guard reply.reply_type == AMQP_RESPONSE_NORMAL else {
            connectionFailed(AMQPError(.connectionClosed, "AMQP connection lost while reading a message: \(Self.describe(reply.library_error))"))
            return nil
        }
        defer { amqp_destroy_message(&message) }
        return (AMQPProperties(message.properties), message.body.array)
    }

    // MARK: Publishing

    func publish(
        _ message: AMQPMessage, exchange: String, routingKey: String, mandatory: Bool,
        deadline: ContinuousClock.Instant?, continuation: CheckedContinuation<Void, any Error>
    ) {
        if blocked {
            heldPublishes.append(HeldPublish(deadline: deadline, continuation: continuation) { [unowned self] in
                publish(message, exchange: exchange, routingKey: routingKey, mandatory: mandatory, deadline: deadline,
                        continuation: continuation)
            })
            noteDeadline(deadline)
            return
        }
        do {
            try ensureChannel(Self.publishChannel) {
                _ = amqp_confirm_select(connection, Self.publishChannel)
                try check(amqp_get_rpc_reply(connection), channel: Self.publishChannel, doing: "confirm.select")
                nextPublishSequence = 1
                lowestUnconfirmed = 1
            }
        } catch {
            continuation.resume(throwing: error)
            return
        }
        var properties = message.properties
        if mandatory && properties.messageID == nil {
            properties.messageID = UUID().uuidString  // to match a basic.return with its publish
        }
        let arena = CArena()
        var cProperties = properties.cValue(in: arena)
        let status = message.body.withUnsafeBytes { body in
            amqp_basic_publish(
                connection, Self.publishChannel, arena.bytes(exchange), arena.bytes(routingKey),
                mandatory ? 1 : 0, 0, &cProperties,
                amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            continuation.resume(throwing: AMQPError(.connectionClosed, "publish failed: \(Self.describe(status))"))
            connectionFailed(AMQPError(.connectionClosed, "AMQP connection lost while publishing: \(Self.describe(status))"))
            return
        }
        pendingConfirms[nextPublishSequence] = PendingConfirm(
            continuation: continuation, messageID: mandatory ? properties.messageID : nil, deadline: deadline)
        noteDeadline(deadline)
        nextPublishSequence += 1
    }

    /// Keeps ``earliestConfirmDeadline`` the earliest deadline of any waiting publish.
    private func noteDeadline(_ deadline: ContinuousClock.Instant?) {
        guard let deadline else { return }
        if earliestConfirmDeadline.map({ deadline < $0 }) ?? true { earliestConfirmDeadline = deadline }
    }

    /// Fails the publishes whose deadline has passed without an answer from the broker, or while
    /// held back by a blocked connection (checked at every turn of the loop, so at most a poll
    /// interval late). A late `basic.ack` for one of them finds nothing to resume.
    private func expireConfirms() {
        guard let earliest = earliestConfirmDeadline else { return }
        let now = ContinuousClock.now
        guard earliest <= now else { return }
        earliestConfirmDeadline = nil
        let timeout = AMQPError(.confirmTimeout, "the broker did not confirm the message in time")
        heldPublishes.removeAll { held in
            guard let deadline = held.deadline else { return false }
            if deadline <= now {
                held.continuation.resume(throwing: timeout)
                return true
            }
            noteDeadline(deadline)
            return false
        }
        for (sequence, pending) in pendingConfirms {
            guard let deadline = pending.deadline else { continue }
            if deadline <= now {
                pendingConfirms.removeValue(forKey: sequence)
                pending.continuation.resume(throwing: timeout)
            } else {
                noteDeadline(deadline)
            }
        }
    }

    private func confirm(upTo tag: UInt64, multiple: Bool, nackedBy error: AMQPError?) {
        let tags: ClosedRange<UInt64> = multiple ? min(lowestUnconfirmed, tag)...tag : tag...tag
        for sequence in tags {
            guard let pending = pendingConfirms.removeValue(forKey: sequence) else { continue }
            if let error {
                pending.continuation.resume(throwing: error)
            } else if let id = pending.messageID, let returnedError = returned.removeValue(forKey: id) {
                pending.continuation.resume(throwing: returnedError)
            } else {
                pending.continuation.resume()
            }
        }
        while lowestUnconfirmed < nextPublishSequence && pendingConfirms[lowestUnconfirmed] == nil {
            lowestUnconfirmed += 1
        }
    }

    // MARK: Consuming and settling

    func consume(
        queue: String, prefetch: UInt16,
        continuation: AsyncThrowingStream<AMQPDelivery, any Error>.Continuation
    ) throws -> UInt16 {
        let channel = allocateConsumerChannel()
        try ensureChannel(channel) {}
        _ = amqp_basic_qos(connection, channel, 0, prefetch, 0)
        try check(amqp_get_rpc_reply(connection), channel: channel, doing: "basic.qos")
        let arena = CArena()
        let ok = amqp_basic_consume(connection, channel, arena.bytes(queue), amqp_bytes_t(len: 0, bytes: nil), 0, 0, 0, amqp_empty_table)
        try check(amqp_get_rpc_reply(connection), channel: channel, doing: "basic.consume on \(queue)")
        let tag = ok?.pointee.consumer_tag.string ?? ""
        consumers[channel] = Consumer(tag: tag, continuation: continuation)
        unsettled[channel] = UnsettledDeliveries()
        logger.debug("consuming", metadata: ["mingus.queue": "\(queue)", "mingus.amqp.channel": "\(channel)"])
        return channel
    }

    func cancelConsumer(channel: UInt16) {
        guard let consumer = consumers.removeValue(forKey: channel) else { return }
        let arena = CArena()
        _ = amqp_basic_cancel(connection, channel, arena.bytes(consumer.tag))
        try? check(amqp_get_rpc_reply(connection), channel: channel, doing: "basic.cancel")
        consumer.continuation.finish()
    }

    /// Settles a delivery. A consumer's acknowledgements wait until the commands taken with
    /// them have run, then go out together (``sendAcks()``); anything else is sent at once,
    /// after the acknowledgements asked for before it.
    func settle(_ tag: AMQPDeliveryTag, _ settlement: Settlement) {
        guard openChannels.contains(tag.channel), channelEpochs[tag.channel, default: 0] == tag.channelEpoch else {
            // The channel that delivered it is gone; the broker has already requeued the message.
            logger.debug("settling a delivery of a closed channel is a no-op", metadata: ["mingus.amqp.channel": "\(tag.channel)"])
            return
        }
        if case .ack(multiple: false) = settlement, unsettled[tag.channel] != nil {
            acksToSend[tag.channel, default: []].append(tag.value)
            return
        }
        sendAcks(on: tag.channel)
        send(settlement, tag.value, on: tag.channel)
        switch settlement {
        case .ack(multiple: true), .nack(_, multiple: true):
            unsettled[tag.channel]?.settle(upTo: tag.value)
        default:
            _ = unsettled[tag.channel]?.settle(tag.value)
        }
    }

    /// Sends every channel's gathered acknowledgements.
    private func sendAcks() {
        guard !acksToSend.isEmpty else { return }
        for channel in Array(acksToSend.keys) { sendAcks(on: channel) }
    }

    /// Sends the acknowledgements gathered for `channel` in as few frames as the protocol allows:
    /// the ones below every delivery still unsettled as one `multiple` ack (which settles exactly
    /// them), the others one by one. A tag the channel has no unsettled delivery for (settled
    /// twice) goes alone, so the broker answers it as it would have anyway.
    private func sendAcks(on channel: UInt16) {
        guard var tags = acksToSend.removeValue(forKey: channel), !tags.isEmpty,
              var deliveries = unsettled.removeValue(forKey: channel) else { return }
        tags.sort()
        var acked: [UInt64] = []
        var unknown: [UInt64] = []
        for tag in tags {
            if deliveries.settle(tag) { acked.append(tag) } else { unknown.append(tag) }
        }
        let lowestUnsettled = deliveries.oldest ?? .max
        unsettled[channel] = deliveries
        let covered = acked.prefix { $0 < lowestUnsettled }
        if let last = covered.last {
            send(.ack(multiple: covered.count > 1), last, on: channel)
        }
        for tag in acked.dropFirst(covered.count) + unknown {
            send(.ack(multiple: false), tag, on: channel)
        }
    }

    private func send(_ settlement: Settlement, _ tag: UInt64, on channel: UInt16) {
        guard closedError == nil else { return }
        let status: Int32
        switch settlement {
        case .ack(let multiple):
            status = amqp_basic_ack(connection, channel, tag, multiple ? 1 : 0)
        case .nack(let requeue, let multiple):
            status = amqp_basic_nack(connection, channel, tag, multiple ? 1 : 0, requeue ? 1 : 0)
        case .reject(let requeue):
            status = amqp_basic_reject(connection, channel, tag, requeue ? 1 : 0)
        }
        if status != AMQP_STATUS_OK.rawValue {
            connectionFailed(AMQPError(.connectionClosed, "AMQP connection lost while settling a delivery: \(Self.describe(status))"))
        }
    }

    private func allocateConsumerChannel() -> UInt16 {
        var channel = nextConsumerChannel
        while openChannels.contains(channel) || consumers[channel] != nil {
            channel = channel >= 2047 ? 3 : channel + 1
        }
        nextConsumerChannel = channel >= 2047 ? 3 : channel + 1
        return channel
    }

    // MARK: Operations on channel 2

    func declare(_ topology: AMQPTopology) throws {
        let channel = Self.operationsChannel
        try ensureChannel(channel) {}
        for exchange in topology.exchanges {
            let arena = CArena()
            _ = amqp_exchange_declare(connection, channel, arena.bytes(exchange.name), arena.bytes(exchange.kind.rawValue),
                                      0, exchange.durable ? 1 : 0, 0, 0, arena.table(exchange.arguments))
            try check(amqp_get_rpc_reply(connection), channel: channel, doing: "declaring exchange \(exchange.name)")
        }
        for queue in topology.queues {
            let arena = CArena()
            _ = amqp_queue_declare(connection, channel, arena.bytes(queue.name), 0, queue.durable ? 1 : 0,
                                   queue.exclusive ? 1 : 0, queue.autoDelete ? 1 : 0, arena.table(queue.arguments))
            try check(amqp_get_rpc_reply(connection), channel: channel, doing: "declaring queue \(queue.name)")
        }
        for binding in topology.bindings {
            let arena = CArena()
            _ = amqp_queue_bind(connection, channel, arena.bytes(binding.queue), arena.bytes(binding.exchange),
                                arena.bytes(binding.routingKey), amqp_empty_table)
            try check(amqp_get_rpc_reply(connection), channel: channel,
                      doing: "binding \(binding.queue) to \(binding.exchange) with \(binding.routingKey)")
        }
    }

    func queueInfo(_ queue: String) throws -> AMQPQueueInfo {
        let channel = Self.operationsChannel
        try ensureChannel(channel) {}
        let arena = CArena()
        let ok = amqp_queue_declare(connection, channel, arena.bytes(queue), 1, 0, 0, 0, amqp_empty_table)
        try check(amqp_get_rpc_reply(connection), channel: channel, doing: "inspecting queue \(queue)")
        return AMQPQueueInfo(name: queue, messageCount: ok?.pointee.message_count ?? 0, consumerCount: ok?.pointee.consumer_count ?? 0)
    }

    func purgeQueue(_ queue: String) throws -> UInt32 {
        let channel = Self.operationsChannel
        try ensureChannel(channel) {}
        let arena = CArena()
        let ok = amqp_queue_purge(connection, channel, arena.bytes(queue))
        try check(amqp_get_rpc_reply(connection), channel: channel, doing: "purging queue \(queue)")
        return ok?.pointee.message_count ?? 0
    }

    func deleteQueue(_ queue: String) throws {
        let channel = Self.operationsChannel
        try ensureChannel(channel) {}
        let arena = CArena()
        _ = amqp_queue_delete(connection, channel, arena.bytes(queue), 0, 0)
        try check(amqp_get_rpc_reply(connection), channel: channel, doing: "deleting queue \(queue)")
    }

    func deleteExchange(_ exchange: String) throws {
        let channel = Self.operationsChannel
        try ensureChannel(channel) {}
        let arena = CArena()
        _ = amqp_exchange_delete(connection, channel, arena.bytes(exchange), 0)
        try check(amqp_get_rpc_reply(connection), channel: channel, doing: "deleting exchange \(exchange)")
    }

    func get(queue: String) throws -> AMQPDelivery? {
        let channel = Self.operationsChannel
        try ensureChannel(channel) {}
        let arena = CArena()
        let reply = amqp_basic_get(connection, channel, arena.bytes(queue), 0)
        try check(reply, channel: channel, doing: "basic.get from \(queue)")
        guard reply.reply.id == MINGUS_BASIC_GET_OK else { return nil }
        let ok = reply.reply.decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        let exchange = ok.exchange.string
        let routingKey = ok.routing_key.string
        let deliveryTag = ok.delivery_tag
        let redelivered = ok.redelivered != 0
        let remaining = ok.message_count
        guard let (properties, body) = readContent(channel: channel) else {
            throw closedError ?? AMQPError(.connectionClosed, "AMQP connection lost")
        }
        let tag = AMQPDeliveryTag(channel: channel, value: deliveryTag, channelEpoch: channelEpochs[channel, default: 0])
        return AMQPDelivery(body: body, properties: properties, exchange: exchange, routingKey: routingKey,
                            redelivered: redelivered, tag: tag, messageCount: remaining, settler: core)
    }

    // MARK: Channels and errors

    /// Opens `channel` unless it is open, then runs `setUp` once for the new channel.
    private func ensureChannel(_ channel: UInt16, setUp: () throws -> Void) throws {
        if let closedError { throw closedError }
        guard !openChannels.contains(channel) else { return }
        _ = amqp_channel_open(connection, channel)
        try check(amqp_get_rpc_reply(connection), channel: channel, doing: "opening channel \(channel)")
        openChannels.insert(channel)
        channelEpochs[channel, default: 0] += 1
        try setUp()
    }

    /// Turns an RPC reply into an error: a channel error closes the channel, anything else the connection.
    private func check(_ reply: amqp_rpc_reply_t, channel: UInt16, doing action: String) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == MINGUS_CHANNEL_CLOSE:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = AMQPError(.channelClosed, "\(action) failed", replyCode: Int(close.reply_code),
                                  replyText: close.reply_text.string)
            acknowledgeChannelClose(channel)
            channelClosed(channel, error)
            throw error
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == MINGUS_CONNECTION_CLOSE:
            let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            var ok = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(connection, 0, MINGUS_CONNECTION_CLOSE_OK, &ok)
            let error = AMQPError(.connectionClosed, "\(action) failed: the broker closed the connection",
                                  replyCode: Int(close.reply_code), replyText: close.reply_text.string)
            connectionFailed(error)
            throw error
        default:
            let error = AMQPError(.connectionClosed, "\(action) failed: \(Self.describe(reply.library_error))")
            connectionFailed(error)
            throw error
        }
    }

    private func acknowledgeChannelClose(_ channel: UInt16) {
        var ok = amqp_channel_close_ok_t(dummy: 0)
        _ = amqp_send_method(connection, channel, MINGUS_CHANNEL_CLOSE_OK, &ok)
    }

    /// Forgets a channel the broker closed and fails what depended on it.
    private func channelClosed(_ channel: UInt16, _ error: AMQPError) {
        openChannels.remove(channel)
        unsettled[channel] = nil
        acksToSend[channel] = nil
        logger.warning("AMQP channel closed by the broker", metadata: ["mingus.amqp.channel": "\(channel)", "mingus.error": "\(error)"])
        if channel == Self.publishChannel {
            let pending = pendingConfirms
            pendingConfirms = [:]
            returned = [:]
            for (_, confirm) in pending { confirm.continuation.resume(throwing: error) }
        }
        if let consumer = consumers.removeValue(forKey: channel) {
            consumer.continuation.finish(throwing: error)
        }
    }

    private func connectionFailed(_ error: AMQPError) {
        if closedError == nil { closedError = error }
    }

    private func failEverything(_ error: AMQPError) {
        for (_, confirm) in pendingConfirms { confirm.continuation.resume(throwing: error) }
        pendingConfirms = [:]
        for (_, consumer) in consumers { consumer.continuation.finish(throwing: error) }
        consumers = [:]
        let held = heldPublishes
        heldPublishes = []
        blocked = false
        closedError = closedError ?? error
        for publish in held { publish.send() }  // each fails at once: the connection is closed
        openChannels = []
        unsettled = [:]
        acksToSend = [:]
    }

    static func describe(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }
}

extension timeval {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
