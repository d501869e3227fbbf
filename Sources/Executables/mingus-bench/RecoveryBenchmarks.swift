import Foundation
import Logging
import MingusAMQP
import MingusSecurity
import MingusPostgres
import TestSupport

/// How soon payments flow again after RabbitMQ and then PostgreSQL restart under load: a
/// gateway and one payments worker, clients posting without pause, a backlog in the queue;
/// RabbitMQ is stopped for a while and started, and as soon as the worker decides a payment
/// again, PostgreSQL.
/// Times are measured from the moment a restarted service accepts connections again ("back",
/// when `services.sh restart` returns) to decisions the worker committed
/// (`payment_data.updated_at`, the same machine's clock); after PostgreSQL is back, both are.
enum RecoveryBenchmarks {
    struct Figures {
        /// Seconds from RabbitMQ back to the first payment decided.
        var brokerFirstDecision: Double
        /// Seconds from both back to the first payment decided.
        var firstDecision: Double
        /// Payments accepted before both were back and decided after.
        var backlog: Int
        /// Seconds from both back to the last of the backlog decided.
        var backlogDrained: Double
        /// Seconds from RabbitMQ back, then from both back, to the gateway's next 202.
        var brokerFirstAccepted: Double
        var firstAccepted: Double
        var retried: Double
        var deadLettered: Double
        /// Accepted payments still undecided two minutes after the load stopped.
        var undecided: Int
        /// Messages in `mingus.payments.dead` at the end (the broker's delivery limit included).
        var deadLetterQueue: Int
    }

    /// Stops `service`, keeps it down for `outage` (a restart when zero), then starts it and
    /// returns once it accepts connections.
    static func interrupt(_ service: String, for outage: Duration) async throws {
        if outage == .zero {
            try TestEnvironment.services("restart", service)
            return
        }
        try TestEnvironment.services("stop", service)
        try await Task.sleep(for: outage)
        try TestEnvironment.services("start", service)
    }

    static func run(clients: Int, backlog: Int, outage: Duration) async throws -> Figures {
        let cluster = try await Cluster.start()
        let broker = try await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL, connectionName: "mingus-bench"),
                                                      logger: Logger(label: "mingus-bench"))
        _ = try await broker.purgeQueue("mingus.payments")
        _ = try await broker.purgeQueue("mingus.payments.dead")
        await broker.close()
        let key = try await APIKeyStore(database: cluster.database).create(name: "bench", roles: [.admin]).key
        func check(_ held: Bool, _ what: String) throws {
            if !held { throw WorkerProcessError(message: "\(what)\n\(cluster.output)") }
        }

        let (load, metricsPort, brokerBack, bothBack) = try await PaymentLoad.run(on: cluster, key: key, clients: clients) { load in
            try check(try await eventually(timeout: .seconds(120)) { load.accepted.count >= backlog }, "no backlog: \(load.refused)")
            let worker = try cluster.startWorker()
            guard let metricsPort = try await loggedPort(worker, message: "health and metrics server listening") else {
                throw WorkerProcessError(message: "the worker did not start: \(cluster.output)")
            }
            try check(try await eventually(timeout: .seconds(60)) { try await load.decidedCount(in: cluster) >= 500 }, "payments do not flow")
            try await interrupt("rabbitmq", for: outage)
            let brokerBack = Date()
            let decided = try await load.decidedCount(in: cluster)
            try check(try await eventually(timeout: .seconds(120)) { try await load.decidedCount(in: cluster) > decided },
                      "no consumption after the broker restart")
            try await interrupt("postgres", for: outage)
            let bothBack = Date()
            _ = try await eventually(timeout: .seconds(60)) { load.acceptedCount(since: bothBack) >= 1_000 }
            return (load, metricsPort, brokerBack, bothBack)
        }
        _ = try await eventually(timeout: .seconds(120)) { try await load.decidedCount(in: cluster) == load.accepted.count }
        let undecided = load.accepted.count - (try await load.decidedCount(in: cluster))
        let deadLetterQueue = try await withBroker { try await $0.queueInfo("mingus.payments.dead").messageCount }

        let before = load.accepted.filter { $0.at < bothBack }.map(\.id)
        let row = try await cluster.database.query("""
            SELECT (SELECT min(updated_at) FROM payment_data WHERE status <> 'pending' AND updated_at >= \(brokerBack)),
                   (SELECT min(updated_at) FROM payment_data WHERE status <> 'pending' AND updated_at >= \(bothBack)),
                   (SELECT max(updated_at) FROM payment_data WHERE transaction_id::text = ANY(\(before)::text[]) AND updated_at >= \(bothBack)),
                   (SELECT count(*) FROM payment_data WHERE transaction_id::text = ANY(\(before)::text[]) AND updated_at >= \(bothBack))
            """)[0]
        let metrics = try await httpRequest("http://127.0.0.1:\(metricsPort)/metrics").body
        try await cluster.stop()

        func seconds(_ date: Date?, since start: Date) -> Double { date.map { $0.timeIntervalSince(start) } ?? .nan }
        return Figures(
            brokerFirstDecision: seconds(try row.decode(Date?.self, at: 0), since: brokerBack),
            firstDecision: seconds(try row.decode(Date?.self, at: 1), since: bothBack),
            backlog: try row.decode(Int.self, at: 3),
            backlogDrained: seconds(try row.decode(Date?.self, at: 2), since: bothBack),
            brokerFirstAccepted: seconds(load.accepted.first { $0.at >= brokerBack }?.at, since: brokerBack),
            firstAccepted: seconds(load.accepted.first { $0.at >= bothBack }?.at, since: bothBack),
            retried: prometheusSum(metrics, metric: "mingus_jobs_retried_total"),
            deadLettered: prometheusSum(metrics, metric: "mingus_jobs_dead_lettered_total"),
            undecided: undecided, deadLetterQueue: Int(deadLetterQueue))
    }

    private static func withBroker<T>(_ body: (AMQPConnection) async throws -> T) async throws -> T {
        let connection = try await AMQPConnection.connect(try AMQPConfiguration(url: TestEnvironment.amqpURL, connectionName: "mingus-bench"),
                                                          logger: Logger(label: "mingus-bench"))
        let result = try await body(connection)
        await connection.close()
        return result
    }
}
