public import Foundation
import MingusPayments
import MingusHTTP
public import MingusSecurity
import MingusRuntime
public import MingusPostgres
#if canImport(Glibc)
import Glibc
#endif

/// A gateway and payments workers started by a test or a benchmark, on a database of their own
/// (migrated, with a fresh key-encrypting key and data keys), sharing the local broker.
public final class Cluster: @unchecked Sendable {
    // @unchecked: `workers` changes only through `startWorker`, called from one task at a time.
    public let databaseName: String
    public let databaseURL: String
    public let database: PostgresClient
    public let keyPath: URL
    public let kek: KeyEncryptingKey
    /// The Standard Webhooks secret the workers sign with.
    public let webhookSecret: String
    public let environment: [String: String]
    public let gateway: WorkerProcess
    /// `http://127.0.0.1:<port>` of the gateway.
    public let base: String
    public private(set) var workers: [WorkerProcess] = []
    /// The broker virtual host of this cluster alone, when it was started with one.
    public let virtualHost: String?
    /// The server of the cluster's database when it is not the tests' own.
    public let databaseServer: String?

    private init(databaseName: String, databaseURL: String, database: PostgresClient, keyPath: URL, kek: KeyEncryptingKey,
                 webhookSecret: String, environment: [String: String], gateway: WorkerProcess, base: String, virtualHost: String?,
                 databaseServer: String?) {
        self.virtualHost = virtualHost
        self.databaseServer = databaseServer
        self.databaseName = databaseName
        self.databaseURL = databaseURL
        self.database = database
        self.keyPath = keyPath
        self.kek = kek
        self.webhookSecret = webhookSecret
        self.environment = environment
        self.gateway = gateway
        self.base = base
    }

