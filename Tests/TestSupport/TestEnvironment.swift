public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the integration tests find the services `make up` starts, and small helpers they share.
public enum TestEnvironment {
    /// `MINGUS_AMQP_URL`, or the local broker `make up` starts.
    public static var amqpURL: String {
        ProcessInfo.processInfo.environment["MINGUS_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5673/"
    }

    /// `MINGUS_DATABASE_URL`, or the local database `make up` starts.
    public static var databaseURL: String {
        ProcessInfo.processInfo.environment["MINGUS_DATABASE_URL"] ?? "postgresql://mingus@127.0.0.1:5433/mingus"
    }

    /// The port of ``databaseURL``, for tests that build URLs of their own.
    public static var databasePort: Int { URLComponents(string: databaseURL)?.port ?? 5432 }

    /// The port of ``amqpURL``.
    public static var amqpPort: Int { URLComponents(string: amqpURL)?.port ?? 5672 }

    /// The repository's top folder, found from this file's own path.
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// Where the local services keep their data and tools: `MINGUS_SERVICES_DIR`, as for
    /// `Deploy/local/services.sh` and `Deploy/local/python-tools.sh`, or `.services` in the
    /// repository.
    public static var servicesDirectory: URL {
        if let folder = ProcessInfo.processInfo.environment["MINGUS_SERVICES_DIR"], !folder.isEmpty {
            return URL(fileURLWithPath: folder)
        }
        return repositoryRoot.appendingPathComponent(".services")
    }

    /// The `bin` folder of the Python tools' virtual environment (`make python-tools`).
    public static var pythonBin: URL {
        servicesDirectory.appendingPathComponent("python/bin")
    }

    /// The folder of numbered SQL migrations.
    public static var migrationsDirectory: URL {
        repositoryRoot.appendingPathComponent("Contracts/migrations")
    }

    /// Schemas and SQL used only by tests and the test worker.
    public static var fixturesDirectory: URL {
        repositoryRoot.appendingPathComponent("Tests/Fixtures")
    }

    /// A name no other test uses, for queues, exchanges, tables and databases.
    public static func uniqueName(_ prefix: String) -> String {
        let suffix = UUID().uuidString.prefix(8).lowercased()
        return "\(prefix)_\(suffix)"
    }

    /// Runs `Deploy/local/services.sh` with the given arguments and waits for it (blocking the
    /// calling thread); fails when the script fails.
    public static func services(_ arguments: String...) throws {
        let script = repositoryRoot.appendingPathComponent("Deploy/local/services.sh").path
        let command = ([script] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let status = system(command.joined(separator: " "))
        guard status == 0 else {
            throw ServicesScriptError(arguments: arguments, status: status)
        }
    }
}

/// `Deploy/local/services.sh` exited with a failure.
public struct ServicesScriptError: Error, CustomStringConvertible {
    public let arguments: [String]
    public let status: Int32
    public var description: String { "services.sh \(arguments.joined(separator: " ")) exited with \(status)" }
}
