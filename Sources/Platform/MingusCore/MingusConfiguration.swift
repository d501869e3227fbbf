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
/// | `MINGUS_TLS_CERT_FILE` / `MINGUS_TLS_KEY_FILE` | unset: plain HTTP | PEM certificate (chain allowed) and private key: both or neither; when set, the gateway and every health server answer HTTPS only (TLS 1.2 or later), reloaded on SIGHUP |
/// | `MINGUS_CORS_ALLOWED_ORIGINS` | unset: CORS off | comma-separated exact origins (`https://app.example.com`) whose pages may call the gateway |
/// | `MINGUS_CORS_ALLOWED_METHODS` | `GET, POST, PUT, DELETE` | methods a preflight allows |
/// | `MINGUS_CORS_ALLOWED_HEADERS` | `Authorization, Content-Type, Idempotency-Key` | request headers a preflight allows |
/// | `MINGUS_CORS_ALLOW_CREDENTIALS` | `false` | `Access-Control-Allow-Credentials: true` for listed origins |
/// | `MINGUS_CORS_MAX_AGE` | `600` | seconds a browser may cache a preflight answer (0-86400) |
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
    /// How long the gateway trusts an API key verification (a revoked key works this long at most); zero: not at all.
    public var apiKeyCacheLifetime: Duration
    /// The PEM certificate chain and private key HTTP servers present; both nil: plain HTTP.
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    /// Exact origins (`scheme://host[:port]`, lowercased) allowed cross-origin; empty: CORS off.
    public var corsAllowedOrigins: [String]
    public var corsAllowedMethods: [String]
    public var corsAllowedHeaders: [String]
    public var corsAllowCredentials: Bool
    /// Seconds a browser may cache a preflight answer.
    public var corsMaxAge: Int

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
        let cacheText = value("MINGUS_API_KEY_CACHE_SECONDS") ?? "5"
        guard let cacheSeconds = Int(cacheText), (0...300).contains(cacheSeconds) else {
            throw ConfigurationError(variable: "MINGUS_API_KEY_CACHE_SECONDS", message: "must be a whole number 0-300, got '\(cacheText)'")
        }
        apiKeyCacheLifetime = .seconds(cacheSeconds)
        let levelText = value("MINGUS_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else {
            throw ConfigurationError(variable: "MINGUS_LOG_LEVEL",
                                     message: "must be one of trace, debug, info, notice, warning, error, critical; got '\(levelText)'")
        }
        logLevel = level

        tlsCertificateFile = value("MINGUS_TLS_CERT_FILE")
        tlsKeyFile = value("MINGUS_TLS_KEY_FILE")
        if (tlsCertificateFile == nil) != (tlsKeyFile == nil) {
            throw ConfigurationError(
                variable: tlsCertificateFile == nil ? "MINGUS_TLS_CERT_FILE" : "MINGUS_TLS_KEY_FILE",
                message: "must be set together with \(tlsCertificateFile == nil ? "MINGUS_TLS_KEY_FILE" : "MINGUS_TLS_CERT_FILE") (both or neither)")
        }

        func list(_ name: String) -> [String]? {
            value(name).map { text in
                text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
        }
        corsAllowedOrigins = try (list("MINGUS_CORS_ALLOWED_ORIGINS") ?? []).map { try Self.origin($0) }
        corsAllowedMethods = try (list("MINGUS_CORS_ALLOWED_METHODS") ?? ["GET", "POST", "PUT", "DELETE"]).map { method in
            guard Self.isToken(method) else {
                throw ConfigurationError(variable: "MINGUS_CORS_ALLOWED_METHODS", message: "has '\(method)', which is not an HTTP method name")
            }
            return method.uppercased()
        }
        corsAllowedHeaders = try (list("MINGUS_CORS_ALLOWED_HEADERS") ?? ["Authorization", "Content-Type", "Idempotency-Key"]).map { header in
            guard Self.isToken(header) else {
                throw ConfigurationError(variable: "MINGUS_CORS_ALLOWED_HEADERS", message: "has '\(header)', which is not a header name")
            }
            return header
        }
        switch value("MINGUS_CORS_ALLOW_CREDENTIALS")?.lowercased() {
        case nil, "false", "0", "no": corsAllowCredentials = false
        case "true", "1", "yes": corsAllowCredentials = true
        case let other?:
            throw ConfigurationError(variable: "MINGUS_CORS_ALLOW_CREDENTIALS", message: "must be true or false, got '\(other)'")
        }
        if let text = value("MINGUS_CORS_MAX_AGE") {
            guard let seconds = Int(text), (0...86400).contains(seconds) else {
                throw ConfigurationError(variable: "MINGUS_CORS_MAX_AGE", message: "must be a whole number of seconds 0-86400, got '\(text)'")
            }
            corsMaxAge = seconds
        } else {
            corsMaxAge = 600
        }
    }

    /// An allowed origin as browsers send it: `scheme://host` or `scheme://host:port`, nothing
    /// after, lowercased. A trailing slash, a path or `*` would never match, so they are errors.
    private static func origin(_ text: String) throws -> String {
        let variable = "MINGUS_CORS_ALLOWED_ORIGINS"
        guard text != "*" else {
            throw ConfigurationError(variable: variable, message: "lists exact origins; '*' is not accepted")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme, ["http", "https"].contains(scheme.lowercased()),
              let host = components.host, !host.isEmpty, components.path.isEmpty, components.query == nil, components.fragment == nil,
              components.user == nil, components.password == nil
        else {
            throw ConfigurationError(variable: variable,
                                     message: "has '\(text)', which is not an origin like https://app.example.com (scheme and host, an optional port, no path)")
        }
        return text.lowercased()
    }

    /// Whether `text` is an HTTP token (RFC 9110), as method and header names are.
    private static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
        }
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
        return try projectItem("Contracts/\(name)", directory: true, variable: variable)
    }

    /// A file of the project (such as `Deploy/log-rules.yaml`) found from the working directory
    /// or from the executable's folder and its parents, as the contracts are; `variable` names
    /// the setting that overrides it in the error.
    public static func projectFile(_ relativePath: String, variable: String) throws -> URL {
        try projectItem(relativePath, directory: false, variable: variable)
    }

    private static func projectItem(_ relativePath: String, directory: Bool, variable: String) throws -> URL {
        let fileManager = FileManager.default
        var candidates = [URL(fileURLWithPath: fileManager.currentDirectoryPath)]
        var executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<5 {
            executable.deleteLastPathComponent()
            candidates.append(executable)
        }
        for base in candidates {
            let item = base.appendingPathComponent(relativePath)
            var isDirectory: ObjCBool = false
            if fileManager.fileExists(atPath: item.path, isDirectory: &isDirectory), isDirectory.boolValue == directory {
                return item
            }
        }
        throw ConfigurationError(variable: variable,
                                 message: "\(relativePath) not found from the working directory or the executable; set it")
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
