import Foundation
import Logging
import MingusAMQP
import MingusPostgres
import MingusSecurity
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The gateway and a payments worker across service restarts; `make test` runs these alone,
/// after the others.
@Suite("Payments across restarts", .serialized)
struct PaymentsRestartTests {
    @Test("RabbitMQ restarts, then PostgreSQL is down 40 s, under payment load: every accepted payment is decided once, none retried or dead-lettered")
    func paymentsSurviveRestarts() async throws {
        let cluster = try await Cluster.start()
        // Jobs left in the shared queues by other suites would be this worker's to settle.
        let configuration = try AMQPConfiguration(url: TestEnvironment.amqpURL)
        let broker = try await AMQPConnection.connect(configuration, logger: Logger(label: "test"))
        _ = try await broker.purgeQueue("mingus.payments")
        _ = try await broker.purgeQueue("mingus.payments.dead")
        await broker.close()
        let key = try await cluster.key([.admin]).key

        let (load, worker, metricsPort, bothBack) = try await PaymentLoad.run(on: cluster, key: key, clients: 16) { load in
            // A backlog first, so that the worker has jobs in flight when each service goes down.
            #expect(try await eventually(timeout: .seconds(120)) { load.accepted.count >= 2_000 }, "\(load.refused)\n\(cluster.output)")
            let worker = try cluster.startWorker()
            let metricsPort = try #require(try await loggedPort(worker, message: "health and metrics server listening"), "\(cluster.output)")
            #expect(try await eventually(timeout: .seconds(60)) { try await load.decidedCount(in: cluster) >= 200 },
                    "payments flow before the restarts\n\(cluster.output)")

            try TestEnvironment.services("restart", "rabbitmq")
            let afterBroker = try await load.decidedCount(in: cluster)
            #expect(try await eventually(timeout: .seconds(90)) { try await load.decidedCount(in: cluster) > afterBroker },
                    "consumption resumes after the broker restart\n\(cluster.output)")
            // Nearly caught up, with jobs still queued or in flight: each of them meets the outage,
            // and a few jobs meet it more often than many would (requeued in turn). The clients
            // pause while the worker catches up (a fast gateway outruns it), then post again just
            // before the database goes.
            load.pause()
            var waiting = 0
            #expect(try await eventually(timeout: .seconds(120)) {
                waiting = load.accepted.count - (try await load.decidedCount(in: cluster))
                return waiting <= 300
            }, "a few hundred payments at most wait when the database goes down: \(waiting)")
            load.resume()
            let resumed = load.accepted.count
            #expect(try await eventually(timeout: .seconds(30)) { load.accepted.count >= resumed + 20 })
            // Down for longer than the broker's delivery limit (20) would last if the worker
            // requeued those jobs about once a second.
            try TestEnvironment.services("stop", "postgres")
            try await Task.sleep(for: .seconds(40))
            try TestEnvironment.services("start", "postgres")
            let bothBack = Date()
            #expect(try await eventually(timeout: .seconds(90)) { load.acceptedCount(since: bothBack) >= 300 },
                    "the gateway accepts payments again: \(load.refused)\n\(cluster.output)")
            return (load, worker, metricsPort, bothBack)
        }

        let acceptedAfter = load.accepted.filter { $0.at >= bothBack }.map(\.id)
        var decisions = try await load.decisions(in: cluster)
        #expect(try await eventually(timeout: .seconds(120)) {
            decisions = try await load.decisions(in: cluster)
            return decisions.decided == decisions.accepted
        }, "every accepted payment is decided: \(decisions)\n\(cluster.output)")
        let decidedAfter = try await cluster.database.query("""
            SELECT count(*) FROM payment_data WHERE status <> 'pending' AND transaction_id::text = ANY(\(acceptedAfter)::text[])
            """)[0].decode(Int.self, at: 0)
        #expect(acceptedAfter.count >= 300 && decidedAfter == acceptedAfter.count,
                "payments accepted after both restarts are decided: \(decidedAfter) of \(acceptedAfter.count)")
        #expect(decisions.auditEvents == decisions.accepted && decisions.auditedTwice == 0,
                "each payment is decided once: \(decisions)")

        // An outage is not the job's fault: nothing went to a retry tier or the dead-letter queue.
        let metrics = try await httpRequest("http://127.0.0.1:\(metricsPort)/metrics").body
        let type = ["type": "payments.process"]
        #expect(prometheusSum(metrics, metric: "mingus_jobs_processed_total", labels: type) >= Double(decisions.accepted),
                "the metrics are the worker's: \(metrics)")
        #expect(prometheusSum(metrics, metric: "mingus_jobs_retried_total", labels: type) == 0, "\(worker.output.suffix(3000))")
        #expect(prometheusSum(metrics, metric: "mingus_jobs_dead_lettered_total", labels: type) == 0, "\(worker.output.suffix(3000))")
        #expect(worker.logLines("job failed; retrying").isEmpty)
        let reconnected = try await AMQPConnection.connect(configuration, logger: Logger(label: "test"))
        #expect(try await reconnected.queueInfo("mingus.payments.dead").messageCount == 0,
                "the broker dead-lettered no job for too many deliveries")
        await reconnected.close()
        #expect(try await worker.wait(timeout: .zero) == nil, "the worker survived both restarts")
        try await cluster.stopCleanly()
    }
}
