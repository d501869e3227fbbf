import CRabbitMQ
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Work for the connection's thread, with the way to fail it if the connection closes first.
struct ConnectionCommand: Sendable {
    let run: @Sendable (ConnectionWorker) -> Void
    let fail: @Sendable (AMQPError) -> Void
}

/// The thread-safe side of a connection: a command queue the connection's thread drains, the
/// connection's public state, and a pipe that wakes the thread when a command arrives.
final class ConnectionCore: Sendable, DeliverySettler {
    private struct State {
        var commands: [ConnectionCommand] = []
        var isClosed = false
        var closedError: AMQPError?
        var isBlocked = false
        var closeWaiters: [CheckedContinuation<AMQPError?, Never>] = []
        /// A byte is in the wake-up pipe that the thread has not drained yet: commands queued
        /// meanwhile are taken with it, and need no byte of their own.
        var wakePending = false
    }

    let configuration: AMQPConfiguration
    let logger: Logger
    let events: AsyncStream<AMQPConnection.Event>.Continuation
    private let state = Mutex(State())
    /// Read end and write end of the wake-up pipe.
    let wakeReadFD: Int32
    private let wakeWriteFD: Int32

    init(configuration: AMQPConfiguration, logger: Logger, events: AsyncStream<AMQPConnection.Event>.Continuation) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "mingus.amqp.broker"] = "\(configuration.host):\(configuration.port)"
        self.logger = logger
        self.events = events
        var fds: [Int32] = [0, 0]
        let result = fds.withUnsafeMutableBufferPointer { pipe($0.baseAddress!) }
        precondition(result == 0, "pipe() failed: \(errno)")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeReadFD = fds[0]
        wakeWriteFD = fds[1]
    }

    deinit {
        Glibc.close(wakeReadFD)
        Glibc.close(wakeWriteFD)
    }

    var isClosed: Bool { state.withLock { $0.isClosed } }
    var closedError: AMQPError? { state.withLock { $0.closedError } }
    var isBlocked: Bool { state.withLock { $0.isBlocked } }

    /// Starts the connection's thread and waits until it has connected and logged in.
    func start() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let thread = Thread { [self] in
                // Foundation names only the `Thread` object on Linux, not the OS thread.
                mingus_amqp_name_thread("amqp-connection")
                let worker: ConnectionWorker
                do {
                    worker = try ConnectionWorker.open(core: self)
                } catch {
                    let error = error as? AMQPError ?? AMQPError(.connectionFailed, "\(error)")
                    finish(error, wasOpen: false)
                    continuation.resume(throwing: error)
                    return
                }
                continuation.resume()
                let error = worker.run()
                finish(error)
            }
            thread.name = "amqp-connection"
            thread.start()
        }
    }

    /// Queues work for the connection's thread; `continuation` fails at once if the connection is
    /// closed, or later if it closes before the work runs.
    func submit<T>(_ continuation: CheckedContinuation<T, any Error>, _ run: @escaping @Sendable (ConnectionWorker) -> Void) {
        enqueue(ConnectionCommand(run: run, fail: { continuation.resume(throwing: $0) }))
    }

    /// Queues work whose only failure is that the connection is already closed.
    func submitIgnoringClosed(_ run: @escaping @Sendable (ConnectionWorker) -> Void) {
        enqueue(ConnectionCommand(run: run, fail: { _ in }))
    }

    /// Runs `body` on the connection's thread and returns its result.
    func call<T: Sendable>(_ body: @escaping @Sendable (ConnectionWorker) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            submit(continuation) { worker in
                continuation.resume(with: Result { try body(worker) })
            }
        }
    }

    private func enqueue(_ command: ConnectionCommand) {
        if let closedError = append(command) { command.fail(closedError) }
    }

    /// Queues `command` and wakes the thread unless a wake-up is already pending; returns why
    /// the connection is closed instead when it is.
    private func append(_ command: ConnectionCommand) -> AMQPError? {
        let (closedError, needsWake): (AMQPError?, Bool) = state.withLock { state in
            if state.isClosed {
                return (state.closedError ?? AMQPError(.connectionClosed, "connection closed by the application"), false)
            }
            state.commands.append(command)
            defer { state.wakePending = true }
            return (nil, !state.wakePending)
        }
        if needsWake { wake() }
        return closedError
    }

    /// Takes every queued command (on the connection's thread).
    func takeCommands() -> [ConnectionCommand] {
        var byte: UInt8 = 0
        while read(wakeReadFD, &byte, 1) > 0 {}
        return state.withLock { state in
            let commands = state.commands
            state.commands.removeAll(keepingCapacity: true)
            state.wakePending = false
            return commands
        }
    }

    var hasCommands: Bool { state.withLock { !$0.commands.isEmpty } }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
    }

    func settle(_ tag: AMQPDeliveryTag, _ settlement: Settlement) throws {
        if let closedError = append(ConnectionCommand(run: { $0.settle(tag, settlement) }, fail: { _ in })) {
            throw closedError
        }
    }

    func setBlocked(_ blocked: Bool, reason: String) {
        state.withLock { $0.isBlocked = blocked }
        events.yield(blocked ? .blocked(reason) : .unblocked)
        if blocked {
            logger.warning("broker blocked the connection", metadata: ["mingus.amqp.reason": "\(reason)"])
        } else {
            logger.info("broker unblocked the connection")
        }
    }

    /// Asks the thread to close the connection, without waiting.
    func requestClose() {
        submitIgnoringClosed { $0.closeRequested() }
    }

    /// Closes the connection and waits until its thread has finished.
    func close() async {
        requestClose()
        _ = await waitUntilClosed()
    }

    func waitUntilClosed() async -> AMQPError? {
        await withCheckedContinuation { (continuation: CheckedContinuation<AMQPError?, Never>) in
            let closed: (Bool, AMQPError?) = state.withLock { state in
                if state.isClosed { return (true, state.closedError) }
                state.closeWaiters.append(continuation)
                return (false, nil)
            }
            if closed.0 { continuation.resume(returning: closed.1) }
        }
    }

    /// Marks the connection closed, fails the commands still queued and wakes the waiters.
    private func finish(_ error: AMQPError?, wasOpen: Bool = true) {
        let (commands, waiters) = state.withLock { state in
            state.isClosed = true
            state.closedError = error
            let taken = (state.commands, state.closeWaiters)
            state.commands = []
            state.closeWaiters = []
            return taken
        }
        let failure = error ?? AMQPError(.connectionClosed, "connection closed by the application")
        for command in commands { command.fail(failure) }
        for waiter in waiters { waiter.resume(returning: error) }
        events.yield(.closed(error))
        events.finish()
        if let error, wasOpen {
            logger.warning("AMQP connection closed", metadata: ["mingus.error": "\(error)"])
        } else {
            logger.debug("AMQP connection closed")
        }
    }
}
