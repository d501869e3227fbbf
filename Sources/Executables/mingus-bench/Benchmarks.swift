import ArgumentParser
import Foundation
import Logging
import MingusAMQP
import MingusCompliance
import MingusCore
import MingusSecurity
import MingusPostgres
import MingusRuntime

#if canImport(Glibc)
import Glibc
#endif

/// `mingus-bench`: throughput of the building blocks against the local services, printed as a
/// table with wall time and the process's CPU time.
@main
struct Benchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mingus-bench",
        abstract: "Measure the AMQP and PostgreSQL clients against the local services.")

    @Option(help: "Messages per AMQP benchmark.")
    var messages = 20_000

    @Option(help: "Publishes in flight at once.")
    var inFlight = 500

    @Option(help: "Rows for the single-row insert benchmarks.")
    var inserts = 5_000

    @Option(help: "Rows for the COPY benchmark.")
    var copyRows = 200_000

    @Option(help: "Jobs per worker-runtime throughput benchmark.")
    var jobs = 20_000

    @Flag(help: "Skip the worker-runtime and payments benchmarks.")
    var skipRuntime = false

    @Option(help: "Payments per end-to-end payments run.")
    var payments = 3_000

    @Flag(help: "Run only the end-to-end payments benchmarks.")
    var onlyPayments = false

    @Option(help: "Alerts per end-to-end alerts run.")
    var alerts = 300

    @Flag(help: "Run only the end-to-end alerts benchmarks.")
    var onlyAlerts = false

    @Option(help: "Breach reports in the burst of the breach assessment benchmark.")
    var breaches = 2000

    @Flag(help: "Run only the breach assessment benchmark.")
    var onlyBreach = false

    @Option(help: "Due payment rows the retention benchmark sweeps.")
    var retentionRows = 1_000_000

    @Flag(help: "Run only the retention sweep benchmark.")
    var onlyRetention = false

    @Option(help: "Log lines the logs benchmark sends.")
    var logLines = 200_000

    @Flag(help: "Run only the logs end-to-end benchmark.")
    var onlyLogs = false

    @Option(help: "Payments and financial records of the subject the privacy benchmark exports and erases.")
    var privacyRows = 100_000

    @Flag(help: "Run only the GDPR export and erasure benchmark.")
    var onlyPrivacy = false

    @Flag(help: "Run only the HIPAA benchmark: health record reads through access control and audit, Safe Harbor rows.")
    var onlyHealth = false

    @Option(help: "Health record reads the HIPAA benchmark times.")
    var healthReads = 50_000

    @Option(help: "Rows the HIPAA benchmark de-identifies with Safe Harbor.")
    var healthRows = 500_000

    @Option(help: "Concurrent readers in the HIPAA benchmark (requests in flight at the gateway; 16 database connections).")
    var healthReaders = 64

    @Option(help: "Recipients uploaded and e-mailed in the breach notification benchmark (1000000 for the RSS figure of the README).")
    var notifyRecipients = 20_000

    @Option(help: "SMTP sessions of the breach worker in the notification benchmark.")
    var notifySessions = 8

    @Option(help: "The breach worker's rate limit in the notification benchmark (letters per second).")
    var notifyRate = 2_000

    @Flag(help: "Run only the dashboard benchmark: GET /dashboard/ and the four /api/financial/dashboard endpoints with 1,000,000 payments stored.")
    var onlyDashboard = false

    @Option(help: "Payments stored for the dashboard benchmark.")
    var dashboardPayments = 1_000_000

    @Option(help: "Requests per dashboard endpoint.")
    var dashboardRequests = 5_000

    @Option(help: "Concurrent clients of the dashboard benchmark.")
    var dashboardClients = 16

    @Flag(help: "Run only the breach notification benchmark.")
    var onlyNotify = false

    @Flag(help: "Run only the security benchmark: detection → incident → first automated action, and one DigitalOcean poll cycle.")
    var onlySecurity = false

    @Option(help: "Brute forces sent in the security benchmark.")
    var securityAttacks = 200

    @Option(help: "Droplets of the DigitalOcean stand-in in the security benchmark.")
    var securityDroplets = 1_000

    @Flag(help: "Run only the compliance benchmark: the compliance read endpoints under load with 1,000,000 payments stored, and one run of every automated check.")
    var onlyCompliance = false

    @Option(help: "Payments stored for the compliance benchmark.")
    var compliancePayments = 1_000_000

    @Option(help: "Requests per compliance read endpoint.")
    var complianceRequests = 5_000

    @Option(help: "Concurrent clients in the compliance benchmark.")
    var complianceClients = 32

    @Flag(help: "Run only the recovery benchmark: RabbitMQ, then PostgreSQL stopped and started under payment load (the local services).")
    var onlyRecovery = false

    @Option(help: "Seconds each service stays down in the recovery benchmark (0: a plain restart).")
    var outage = 10

    @Flag(help: "Run only the worker runtime benchmark: raw consume and ack, then the no-op and single-insert handlers in one worker process.")
    var onlyRuntime = false

    @Option(help: "The worker runtime benchmark's handlers, of noop, insert and insertbatch.")
    var runtimeHandlers = "noop,insert,insertbatch"

    @Flag(help: "Run only the log template mining benchmark (no services needed).")
    var onlyMining = false

    @Option(help: "The labelled Loghub samples for the mining benchmark (default: MINGUS_LOGHUB_DIR or ../shared/loghub-dev).")
    var loghubDir: String?

    @Option(help: "Lines mined for the throughput figure on repeated input (the 2k lines repeated).")
    var miningLines = 100_000

    mutating func run() async throws {
        if onlyMining {
            try runMining()
            return
        }
        if onlyRuntime {
            try await runRuntime()
            return
        }
        if onlyRecovery {
            try await runRecovery()
            return
        }
        if onlyPayments {
            try await runPayments()
            return
        }
        if onlyAlerts {
            try await runAlerts()
            return
        }
        if onlyBreach {
            try await runBreach()
            return
        }
        if onlyRetention {
            try await runRetention()
            return
        }
        if onlyLogs {
            try await runLogs()
            return
        }
        if onlyPrivacy {
            try await runPrivacy()
            return
        }
        if onlyHealth {
            try await runHealth()
            return
        }
        if onlyNotify {
            try await runNotify()
            return
        }
        if onlyDashboard {
            try await runDashboard()
            return
        }
        if onlySecurity {
            try await runSecurity()
            return
        }
        if onlyCompliance {
            try await runCompliance()
            return
        }
        let configuration = try MingusConfiguration()
        var logger = Logger(label: "mingus-bench")
        logger.logLevel = .warning
        var results: [Measurement] = []

        // AMQP: 1 KiB persistent messages through a quorum queue.
        let amqp = try AMQPConfiguration(url: configuration.amqpURL, connectionName: "mingus-bench")
        let connection = try await AMQPConnection.connect(amqp, logger: logger)
        let (publish, consume) = try await measureAMQP(connection)
        results.append(publish)
        results.append(consume)
        await connection.close()

        // PostgreSQL: one row per statement (autocommit) against COPY.
        let client = PostgresClient(configuration: PostgresConfiguration(url: configuration.databaseURL, poolSize: 8), logger: logger)
        let table = "bench_rows_\(UUID().uuidString.prefix(8).lowercased())"
        try await client.execute("CREATE TABLE \(identifier: table) (id bigint, name text, amount bigint, at timestamptz)")
        let inserts = self.inserts
        results.append(try await Measurement.run("PostgreSQL single-row INSERT, 1 connection", operations: inserts) {
            try await client.withConnection { db in
                for id in 0..<inserts {
                    try await db.execute("INSERT INTO \(identifier: table) VALUES (\(id), \("row \(id)"), \(id * 100), \(Date()))")
                }
            }
        })
        results.append(try await Measurement.run("PostgreSQL single-row INSERT, 8 connections", operations: inserts) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        try await client.withConnection { db in
                            for id in stride(from: worker, to: inserts, by: 8) {
                                try await db.execute("INSERT INTO \(identifier: table) VALUES (\(id), \("row \(id)"), \(id * 100), \(Date()))")
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        })
        let copyRows = self.copyRows
        let now = Date()
        results.append(try await Measurement.run("PostgreSQL COPY FROM, 1 connection", operations: copyRows) {
            _ = try await client.withConnection { db in
                try await db.copyFrom(table: table, columns: ["id", "name", "amount", "at"], rows: (0..<copyRows).lazy.map { id in
                    [id, "row \(id)", id * 100, now] as [(any PostgresEncodable)?]
                })
            }
        })
        try await client.execute("DROP TABLE \(identifier: table)")

        // Audit trail: one event per transaction from 8 connections, over one component's 16 streams.
        let component = "bench-\(UUID().uuidString.prefix(8).lowercased())"
        results.append(try await Measurement.run("Audit append (own transaction), 8 connections", operations: inserts) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for index in stride(from: worker, to: inserts, by: 8) {
                            try await client.withTransaction { db -> Void in
                                _ = try await AuditTrail.append(AuditEvent(
                                    actor: "bench", action: "bench.append", resource: "resource/\(index % 500)", outcome: .success),
                                    component: component, on: db)
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        })
        let verification = try await Measurement.run("Audit verify (recompute chains)", operations: inserts) {
            let result = try await AuditVerifier(database: client, publicKeys: []).verify(streamPrefix: component + "/")
            guard result.isIntact, result.events == inserts else {
                throw ValidationError("audit verification failed: \(result)")
            }
        }
        results.append(verification)
        await client.shutdown()

        Measurement.printTable(results)
        try runMining()
        guard !skipRuntime else { return }

        try await runPayments()
        try await runAlerts()
        try await runBreach()
        try await runNotify()
        try await runRetention()
        try await runLogs()
        try await runDashboard()

        try await runRuntime()
    }

    /// Publishing with confirms, then consuming and acknowledging, `messages` 1 KiB persistent
    /// messages through a quorum queue of their own.
    func measureAMQP(_ connection: AMQPConnection) async throws -> (publish: Measurement, consume: Measurement) {
        let queue = "mingus.bench.\(UUID().uuidString.prefix(8).lowercased())"
        try await connection.declare(AMQPTopology(queues: [.quorum(queue)]))
        let body = [UInt8](repeating: 0x61, count: 1024)
        let count = messages
        let window = inFlight
        let publish = try await Measurement.run("AMQP publish, confirms (1 KiB, quorum, \(window) in flight)", operations: count) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<window {
                    group.addTask {
                        for _ in stride(from: worker, to: count, by: window) {
                            try await connection.publish(
                                AMQPMessage(body: body, properties: AMQPProperties(persistent: true)), exchange: "", routingKey: queue)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let consume = try await Measurement.run("AMQP consume and ack (prefetch 200)", operations: count) {
            var received = 0
            for try await delivery in try await connection.consume(queue: queue, prefetch: 200) {
                try delivery.ack()
                received += 1
                if received == count { break }
            }
        }
        try await connection.deleteQueue(queue)
        return (publish, consume)
    }

    /// The worker runtime, one process, each handler against the raw consume-and-ack rate of
    /// the same jobs measured just before it (a bare consumer with the worker's prefetch).
    func runRuntime() async throws {
        let prefetch = JobConsumer.Configuration(queues: WorkerQueues(name: "bench"), source: "/bench").prefetch
        var rows: [(name: String, raw: Double, figures: RuntimeFigures)] = []
        let names = ["noop": "no-op handler", "insert": "single-insert handler", "insertbatch": "batch insert handler"]
        for kind in runtimeHandlers.split(separator: ",").map(String.init) {
            guard let name = names[kind] else { throw ValidationError("unknown runtime handler \(kind)") }
            let raw = try await RuntimeBenchmarks.rawConsume(kind: kind, count: jobs, prefetch: prefetch)
            rows.append((name, raw, try await RuntimeBenchmarks.throughput(kind: kind, count: jobs)))
        }
        let insert = rows.first { $0.name == names["insert"] }?.figures ?? rows[0].figures
        let idle = try await RuntimeBenchmarks.idleMemory()
        let latency = try await RuntimeBenchmarks.latency(rate: insert.rate / 2, seconds: 5)
        func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }
        print("")
        print("worker runtime (1 process, defaults: 8 lanes, batches of up to 50, prefetch \(prefetch); \(jobs) jobs each)")
        for row in rows {
            print("  \(row.name.padding(toLength: 22, withPad: " ", startingAt: 0))\(String(format: "%8.0f", row.figures.rate)) jobs/s  raw consume and ack of the same jobs \(String(format: "%6.0f", row.raw)) msg/s  \(String(format: "%5.1f %%", row.figures.rate / row.raw * 100)) of raw  worker CPU \(String(format: "%.0f", row.figures.workerCPU / Double(jobs) * 1e6)) µs/job  peak RSS \(megabytes(row.figures.loadedRSS))")
        }
        print("  (single-insert: one INSERT per job, each its own round trip; batch insert: registerBatch, one INSERT … unnest per batch)")
        print("  enqueue → commit at \(String(format: "%.0f", insert.rate / 2)) jobs/s (half the insert rate, \(latency.jobs) jobs): p50 \(String(format: "%.1f", latency.p50)) ms, p99 \(String(format: "%.1f", latency.p99)) ms")
        print("  idle worker: RSS \(megabytes(idle.rss)) (\(megabytes(idle.anonymous)) anonymous, the rest mapped files: the binary and shared libraries); PSS \(megabytes(idle.proportional)); private \(megabytes(idle.unique))")
    }

    /// Log template mining against Drain3 on the labelled Loghub samples.
    func runMining() throws {
        let rows = try MiningBenchmarks.run(loghubDirectory: loghubDir, repeatedLines: miningLines)
        MiningBenchmarks.printTable(rows, repeatedLines: miningLines)
    }

    /// End-to-end alerts: fan-out to the nine local sinks, then latency with one sink slowed to 2 s.
    func runAlerts() async throws {
        let figures = try await AlertsBenchmarks.run(alerts: alerts, concurrency: 16)
        let slow = figures.slow
        print("")
        print("alerts end to end (release processes; gateway + 1 alerts worker; local provider stand-ins, SMTP with STARTTLS and AUTH)")
        print("  fan-out to all nine sinks:  \(String(format: "%8.1f", figures.alertsPerSecond)) alerts/s = \(String(format: "%.0f", figures.deliveriesPerSecond)) deliveries/s (\(figures.alerts) alerts, 16 concurrent HTTP clients)")
        print("  POST → last delivery, Teams sink slowed to 2 s, \(slow.alerts) alerts at \(slow.rate)/s: p50 \(String(format: "%.0f", slow.p50)) ms, p99 \(String(format: "%.0f", slow.p99)) ms")
        print("    the other eight channels meanwhile: p50 \(String(format: "%.0f", slow.othersP50)) ms, p99 \(String(format: "%.0f", slow.othersP99)) ms")
    }

    /// Breach reports assessed end to end: a burst, then latency at a steady pace.
    func runBreach() async throws {
        let figures = try await BreachBenchmarks.run(reports: breaches, concurrency: 16, pacedRate: 50, pacedSeconds: 10)
        let paced = figures.paced
        print("")
        print("breach assessment end to end (release processes; gateway + 1 breach worker; reports touching GDPR, HIPAA, PCI, FTC and three states)")
        print("  POST → assessed, burst:     \(String(format: "%8.0f", figures.reportsPerSecond)) reports/s (\(figures.reports) reports, 16 concurrent HTTP clients, \(String(format: "%.1f", figures.obligationsPerReport)) obligations each)")
        print("  accepted → obligations stored at \(String(format: "%.0f", paced.rate))/s (\(paced.reports) reports): p50 \(String(format: "%.1f", paced.p50)) ms, p99 \(String(format: "%.1f", paced.p99)) ms, max \(String(format: "%.1f", paced.max)) ms")
    }

    /// A retention sweep of due payment rows under a steady insert load.
    func runRetention() async throws {
        let figures = try await RetentionBenchmarks.run(rows: retentionRows, insertRate: 200)
        print("")
        print("retention sweep (release processes; 1 retention worker, batches of 5,000; \(figures.rows) due payment rows, inserts at \(Int(figures.insertRate))/s meanwhile)")
        print("  archived and deleted:       \(String(format: "%8.0f", figures.rowsPerSecond)) rows/s (\(String(format: "%.1f", Double(figures.archiveBytes) / 1_048_576)) MB of gzip JSON lines)")
        print("  insert latency without a sweep: p50 \(String(format: "%.2f", figures.quiet.p50)) ms, p99 \(String(format: "%.2f", figures.quiet.p99)) ms")
        print("  insert latency during the sweep: p50 \(String(format: "%.2f", figures.sweeping.p50)) ms, p99 \(String(format: "%.2f", figures.sweeping.p99)) ms (\(figures.sweeping.inserts) inserts; p99 ratio \(String(format: "%.2f", figures.sweeping.p99 / figures.quiet.p99)))")
        print("  WAL written during the sweep:   \(String(format: "%.1f", Double(figures.walBytes) / 1_048_576)) MB (\(figures.walBytes / Int64(max(figures.rows, 1))) bytes per row); checkpoints begun: \(figures.checkpoints)")
    }

    /// A subject with many payments and records exported (streamed, sealed ZIP) and erased.
    func runPrivacy() async throws {
        let figures = try await PrivacyBenchmarks.run(rows: privacyRows)
        func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }
        print("")
        print("GDPR export and erasure (gateway + 1 privacy worker; a subject with \(figures.rows) payments and \(figures.rows) financial records, as many payments of another subject)")
        print("  access export, verified → archive ready: \(String(format: "%.1f", figures.exportSeconds)) s (\(megabytes(Int(figures.archiveBytes))) ZIP, sealed in 1 MiB chunks)")
        print("  erasure, verified → completed:           \(String(format: "%.1f", figures.eraseSeconds)) s (\(figures.erasure.joined(separator: "; ")))")
        print("  privacy worker RSS: peak \(megabytes(figures.workerPeakRSS)) (idle \(megabytes(figures.workerIdleRSS)))")
    }

    /// Detections to incidents to the playbook's first action, and one DigitalOcean poll cycle.
    func runSecurity() async throws {
        let figures = try await SecurityBenchmarks.run(attacks: securityAttacks, droplets: securityDroplets)
        print("")
        print("security (gateway + logs, alerts and security workers; \(figures.attacks) brute forces of 10 lines, one every 200 ms, over \(String(format: "%.0f", figures.backgroundLinesPerSecond)) ordinary lines/s)")
        print("  log lines sent → incident → address blocked: p50 \(String(format: "%.0f", figures.p50)) ms, p99 \(String(format: "%.0f", figures.p99)) ms")
        print("  one DigitalOcean poll cycle over \(figures.droplets) stand-in droplets (8 metric requests each): \(String(format: "%.1f", figures.pollSeconds)) s (\(figures.samples) samples stored)")
    }

    /// The compliance read endpoints under load, and one run of every automated check.
    func runCompliance() async throws {
        let figures = try await ComplianceBenchmarks.run(payments: compliancePayments, requests: complianceRequests, concurrency: complianceClients)
        print("")
        print("compliance (gateway + security worker; \(figures.payments) payments stored; \(complianceClients) clients; goal p99 < 100 ms and >= 1,000 requests/s per endpoint)")
        print("  one run of all \(ComplianceChecks.all.count) automated checks, POST → committed: \(String(format: "%.1f", figures.checkRunSeconds)) s")
        for endpoint in figures.endpoints {
            let path = endpoint.path.padding(toLength: 45, withPad: " ", startingAt: 0)
            print("  GET \(path) \(String(format: "%6.0f", endpoint.rate)) requests/s, p50 \(String(format: "%5.1f", endpoint.p50)) ms, p99 \(String(format: "%5.1f", endpoint.p99)) ms")
        }
    }

    /// Health record reads through `HealthAccess` with their audit events, and Safe Harbor rows.
    func runHealth() async throws {
        let figures = try await HealthBenchmarks.run(subjects: 2_000, reads: healthReads, rows: healthRows, concurrency: healthReaders)
        print("")
        print("HIPAA (in process; 2,000 subjects with 3 sealed records each; a billing profile; \(healthReaders) concurrent readers, 16 database connections)")
        print("  reads (relationship and break-glass lookup, subject key, minimum necessary, audit event group-committed): \(String(format: "%8.0f", figures.readsPerSecond))/s (\(figures.reads) reads, \(figures.auditEvents) audit events; goal 5,000/s)")
        print("  Safe Harbor de-identification (15 columns, 9 identifiers removed, ZIP/date/birth date/age generalised): \(String(format: "%8.0f", figures.rowsPerSecond)) rows/s (\(figures.rows) rows; goal 50,000/s)")
    }

    /// Log lines from POST /api/logs to stored, mined and counted.
    func runLogs() async throws {
        let figures = try await LogsBenchmarks.run(lineCount: logLines)
        print("")
        print("logs end to end (release gateway + 1 logs worker; \(figures.lines) lines, text/plain bodies of 5,000, 8 clients)")
        print("  answered by the gateway (redacted, queued, confirmed): \(String(format: "%8.0f", figures.acceptedPerSecond)) lines/s")
        print("  stored (mined, COPY into day partitions, counted):     \(String(format: "%8.0f", figures.storedPerSecond)) lines/s (\(figures.templates) templates)")
    }

    /// The dashboard's page and JSON endpoints with a million payments stored.
    func runDashboard() async throws {
        let figures = try await DashboardBenchmarks.run(payments: dashboardPayments, requests: dashboardRequests, clients: dashboardClients)
        print("")
        print("dashboard reads (release gateway; \(figures.payments) payments over 30 days seeded in \(String(format: "%.1f", figures.seedSeconds)) s through the rollup trigger, \(figures.rollupRows) rollup rows; \(dashboardClients) clients)")
        for row in figures.rows {
            let p50 = row.p50.inSeconds * 1000, p99 = row.p99.inSeconds * 1000
            print("  \(row.name.padding(toLength: 40, withPad: " ", startingAt: 0)) \(String(format: "%8.0f", row.perSecond)) req/s  p50 \(String(format: "%6.1f", p50)) ms  p99 \(String(format: "%6.1f", p99)) ms  (\(row.requests) requests; goal p99 < 100 ms, 1,000 req/s)")
        }
    }

    /// Breach letters e-mailed end to end: a streamed upload, then a run to the local SMTP server.
    func runNotify() async throws {
        let figures = try await NotifyBenchmarks.run(recipients: notifyRecipients, sessions: notifySessions, rateLimit: notifyRate)
        func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1_048_576) }
        print("")
        print("breach notification run (release processes; gateway + 1 breach worker; local SMTP server with STARTTLS and AUTH; \(figures.recipients) recipients, \(figures.sessions) SMTP sessions, rate limit \(figures.rateLimit)/s)")
        print("  upload (JSON lines, streamed, sealed, COPY): \(String(format: "%8.0f", Double(figures.recipients) / figures.uploadSeconds)) recipients/s (\(String(format: "%.1f", figures.uploadSeconds)) s)")
        print("  POST …/notifications → run completed:       \(String(format: "%8.0f", Double(figures.recipients) / figures.runSeconds)) recipients/s (\(String(format: "%.1f", figures.runSeconds)) s; \(figures.accepted) messages accepted by the server)")
        print("  peak RSS through upload and run: breach worker \(megabytes(figures.workerPeakRSS)) (idle \(megabytes(figures.workerIdleRSS))), gateway \(megabytes(figures.gatewayPeakRSS))")
    }

    /// Payments through a RabbitMQ restart and then a PostgreSQL restart: how soon they flow again.
    func runRecovery() async throws {
        let (clients, backlog) = (32, 3_000)
        let figures = try await RecoveryBenchmarks.run(clients: clients, backlog: backlog, outage: .seconds(outage))
        func seconds(_ value: Double) -> String { String(format: "%6.2f s", value) }
        print("")
        print("recovery (gateway + 1 payments worker, \(clients) clients posting, \(backlog) payments queued first; RabbitMQ down \(outage) s, then PostgreSQL down \(outage) s)")
        print("  RabbitMQ back → first payment decided: \(seconds(figures.brokerFirstDecision)), gateway accepts again: \(seconds(figures.brokerFirstAccepted))")
        print("  both back → first payment decided:     \(seconds(figures.firstDecision)), gateway accepts again: \(seconds(figures.firstAccepted))")
        print("  both back → backlog drained:           \(seconds(figures.backlogDrained)) (\(figures.backlog) payments accepted before, decided after)")
        print("  jobs sent to a retry tier: \(Int(figures.retried)), dead-lettered by the worker: \(Int(figures.deadLettered)), in the dead-letter queue: \(figures.deadLetterQueue); accepted payments never decided: \(figures.undecided)")
    }

    /// End-to-end payments: the gateway alone, then gateway and 1 or 2 workers, then latency.
    func runPayments() async throws {
        let payments = try await PaymentsBenchmarks.run(count: self.payments, concurrency: 32)
        print("")
        print("payments end to end (release processes; \(self.payments) payments per run, 32 concurrent HTTP clients, 100 distinct cards)")
        print("  gateway alone, accepted:    \(String(format: "%8.0f", payments.gatewayAccepted)) req/s (validated, sealed, confirmed by the broker, pending row)")
        for (workers, rate) in payments.endToEnd {
            print("  POST → authorized, \(workers) worker\(workers == 1 ? " " : "s"): \(String(format: "%8.0f", rate)) payments/s")
        }
        print("  POST → authorized at \(String(format: "%.0f", payments.latency.rate))/s (half the 1-worker rate, \(payments.latency.payments) payments): p50 \(String(format: "%.1f", payments.latency.p50)) ms, p99 \(String(format: "%.1f", payments.latency.p99)) ms")
    }
}

/// One benchmark's figures.
struct Measurement {
    var name: String
    var operations: Int
    var wall: Double
    var cpu: Double

    static func run(_ name: String, operations: Int, _ body: () async throws -> Void) async throws -> Measurement {
        let cpuStart = cpuSeconds()
        let start = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - start
        let wall = elapsed.inSeconds
        return Measurement(name: name, operations: operations, wall: wall, cpu: cpuSeconds() - cpuStart)
    }

    /// User plus system CPU time of this process so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func printTable(_ results: [Measurement]) {
        let nameWidth = results.map(\.name.count).max() ?? 10
        func column(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        print("\("benchmark".padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(column("ops", 8))  \(column("wall s", 8))  \(column("ops/s", 10))  \(column("CPU s", 7))  \(column("CPU µs/op", 9))")
        for result in results {
            let rate = Double(result.operations) / result.wall
            print("\(result.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(column(String(result.operations), 8))  \(column(String(format: "%.2f", result.wall), 8))  \(column(String(format: "%.0f", rate), 10))  \(column(String(format: "%.2f", result.cpu), 7))  \(column(String(format: "%.1f", result.cpu / Double(result.operations) * 1e6), 9))")
        }
    }
}