    /// Starts the gateway and `workers` payments workers; `environment` is added to every process's.
    /// Returns once the gateway is ready (`/readyz`: database and broker reachable) unless
    /// `waitUntilReady` is false. With `privateBroker`, the cluster gets a broker virtual host of
    /// its own (deleted by ``stop()``), so that its workers never take another cluster's jobs
    /// from a queue of the same name. `keyPurposes` get a first data key too, before any process
    /// starts (the payments purposes always do). `databaseServer` puts the cluster's database on
    /// another server than the tests' (``TestEnvironment/createDatabase(on:)``).
    public static func start(workers: Int = 0, environment extra: [String: String] = [:], waitUntilReady: Bool = true,
                             bin: URL? = nil, privateBroker: Bool = false, keyPurposes: [KeyPurpose] = [],
                             databaseServer: String? = nil) async throws -> Cluster {
        let (name, url) = try await TestEnvironment.createDatabase(on: databaseServer)
        var virtualHost: String?
        var brokerURL: [String: String] = [:]
        if privateBroker {
            try TestEnvironment.services("rabbitmqctl", "-q", "add_vhost", name)
            virtualHost = name
            try TestEnvironment.services("rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
            var components = URLComponents(string: TestEnvironment.amqpURL)!
            components.path = "/" + name
            brokerURL["MINGUS_AMQP_URL"] = components.string!
        }
        let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 4))
        _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
        let keyPath = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("keys"))
            .appendingPathComponent("financial.key")
        let kek = try KeyEncryptingKey.create(at: keyPath)
        for purpose in DomainDescription.payments.keyPurposes + keyPurposes { try await Keyring.rotate(purpose, kek: kek, database: database) }
        let secret = WebhookSigner.makeSecret()
        var environment = [
            "MINGUS_DATABASE_URL": url, "MINGUS_FINANCIAL_KEY_PATH": keyPath.path, "MINGUS_WEBHOOK_SECRET": secret,
            "MINGUS_HTTP_PORT": "0", "MINGUS_METRICS_PORT": "0", "MINGUS_LOG_LEVEL": "info",
            "MINGUS_SCHEMAS_DIR": TestEnvironment.repositoryRoot.appendingPathComponent("Contracts/schemas").path,
        ]
        environment.merge(brokerURL) { _, new in new }
        environment.merge(extra) { _, new in new }
        let gateway = try WorkerProcess("mingus-gateway", environment: environment, bin: bin)
        guard let port = try await loggedPort(gateway, message: "gateway listening") else {
            try await gateway.kill9()
            throw WorkerProcessError(message: "the gateway did not start: \(gateway.output.suffix(2000))")
        }
        let cluster = Cluster(databaseName: name, databaseURL: url, database: database, keyPath: keyPath, kek: kek,
                              webhookSecret: secret, environment: environment, gateway: gateway, base: "http://127.0.0.1:\(port)",
                              virtualHost: virtualHost, databaseServer: databaseServer)
        for _ in 0..<workers { _ = try cluster.startWorker(bin: bin) }
        if waitUntilReady {
            let ready = try await eventually(timeout: .seconds(60)) {
                (try? await httpRequest(cluster.base + "/readyz").status) == 200
            }
            guard ready else { throw WorkerProcessError(message: "the gateway is not ready: \(gateway.output.suffix(2000))") }
        }
        return cluster
    }

    /// Starts one more worker (a payments worker unless another executable is named).
    @discardableResult
    public func startWorker(_ executable: String = "mingus-payments-worker", environment extra: [String: String] = [:],
                            bin: URL? = nil) throws -> WorkerProcess {
        let worker = try WorkerProcess(executable, environment: environment.merging(extra) { _, new in new }, bin: bin)
        workers.append(worker)
        return worker
    }

    /// The data keys as the processes see them.
    public func keyring() async throws -> Keyring {
        try await Keyring.load(kek: kek, database: database)
    }

    /// Everything the processes wrote so far.
    public var output: String {
        ([gateway] + workers).map { "[\($0.executable)]\n\($0.output.suffix(4000))" }.joined(separator: "\n")
    }

    /// Stops every process with SIGTERM (each must exit 0), then drops the database.
    /// Returns the exit codes, gateway first.
    @discardableResult
    public func stop() async throws -> [Int32?] {
        let processes = [gateway] + workers
        processes.forEach { $0.signal(SIGTERM) }
        var codes: [Int32?] = []
        for process in processes { codes.append(try await process.wait(timeout: .seconds(40))) }
        // One that did not stop is killed, so no test leaves a process behind; its code stays nil.
        for (process, code) in zip(processes, codes) where code == nil {
            process.signal(SIGKILL)
            _ = try await process.wait(timeout: .seconds(10))
        }
        await database.shutdown()
        try await TestEnvironment.dropDatabase(databaseName, on: databaseServer)
        if let virtualHost { try TestEnvironment.services("rabbitmqctl", "-q", "delete_vhost", virtualHost) }
        return codes
    }
}

extension Cluster {
    /// A new API key with `roles`, named uniquely: its name and the key to send.
    public func key(_ roles: Set<Role>) async throws -> (name: String, key: String) {
        let name = TestEnvironment.uniqueName("caller")
        return (name, try await APIKeyStore(database: database).create(name: name, roles: roles).key)
    }

    /// Stops every process; throws ``UncleanExit`` unless each exited 0, but those the test
    /// killed itself (``WorkerProcess/kill9()``).
    public func stopCleanly() async throws {
        let processes = [gateway] + workers
        let codes = try await stop()
        guard zip(processes, codes).allSatisfy({ $0.0.wasKilled || $0.1 == 0 }) else {
            // What they wrote while stopping too: why one did not stop is in its last lines.
            throw UncleanExit(codes: codes, output: output)
        }
    }
}

/// A process of a cluster did not exit 0 when stopped.
public struct UncleanExit: Error, CustomStringConvertible {
    /// Each process's exit code (128 + n: ended by signal n; nil: still running 40 s after SIGTERM, then killed).
    public var codes: [Int32?]
    /// What the processes wrote before they were stopped.
    public var output: String = ""
    public var description: String { "exit codes \(codes)\n\(output)" }
}
