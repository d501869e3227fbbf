public import Foundation
public import Logging

/// Settings every Mingus process reads from its environment (prefix `MINGUS_`). A domain's own
/// settings (`MINGUS_ALERTING_CONFIG`, …) are read by the domain from the same environment.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MINGUS_AMQP_URL` | `amqp://guest:guest@127.0.0.1:5673/` | RabbitMQ |
/// | `MINGUS_DATABASE_URL` | `postgresql://mingus@127.0.0.1:5433/mingus` | PostgreSQL (libpq URL or conninfo) |
/// | `MINGUS_HTTP_HOST` / `MINGUS_HTTP_PORT` | `127.0.0.1` / `8080` | gateway listen address |
/// | `MINGUS_METRICS_PORT` | per worker kind; `0` picks a free port | health and metrics server |
/// | `MINGUS_FINANCIAL_KEY_PATH` | `.services/keys/financial.key` | key-encrypting key file |
/// | `MINGUS_LOG_LEVEL` | `info` | trace, debug, info, notice, warning, error, critical |
/// | `MINGUS_WORKER_CONCURRENCY` | `8` | transactions a worker process runs at once |
/// | `MINGUS_WORKER_BATCH_SIZE` | `50` | waiting jobs applied together in one transaction (1: off) |
/// | `MINGUS_DRAIN_TIMEOUT` | `30` | seconds a stopping worker lets jobs in flight finish |
/// | `MINGUS_MAX_ATTEMPTS` | `5` | deliveries of a failing job before it is dead-lettered |
/// | `MINGUS_MIGRATIONS_DIR` | `Contracts/migrations` found from the working directory or the executable | SQL migrations |
/// | `MINGUS_SCHEMAS_DIR` | `Contracts/schemas`, found the same way | JSON Schemas of message bodies |
public struct MingusConfiguration: Sendable {
    public var amqpURL: String
    public var databaseURL: String
    public var httpHost: String
    public var httpPort: Int
    /// nil when unset: each worker kind then uses its own default port.
    public var metricsPort: Int?
    public var financialKeyPath: String
    public var logLevel: Logger.Level
    public var migrationsDirectory: String?
    public var schemasDirectory: String?
    public var workerConcurrency: Int
    public var workerBatchSize: Int
    public var drainTimeout: Duration
    public var maxAttempts: Int

    public static let defaultAMQPURL = "amqp://guest:guest@127.0.0.1:5673/"
    public static let defaultDatabaseURL = "postgresql://mingus@127.0.0.1:5433/mingus"

    /// Reads the configuration; an unparseable number or level is an error naming the variable.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func value(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        func port(_ name: String) throws -> Int? {
            guard let text = value(name) else { return nil }
            guard let port = Int(text), (0...65535).contains(port) else {
                throw ConfigurationError(variable: name, message: "must be a port number 0-65535, got '\(text)'")
            }
            return port
        }
        amqpURL = value("MINGUS_AMQP_URL") ?? Self.defaultAMQPURL
        databaseURL = value("MINGUS_DATABASE_URL") ?? Self.defaultDatabaseURL
        httpHost = value("MINGUS_HTTP_HOST") ?? "127.0.0.1"
        httpPort = try port("MINGUS_HTTP_PORT") ?? 8080
        metricsPort = try port("MINGUS_METRICS_PORT")
        financialKeyPath = value("MINGUS_FINANCIAL_KEY_PATH") ?? ".services/keys/financial.key"
        migrationsDirectory = value("MINGUS_MIGRATIONS_DIR")
        schemasDirectory = value("MINGUS_SCHEMAS_DIR")
        func positive(_ name: String, default fallback: Int, max upper: Int) throws -> Int {
            guard let text = value(name) else { return fallback }
            guard let number = Int(text), number >= 1, number <= upper else {
                throw ConfigurationError(variable: name, message: "must be a whole number 1-\(upper), got '\(text)'")
            }
            return number
        }
        workerConcurrency = try positive("MINGUS_WORKER_CONCURRENCY", default: 8, max: 500)
        workerBatchSize = try positive("MINGUS_WORKER_BATCH_SIZE", default: 50, max: 1000)
        drainTimeout = .seconds(try positive("MINGUS_DRAIN_TIMEOUT", default: 30, max: 3600))
        maxAttempts = try positive("MINGUS_MAX_ATTEMPTS", default: 5, max: 100)
        let levelText = value("MINGUS_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ConfigurationError(variable: "MINGUS_LOG_LEVEL",
                                     message: "must be one of trace, debug, info, notice, warning, error, critical; got '\(levelText)'")
        }
        logLevel = level
    }

    /// The folder of SQL migrations: `MINGUS_MIGRATIONS_DIR`, else `Contracts/migrations` under
    /// the working directory or above the executable (`.build/<config>/` in a checkout).
    public func resolvedMigrationsDirectory() throws -> URL {
        try Self.contractsFolder("migrations", override: migrationsDirectory, variable: "MINGUS_MIGRATIONS_DIR")
    }

    /// The folder of message body schemas: `MINGUS_SCHEMAS_DIR`, else `Contracts/schemas` found
    /// like the migrations.
    public func resolvedSchemasDirectory() throws -> URL {
        try Self.contractsFolder("schemas", override: schemasDirectory, variable: "MINGUS_SCHEMAS_DIR")
    }

    private static func contractsFolder(_ name: String, override: String?, variable: String) throws -> URL {
        if let override { return URL(fileURLWithPath: override) }
        let fileManager = FileManager.default
        var candidates = [URL(fileURLWithPath: fileManager.currentDirectoryPath)]
        var executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<5 {
            executable.deleteLastPathComponent()
            candidates.append(executable)
        }
        for base in candidates {
            let folder = base.appendingPathComponent("Contracts/\(name)")
            var isDirectory: ObjCBool = false
            if fileManager.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue {
                return folder
            }
        }
        throw ConfigurationError(variable: variable,
                                 message: "Contracts/\(name) not found from the working directory or the executable; set it")
    }
}

/// A configuration variable with a value that cannot be used.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var variable: String
    public var message: String

    public init(variable: String, message: String) {
        self.variable = variable
        self.message = message
    }

    public var description: String { "\(variable) \(message)" }
}
