import Foundation
public import Logging
import MingusCore
public import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ends the process when stopping takes longer than `deadline`. Draining cancels what is still
/// running after the drain timeout, but a call that does not answer cancellation (a database
/// call waiting on a lock) would keep a stopping worker alive for ever. Exiting is safe: the
/// job's message was never acknowledged, so the broker delivers it again, and its transaction
/// is rolled back when its connection closes. The exit code is 70 (`EX_SOFTWARE`).
public struct ShutdownDeadline: Service {
    /// The exit code when the deadline passes.
    public static let exitCode: Int32 = 70

    let deadline: Duration
    let logger: Logger

    public init(deadline: Duration, logger: Logger) {
        self.deadline = deadline
        self.logger = logger
    }

    public func run() async throws {
        // Returns when stopping begins: a signal (graceful shutdown) or the group's cancellation.
        try? await gracefulShutdown()
        let deadline = self.deadline
        let logger = self.logger
        // A thread, not a task: tasks may be what is stuck.
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: deadline.inSeconds)
            logger.critical("still stopping after the shutdown deadline; exiting now (unacknowledged jobs are delivered again)",
                            metadata: ["mingus.shutdown.deadline_seconds": "\(deadline.inSeconds)"])
            _exit(Self.exitCode)
        }
    }
}
