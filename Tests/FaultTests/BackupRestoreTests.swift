import Foundation
import Logging
import MingusAMQP
import MingusCore
import MingusPostgres
import MingusRuntime
import MingusSecurity
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `Deploy/local/backup.sh` with `arguments` and `MINGUSCTL` set to the tests' build.
func backupScript(_ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = TestEnvironment.repositoryRoot.appendingPathComponent("Deploy/local/backup.sh")
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["MINGUSCTL"] = WorkerProcess.binDirectory.appendingPathComponent("mingusctl").path
    process.environment = environment
    // Files, not pipes: nothing to drain while the script runs.
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("backup-script"))
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let out = folder.appendingPathComponent("out"), err = folder.appendingPathComponent("err")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    FileManager.default.createFile(atPath: err.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    process.waitUntilExit()
    return (process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
}

extension Cluster {
    /// Posts a card payment; returns its transaction id.
    fileprivate func pay(key: String) async throws -> String {
        let year = Calendar.current.component(.year, from: Date()) + 2
        let body = #"{"card_number":"4242424242424242","expiry_month":12,"expiry_year":\#(year),"cvv":"123","cardholder_name":"Backup Test","amount":1250,"currency":"EUR","merchant_id":"backup"}"#
        let answer = try await httpRequest(base + "/api/financial/payment/process", method: "POST",
                                           headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"], body: Data(body.utf8))
        #expect(answer.status == 202, "\(answer.body)")
        return try #require((try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])?["transaction_id"] as? String)
    }

    /// Waits until every payment of `ids` is decided in the cluster's database.
    fileprivate func waitDecided(_ ids: [String]) async throws {
        let done = try await eventually(timeout: .seconds(90)) {
            try await database.query("""
                SELECT count(*) FROM payment_data WHERE status <> 'pending' AND transaction_id::text = ANY(\(ids)::text[])
                """)[0].decode(Int.self, at: 0) == ids.count
        }
        #expect(done, "\(output)")
    }
}

private func freePort() throws -> Int {
    for port in 5600..<5700 where (try? Socket.isListening(port)) == false { return port }
    throw WorkerProcessError(message: "no free port in 5600-5699")
}

private enum Socket {
    static func isListening(_ port: Int) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Base backups restored into a PostgreSQL server of their own; `make test` runs these with the
/// fault tests, one at a time.
@Suite("Backup and restore", .serialized)
struct BackupRestoreTests {
    @Test("a base backup restores only with its key-encrypting key; restored, the audit trail verifies, the data keys open, and a job applied before the backup is not applied again")
    func backupAndRestore() async throws {
        let cluster = try await Cluster.start(privateBroker: true)
        let key = try await cluster.key([.admin]).key
        var before: [String] = []
        for _ in 0..<20 { before.append(try await cluster.pay(key: key)) }

        // A copy of one job as the broker holds it, to deliver again after the restore.
        let vhostURL = try #require(cluster.environment["MINGUS_AMQP_URL"])
        let broker = try await AMQPConnection.connect(try AMQPConfiguration(url: vhostURL), logger: Logger(label: "test"))
        let held = try #require(try await broker.get(queue: "mingus.payments"))
        let copy = try #require(JobEnvelope(held))
        try held.nack(requeue: true)

        let worker = try cluster.startWorker()
        try await cluster.waitDecided(before)

        let backups = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("backups"))
        let backup = backups.appendingPathComponent("base").path
        let made = try backupScript(["create", backup])
        #expect(made.status == 0, "\(made.errors)")
        var after: [String] = []
        for _ in 0..<5 { after.append(try await cluster.pay(key: key)) }
        try await cluster.waitDecided(after)

        // Without the key file, or with another one, nothing is restored and no server starts.
        let port = try freePort()
        let wrongKey = backups.appendingPathComponent("other.key")
        _ = try KeyEncryptingKey.create(at: wrongKey)
        let database = cluster.databaseName
        for (arguments, reason) in [
            (["restore", backup, "--database", database, "--port", "\(port)"], "restore needs --key-file"),
            (["restore", backup, "--key-file", wrongKey.path, "--database", database, "--port", "\(port)"], "is not the one the data keys of \(database) are wrapped with"),
        ] {
            let refused = try backupScript(arguments)
            #expect(refused.status != 0)
            #expect(refused.errors.contains(reason), "\(refused.errors)")
            #expect(refused.errors.contains("nothing was restored") || reason.hasPrefix("restore needs"))
            #expect(try !Socket.isListening(port))
        }

        let restored = try backupScript(["restore", backup, "--key-file", cluster.keyPath.path, "--database", database, "--port", "\(port)"])
        #expect(restored.status == 0, "\(restored.errors)")
        #expect(restored.errors.contains("OK "), "mingusctl audit verify and keys check ran: \(restored.errors)")
        let url = try #require(restored.output.split(separator: "\n").last.map(String.init))
        let dataDirectory = try #require(restored.errors.firstMatch(of: /restored into (\S+), serving/)?.1).description
        let copyDatabase = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 2))
        do {
            #expect(try await copyDatabase.query("SELECT count(*) FROM payment_data")[0].decode(Int.self, at: 0) == before.count,
                    "the payments up to the backup, not those after it")
            _ = try await Keyring.load(kek: cluster.kek, database: copyDatabase)

            // A worker on the restored database takes the job again: it was applied before the
            // backup, so it is acknowledged without running.
            worker.signal(SIGTERM)
            #expect(try await worker.wait(timeout: .seconds(40)) == 0)
            let restoredWorker = try cluster.startWorker(environment: ["MINGUS_DATABASE_URL": url])
            try await broker.publish(copy.message(), exchange: MingusTopology.jobsExchange, routingKey: copy.type)
            #expect(try await eventually(timeout: .seconds(60)) { restoredWorker.output.contains("job already applied") },
                    "\(restoredWorker.output.suffix(3000))")
            #expect(try await copyDatabase.query("SELECT count(*) FROM payment_data")[0].decode(Int.self, at: 0) == before.count)
            let audited = try await copyDatabase.query(
                "SELECT count(*) FROM audit_events WHERE action LIKE 'payment.%' AND resource = \("payment/" + copy.id)")
            #expect(try audited[0].decode(Int.self, at: 0) == 1)
            #expect(try await broker.queueInfo("mingus.payments.dead").messageCount == 0)
            restoredWorker.signal(SIGTERM)
            #expect(try await restoredWorker.wait(timeout: .seconds(40)) == 0)
        } catch {
            Issue.record(error)
        }
        await copyDatabase.shutdown()
        await broker.close()
        _ = try backupScript(["stop", dataDirectory])
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try? FileManager.default.removeItem(at: backups)
        try await cluster.stopCleanly()
    }
}
