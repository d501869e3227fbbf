public import ArgumentParser
import Foundation
import Logging
import MingusRuntime
import MingusAMQP
import MingusCore
import MingusGateway
import MingusSecurity
import MingusPostgres

/// `mingusctl`: the operators' command line for a Mingus cluster.
public struct Mingusctl: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mingusctl",
        abstract: "Operate a Mingus compliance worker cluster.",
        subcommands: [Migrate.self, Topology.self, Status.self, DLQ.self, Schedule.self, Audit.self, Keys.self, APIKey.self, Dashboard.self, Retention.self, Logs.self]
    )

    public init() {}
}

/// Connection options every subcommand shares; flags override the environment.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("amqp-url"), help: "RabbitMQ URL (default: MINGUS_AMQP_URL or \(MingusConfiguration.defaultAMQPURL)).")
    var amqpURL: String?

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL (default: MINGUS_DATABASE_URL or \(MingusConfiguration.defaultDatabaseURL)).")
    var databaseURL: String?

    func configuration() throws -> MingusConfiguration {
        var configuration = try MingusConfiguration()
        if let amqpURL { configuration.amqpURL = amqpURL }
        if let databaseURL { configuration.databaseURL = databaseURL }
        return configuration
    }

    func withDatabase<T>(_ body: (PostgresClient, MingusConfiguration) async throws -> T) async throws -> T {
        let configuration = try configuration()
        let client = PostgresClient(configuration: PostgresConfiguration(url: configuration.databaseURL, poolSize: 2), logger: cliLogger)
        do {
            let result = try await body(client, configuration)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Runs `body` on a connection to the first broker of `MINGUS_AMQP_URL` that answers.
    func withBroker<T>(_ body: (AMQPConnection) async throws -> T) async throws -> T {
        var connection: AMQPConnection?
        var lastError: (any Error)?
        for broker in try AMQPConfiguration.brokers(try configuration().amqpURL, connectionName: "mingusctl") {
            do {
                connection = try await AMQPConnection.connect(broker, logger: cliLogger)
                break
            } catch {
                lastError = error
            }
        }
        guard let connection else { throw lastError! }
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }
}

/// Quiet by default: the commands print their own results; MINGUS_LOG_LEVEL=debug shows more.
let cliLogger: Logger = {
    var logger = Logger(label: "mingusctl")
    logger.logLevel = (try? MingusConfiguration().logLevel).map { max($0, .warning) } ?? .warning
    return logger
}()

extension Mingusctl {
    /// `mingusctl migrate [--status]`: apply pending SQL migrations, or list them.
    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Apply the pending SQL migrations in order (idempotent).")

        @OptionGroup var connection: ConnectionOptions

        @Flag(help: "List every migration and whether it is applied; change nothing.")
        var status = false

        @Option(help: "Folder of NNNN_name.sql files (default: MINGUS_MIGRATIONS_DIR or Contracts/migrations).")
        var migrations: String?

        func run() async throws {
            try await connection.withDatabase { client, configuration in
                let directory = try migrations.map { URL(fileURLWithPath: $0) } ?? configuration.resolvedMigrationsDirectory()
                let migrator = Migrator(directory: directory, client: client, logger: cliLogger)
                if status {
                    for migration in try await migrator.status() {
                        let state = migration.checksumMismatch ? "CHANGED since applied"
                            : migration.appliedAt.map { "applied \($0.formatted(.iso8601))" } ?? "pending"
                        print("\(padded(migration.version))  \(migration.name.padding(40))  \(state)")
                    }
                } else {
                    let applied = try await migrator.apply()
                    if !applied.isEmpty {
                        try await OperatorAudit.record("schema.migrate", resource: "schema",
                                                       details: ["applied": applied.map { "\($0.version) \($0.name)" }.joined(separator: ", ")], on: client)
                    }
                    for migration in applied {
                        print("applied \(padded(migration.version)) \(migration.name) (\(migration.duration.formatted(.units(allowed: [.milliseconds]))))")
                    }
                    let version = try await migrator.status().filter(\.isApplied).map(\.version).max() ?? 0
                    print(applied.isEmpty ? "database is up to date at version \(version)" : "database is at version \(version)")
                }
            }
        }
    }

    /// `mingusctl topology declare`: exchanges, queues and bindings.
    struct Topology: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Broker topology (exchanges, queues, bindings).",
            subcommands: [Declare.self]
        )

        struct Declare: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Declare the whole topology (idempotent).")

            @OptionGroup var connection: ConnectionOptions

            func run() async throws {
                try await connection.withBroker { broker in
                    let topology = declaredTopology
                    try await broker.declare(topology)
                    print("declared \(topology.exchanges.count) exchanges, \(topology.queues.count) queues, \(topology.bindings.count) bindings")
                }
            }
        }
    }

    /// `mingusctl status`: is everything reachable, and how deep is each queue.
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the broker and the database; show the migration version and every queue's depth and consumers.")

        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let configuration = try connection.configuration()
            var healthy = true

            do {
                let version = try await connection.withDatabase { client, configuration in
                    let migrator = Migrator(directory: try configuration.resolvedMigrationsDirectory(), client: client, logger: cliLogger)
                    let migrations = try await migrator.status()
                    let applied = migrations.filter(\.isApplied).map(\.version).max() ?? 0
                    let pending = migrations.filter { !$0.isApplied }.count
                    return pending == 0 ? "\(applied)" : "\(applied) (\(pending) pending: run mingusctl migrate)"
                }
                print("database  ok   \(redacted(configuration.databaseURL))  migration version \(version)")
            } catch {
                healthy = false
                print("database  DOWN \(redacted(configuration.databaseURL))  \(error)")
            }

            do {
                let rows = try await connection.withBroker { broker in
                    var rows: [String] = []
                    for queue in declaredTopology.queues.map(\.name) {
                        do {
                            let info = try await broker.queueInfo(queue)
                            rows.append("  \(queue.padding(28)) \(String(info.messageCount).padding(8, left: true)) messages  \(String(info.consumerCount).padding(3, left: true)) consumers")
                        } catch let error as AMQPError where error.replyCode == 404 {
                            rows.append("  \(queue.padding(28)) missing (run mingusctl topology declare)")
                        }
                    }
                    return rows
                }
                print("broker    ok   \((try? AMQPConfiguration.brokers(configuration.amqpURL).map(\.redactedDescription).joined(separator: ",")) ?? "")")
                rows.forEach { print($0) }
            } catch {
                healthy = false
                print("broker    DOWN \(error)")
            }
            if !healthy { throw ExitCode(1) }
        }

        private func redacted(_ url: String) -> String {
            guard var components = URLComponents(string: url), components.password != nil else { return url }
            components.password = "***"
            return components.string ?? url
        }
    }
}

/// A migration version as four digits.
private func padded(_ version: Int) -> String {
    String(repeating: "0", count: max(0, 4 - String(version).count)) + String(version)
}

extension String {
    /// The string padded with spaces to `width` characters, on the right unless `left`.
    fileprivate func padding(_ width: Int, left: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - count))
        return left ? fill + self : self + fill
    }
}

/// The data key purposes of every domain the gateway serves.
var declaredPurposes: [KeyPurpose] { GatewayApplication.domains.flatMap(\.keyPurposes) }

/// The shared topology and every domain's queues.
var declaredTopology: AMQPTopology { MingusTopology.declaring(GatewayApplication.domains.flatMap(\.queues)) }
