import Foundation
import Logging
import NIOCore
import NIOPosix

/// An error only a change of configuration can fix — a variable that cannot be used, a
/// certificate file that cannot be read — so starting the process again as it is cannot help.
public protocol ConfigurationProblem: Error, CustomStringConvertible {}

extension ConfigurationError: ConfigurationProblem {}

/// The entry point of the Mingus server executables.
public enum MingusProcess {
    /// The exit status of a process stopped by a ``ConfigurationProblem`` (`EX_CONFIG`); the
    /// systemd units do not restart a process that exits with it.
    public static let configurationExitStatus: Int32 = 78

    /// The exit status of a process stopped by any other error; the systemd units restart it.
    public static let failureExitStatus: Int32 = 1

    /// Runs `body`, an executable's whole life. An error that ends it is logged (critical, with
    /// `mingus.error`) and ends the process with an exit status instead of a crash: a
    /// ``ConfigurationProblem`` with ``configurationExitStatus``, saying the configuration must
    /// be fixed, anything else with ``failureExitStatus``.
    ///
    /// First, unless `MINGUS_NIO_EXECUTOR=0`, SwiftNIO's event loops become Swift Concurrency's
    /// global executor: HTTP handlers, jobs and the continuations that the PostgreSQL and AMQP
    /// threads resume then run on the threads that do the network I/O, instead of hopping to a
    /// separate pool for every step (a thread switch each). Runs on the main actor, so that
    /// nothing reaches the global executor before it is installed.
    @MainActor
    public static func run(_ body: @MainActor () async throws -> Void) async {
        if ProcessInfo.processInfo.environment["MINGUS_NIO_EXECUTOR"] != "0" {
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        do {
            try await body()
        } catch {
            // Does nothing when the body already installed the JSON handler.
            MingusLogging.bootstrap(level: .info)
            let logger = Logger(label: "mingus")
            if let problem = error as? any ConfigurationProblem {
                logger.critical("cannot start: the configuration must be fixed", metadata: ["mingus.error": "\(problem)"])
                exit(configurationExitStatus)
            }
            logger.critical("stopped by an error", metadata: ["mingus.error": "\(String(reflecting: error))"])
            exit(failureExitStatus)
        }
    }
}
