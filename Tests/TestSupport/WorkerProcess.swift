public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A worker executable started by a test: its own process, output in a log file, signals and
/// exit status at hand. Uses posix_spawn and waitpid directly.
public final class WorkerProcess: @unchecked Sendable {
    // @unchecked: `pid` and `exitStatus` are written only by `start` and `wait`, which tests call
    // from one task at a time.
    public let executable: String
    public let logFile: URL
    public private(set) var pid: pid_t = 0
    private var exitStatus: Int32?
    /// Whether ``kill9()`` was called.
    public private(set) var wasKilled = false

    /// The folder holding the package's built executables (next to the test bundle).
    public static var binDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// Starts `executable` (a product name, found in ``binDirectory``) with `arguments` and the
    /// current environment plus `environment`.
    /// `bin` overrides the folder (e.g. a release build for benchmarks).
    public init(_ executable: String, arguments: [String] = [], environment: [String: String], bin: URL? = nil) throws {
        self.executable = executable
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("\(executable)-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let path = (bin ?? Self.binDirectory).appendingPathComponent(executable).path
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { _, new in new }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile.path, O_WRONLY | O_APPEND, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Signals ignored or blocked in the test process would be inherited through exec: the
        // child starts with default dispositions and nothing blocked, so SIGTERM reaches it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in Int32(1)..<32 where signal != SIGKILL && signal != SIGSTOP { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        var child: pid_t = 0
        let result = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw WorkerProcessError(message: "cannot start \(path): errno \(result)") }
        pid = child
    }

    deinit {
        if exitStatus == nil && pid > 0 {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// Sends a signal (SIGTERM, SIGKILL, …).
    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code (128 + signal when a
    /// signal ended it), or nil if it is still running.
    public func wait(timeout: Duration) async throws -> Int32? {
        if let exitStatus { return exitStatus }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                exitStatus = code
                return code
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    /// Stops the process with SIGKILL and reaps it.
    public func kill9() async throws {
        wasKilled = true
        signal(SIGKILL)
        _ = try await wait(timeout: .seconds(10))
    }

    /// What the process wrote so far.
    public var output: String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    /// The JSON log lines the process wrote so far whose `msg` is `message`, in order.
    public func logLines(_ message: String) -> [[String: Any]] {
        output.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["msg"] as? String == message else { return nil }
            return object
        }
    }
}

/// A worker process could not be started.
public struct WorkerProcessError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
