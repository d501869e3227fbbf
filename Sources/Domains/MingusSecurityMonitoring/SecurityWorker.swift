public import Foundation
import Logging
import MingusCore
import MingusPostgres
public import MingusRuntime
import MingusSecurity

/// The security worker's handlers: detections into incidents and their playbooks, playbooks
/// carried on after a person's decision, escalations of missed targets, DigitalOcean polls.
public struct SecurityWorker: Sendable {
    public let engine: IncidentEngine
    public let monitor: DropletMonitor?

    public init(engine: IncidentEngine, monitor: DropletMonitor?) {
        self.engine = engine
        self.monitor = monitor
    }

    /// The handlers, each body checked against its schema.
    public func registry(schema: (String) throws -> JSONSchema) throws -> JobRegistry {
        var registry = JobRegistry()
        let engine = self.engine
        registry.register(SecurityDetectionJob.type, as: SecurityDetectionJob.self, schema: try schema(SecurityDetectionJob.type),
                          batchable: false) { job, context in
            try await engine.take(job, context: context)
        }
        registry.register(SecurityStepJob.type, as: SecurityStepJob.self, schema: try schema(SecurityStepJob.type), batchable: false) { job, context in
            try await engine.work(job.incidentId, context: context)
        }
        registry.register(SecurityEscalateJob.type, as: SecurityEscalateJob.self, schema: try schema(SecurityEscalateJob.type)) { _, context in
            try await engine.escalate(context: context)
        }
        let monitor = self.monitor
        registry.register(SecurityPollJob.type, as: SecurityPollJob.self, schema: try schema(SecurityPollJob.type), batchable: false) { _, context in
            guard let monitor else {
                context.logger.info("DigitalOcean polling is off on this worker (no token); poll skipped")
                return
            }
            _ = try await monitor.poll(context)
        }
        return registry
    }
}

/// Where the DigitalOcean token comes from: `DIGITALOCEAN_TOKEN`, or the file named by
/// `MINGUS_DO_TOKEN_FILE`; nil when neither is set (polling off).
func digitalOceanToken(_ environment: [String: String]) throws -> String? {
    if let token = environment["DIGITALOCEAN_TOKEN"], !token.isEmpty { return token.trimmingCharacters(in: .whitespacesAndNewlines) }
    guard let path = environment["MINGUS_DO_TOKEN_FILE"], !path.isEmpty else { return nil }
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ConfigurationError(variable: "MINGUS_DO_TOKEN_FILE", message: "cannot read \(path)")
    }
    let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !token.isEmpty else { throw ConfigurationError(variable: "MINGUS_DO_TOKEN_FILE", message: "\(path) is empty") }
    return token
}

extension WorkerDefinition {
    /// `mingus-security-worker`: queue `mingus.security`, metrics on 9109.
    ///
    /// Reads `MINGUS_SECURITY_PLAYBOOKS` (default `Deploy/security-playbooks.yaml`),
    /// `MINGUS_DO_RULES` (default `Deploy/droplet-rules.yaml`), the DigitalOcean token from
    /// `DIGITALOCEAN_TOKEN` or `MINGUS_DO_TOKEN_FILE` (polling is off without one),
    /// `MINGUS_DO_API_URL` (default `https://api.digitalocean.com`), `MINGUS_DO_POLL_SCHEDULE`
    /// (cron, default every minute, `off` for none), and the key-encrypting key
    /// (`MINGUS_FINANCIAL_KEY_PATH`, when readable) for `rotate_data_keys` steps. A token the API
    /// refuses stops the worker at start (exit 78). Keeps the `security.escalate` schedule
    /// (every minute).
    public static let securityMonitoring = WorkerDefinition(name: "security", defaultMetricsPort: 9109, sideConnections: 2) { setup in
        let environment = setup.environment
        func file(_ variable: String, _ fallback: String) throws -> String {
            try environment[variable].flatMap { $0.isEmpty ? nil : $0 } ?? MingusConfiguration.projectFile(fallback, variable: variable).path
        }
        let playbooksPath = try file("MINGUS_SECURITY_PLAYBOOKS", "Deploy/security-playbooks.yaml")
        let playbooks = try Playbooks.load(path: playbooksPath)
        let kek = try? KeyEncryptingKey(contentsOf: URL(fileURLWithPath: setup.configuration.financialKeyPath))
        let engine = IncidentEngine(playbooks: playbooks, kek: kek, database: setup.sideDatabase)
        var monitor: DropletMonitor?
        let schedule = environment["MINGUS_DO_POLL_SCHEDULE"].flatMap { $0.isEmpty ? nil : $0 } ?? "* * * * *"
        if schedule != "off", (try? CronSchedule(schedule)) == nil {
            throw ConfigurationError(variable: "MINGUS_DO_POLL_SCHEDULE", message: "'\(schedule)' is not a cron expression")
        }
        if let token = try digitalOceanToken(environment) {
            let rules = try DropletRules.load(path: try file("MINGUS_DO_RULES", "Deploy/droplet-rules.yaml"))
            let base = environment["MINGUS_DO_API_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://api.digitalocean.com"
            guard base.hasPrefix("https://") || base.hasPrefix("http://127.0.0.1") || base.hasPrefix("http://localhost") else {
                throw ConfigurationError(variable: "MINGUS_DO_API_URL", message: "must be https (plain http only to 127.0.0.1 or localhost)")
            }
            let client = DigitalOceanClient(baseURL: base, token: token)
            do {
                try await client.checkToken()
            } catch let error as DigitalOceanError where error.isAuthentication {
                throw ConfigurationError(variable: "DIGITALOCEAN_TOKEN", message: "was refused by \(base) (HTTP \(error.status): \(error.message))")
            } catch {
                setup.logger.warning("cannot reach the DigitalOcean API to check the token; polls will retry",
                                     metadata: ["mingus.error": "\(error)"])
            }
            monitor = DropletMonitor(client: client, rules: rules)
            setup.logger.info("DigitalOcean polling on", metadata: ["mingus.do.api": "\(base)", "mingus.do.rules": "\(rules.rules.map(\.name).joined(separator: ","))"])
        } else {
            setup.logger.info("DigitalOcean polling is off: no DIGITALOCEAN_TOKEN or MINGUS_DO_TOKEN_FILE")
        }
        try await setup.sideDatabase.withTransaction { db in
            try await Scheduler.upsertPeriodic(on: db, name: "security.escalate", cron: "* * * * *", type: SecurityEscalateJob.type)
            if monitor != nil, schedule != "off" {
                try await Scheduler.upsertPeriodic(on: db, name: "security.poll", cron: schedule, type: SecurityPollJob.type)
            }
        }
        setup.logger.info("playbooks loaded", metadata: ["mingus.playbooks": "\(playbooks.playbooks.map(\.name).joined(separator: ","))",
                                                         "mingus.file": "\(playbooksPath)"])
        return WorkerParts(registry: try SecurityWorker(engine: engine, monitor: monitor).registry(schema: setup.schema))
    }
}
