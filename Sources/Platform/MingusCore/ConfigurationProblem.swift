import Foundation
import Logging

/// An error only a change of configuration can fix — a variable that cannot be used, a
/// certificate file that cannot be read — so starting the process again as it is cannot help.
public protocol ConfigurationProblem: Error, CustomStringConvertible {}

extension ConfigurationError: ConfigurationProblem {}

/// The entry point of the Mingus server executables.
public enum MingusProcess {
    /// The exit status of a process stopped by a ``ConfigurationProblem`` (`EX_CONFIG`); the
    /// systemd units do not restart a process that exits with it.
    public static let configurationExitStatus: Int32 = 78

    /// Runs `body`, an executable's whole life. A ``ConfigurationProblem`` is logged (critical,
    /// `mingus.error` saying what to fix) and ends the process with ``configurationExitStatus``
    /// rather than a crash; any other error is thrown on.
    public static func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let problem as any ConfigurationProblem {
            // Does nothing when the body already installed the JSON handler.
            MingusLogging.bootstrap(level: .info)
            Logger(label: "mingus").critical("cannot start: the configuration must be fixed", metadata: ["mingus.error": "\(problem)"])
            exit(configurationExitStatus)
        }
    }
}
