import Foundation
import MingusAMQP
import MingusCore
import MingusPostgres
import MingusRuntime
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The shared worker runtime, through real `mingus-test-worker` processes, RabbitMQ and PostgreSQL.
@Suite("Worker runtime")
struct WorkerRuntimeTests {
    @Test("jobs are applied once each and acknowledged; an emitted job is relayed through the outbox")
    func appliesAndEmits() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        for index in 0..<50 {
            try await worker.publish("insert", json: #"{"key":"k\#(index)","value":\#(index)}"#)
        }
        try await worker.publish("emit", json: #"{"key":"parent","value":7}"#)
        let done = try await eventually { try await worker.effectTotals().rows >= 52 }
        #expect(done, "\(process.output.suffix(2000))")
        let totals = try await worker.effectTotals()
        #expect(totals.rows == 52 && totals.keys == 52)
        let child = try await worker.database.query(
            "SELECT value FROM runtime_test_effects WHERE worker = \(worker.name) AND key = 'parent-child'")
        #expect(try child.first?.decode(Int.self, at: 0) == 7)
        #expect(try await worker.depth(worker.queues.queue) == 0)
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("two jobs of one type emitted by one handler are both relayed, numbered by default; one id emitted twice dead-letters the job")
    func emitsEveryJob() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        let twins = try await worker.publish("emit2", json: #"{"key":"twins","value":3}"#)
        let clash = try await worker.publish("emitsame", json: #"{"key":"clash","value":4}"#)
        let settled = try await eventually {
            guard try await worker.effectCount() >= 3 else { return false }
            return try await worker.depth(worker.queues.deadLetterQueue) == 1
        }
        #expect(settled, "\(process.output.suffix(2000))")
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)

        let keys = try await worker.database.query(
            "SELECT key FROM runtime_test_effects WHERE worker = \(worker.name) ORDER BY key").map { try $0.decode(String.self, at: 0) }
        #expect(keys == ["twins", "twins-child1", "twins-child2"], "the job that emitted one id twice changed nothing")
        let childIDs = try await worker.database.query(
            "SELECT job_id FROM runtime_test_effects WHERE worker = \(worker.name) AND key LIKE 'twins-child%' ORDER BY key"
        ).map { try $0.decode(String.self, at: 0) }
        #expect(childIDs == ["\(twins)/\(worker.name).insert/1", "\(twins)/\(worker.name).insert/2"])
        let letter = try #require(try await worker.broker.get(queue: worker.queues.deadLetterQueue))
        #expect(letter.properties.messageID == clash)
        #expect(letter.properties.headers[JobEnvelope.reasonHeader]?.stringValue == "permanent")
        let error = letter.properties.headers[JobEnvelope.errorHeader]?.stringValue ?? ""
        #expect(error.contains("emitted two jobs with the id 'clash-child'"), "\(error)")
        try letter.ack()
        await worker.cleanUp()
    }

    @Test("a redelivered job whose effect committed is acknowledged without running again")
    func duplicateIsNotReapplied() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        let id = try await worker.publish("insert", json: #"{"key":"once","value":1}"#)
        #expect(try await eventually { try await worker.effectCount() == 1 })
        // The same job id again, as a broker redelivery would bring it.
        try await worker.publish("insert", json: #"{"key":"once","value":1}"#, id: id)
        let acknowledged = try await eventually {
            process.logLines("job already applied; acknowledged without running again").contains { $0["mingus.job.id"] as? String == id }
        }
        #expect(acknowledged, "\(process.output.suffix(2000))")
        #expect(try await worker.effectTotals() == (1, 1))
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("malformed bodies, unknown types and envelopes without an id are dead-lettered at once with the reason")
    func neverSucceedingMessagesAreDeadLettered() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        try await worker.publish("insert", json: #"{"key":"bad","value":"not a number"}"#, id: "schema-violation")
        try await worker.publish("insert", json: #"{"key":"#, id: "not-json")
        try await worker.publish("noop", json: #"[1,2"#, id: "undecodable")
        try await worker.publish("unheard.of", json: "{}", id: "unknown-type")
        try await worker.publishRaw(AMQPMessage(body: Array("{}".utf8)), routingKey: "\(worker.name).insert")

        #expect(try await eventually { try await worker.depth(worker.queues.deadLetterQueue) == 5 }, "\(process.output.suffix(2000))")
        var reasons: [String: (reason: String, error: String)] = [:]
        while let letter = try await worker.broker.get(queue: worker.queues.deadLetterQueue) {
            let headers = letter.properties.headers
            reasons[letter.properties.messageID ?? "none"] = (
                headers[JobEnvelope.reasonHeader]?.stringValue ?? "", headers[JobEnvelope.errorHeader]?.stringValue ?? "")
            #expect(headers[JobEnvelope.originalQueueHeader]?.stringValue == worker.queues.queue)
            try letter.ack()
        }
        #expect(reasons["schema-violation"]?.reason == "schema")
        #expect(reasons["schema-violation"]?.error.contains("/value") == true)
        #expect(reasons["schema-violation"]?.error.contains("not a number") == false, "values never appear in reasons")
        #expect(reasons["not-json"]?.reason == "schema")
        #expect(reasons["undecodable"]?.reason == "undecodable")
        #expect(reasons["unknown-type"]?.reason == "unknown_type")
        #expect(reasons["unknown-type"]?.error.contains("unheard.of") == true)
        #expect(reasons["none"]?.reason == "malformed_envelope")
        #expect(try await worker.effectCount() == 0)
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("a job that fails twice then succeeds is retried with growing delays")
    func retriesWithGrowingDelays() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        try await worker.publish("flaky", json: #"{"key":"flaky","failures":2}"#)
        // The planned delays, as the worker decided and logged them (how long the broker and a
        // busy machine then took is not the code's decision, so it is not compared).
        var planned: [(tier: String, delay: Int)] = []
        let done = try await eventually(timeout: .seconds(60)) {
            planned = process.logLines("job failed; retrying").compactMap { line in
                guard let tier = line["mingus.retry.tier"] as? String,
                      let delay = (line["mingus.retry.delay_ms"] as? String).flatMap({ Int($0) }) else { return nil }
                return (tier, delay)
            }
            return try await worker.effectCount() == 1 && planned.count >= 2
        }
        #expect(done, "\(process.output.suffix(2000))")
        #expect(try await worker.attempts("flaky").map(\.attempt) == [1, 2, 3])
        // The 1 s tier then the 2 s tier, each with up to 25 % jitter.
        #expect(planned.map(\.tier) == ["mingus.retry.1s", "mingus.retry.2s"], "\(process.output.suffix(2000))")
        #expect(planned.count == 2 && (1000...1250).contains(planned[0].delay) && (2000...2500).contains(planned[1].delay),
                "\(planned)")
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("SIGTERM lets jobs in flight finish and be acknowledged, and the process exits 0")
    func gracefulShutdownDrains() async throws {
        let worker = try await TestWorker.make()
        // The jobs wait for a lock this connection holds until the worker is stopping.
        let gate = try await PostgresConnection.connect(configuration: PostgresConfiguration(url: TestEnvironment.databaseURL, poolSize: 1))
        let locked = try await gate.query("SELECT pg_try_advisory_lock(hashtext(\(worker.name + "/gate")))")
        #expect(try locked[0].decode(Bool.self, at: 0))
        let process = try worker.start(["MINGUS_DRAIN_TIMEOUT": "30", "MINGUS_WORKER_CONCURRENCY": "16"])
        for index in 0..<10 {
            try await worker.publish("gated", json: #"{"key":"gated\#(index)"}"#)
        }
        let started = try await eventually {
            try await worker.database.query(
                "SELECT count(*) FROM runtime_test_attempts WHERE worker = \(worker.name)")[0].decode(Int.self, at: 0) == 10
        }
        #expect(started, "\(process.output.suffix(2000))")
        process.signal(SIGTERM)
        let stopping = try await eventually { !process.logLines("stopping: taking no new jobs, finishing the ones in flight").isEmpty }
        #expect(stopping, "\(process.output.suffix(2000))")
        #expect(try await worker.effectCount() == 0, "the jobs are still running when the worker starts stopping")
        await gate.close()
        #expect(try await process.wait(timeout: .seconds(60)) == 0, "\(process.output.suffix(2000))")
        #expect(try await worker.effectTotals() == (10, 10))
        // Acknowledged before exit: nothing is left to redeliver.
        #expect(try await worker.depth(worker.queues.queue) == 0)
        await worker.cleanUp()
    }
}

@Suite("Worker runtime: shutdown deadline")
struct ShutdownDeadlineTests {
    @Test("a job stuck in a database call that ignores cancellation cannot keep a stopping worker alive; the job is delivered again")
    func stuckJobCannotBlockExit() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start(["MINGUS_DRAIN_TIMEOUT": "1"])
        try await worker.publish("stuck", json: #"{"key":"\#(worker.name)"}"#)
        // The job's advisory locks on its key (the worker's name, so no other run's): one held by
        // its transaction, one its other connection waits for. Advisory locks on one bigint key
        // show it split into classid (high half) and objid (low half).
        func locks(granted: Bool) async throws -> Int {
            try await worker.database.query("""
                SELECT count(*) FROM pg_locks
                WHERE locktype = 'advisory' AND objsubid = 1 AND granted = \(granted)
                  AND ((classid::bigint << 32) | objid::bigint) = hashtext(\(worker.name))::bigint
                """)[0].decode(Int.self, at: 0)
        }
        let waiting = try await eventually { try await locks(granted: false) == 1 }
        #expect(waiting, "\(process.output.suffix(2000))")
        process.signal(SIGTERM)
        let code = try await process.wait(timeout: .seconds(90))
        #expect(code == ShutdownDeadline.exitCode, "\(process.output.suffix(2000))")
        #expect(process.output.contains("still stopping after the shutdown deadline"))
        // Never acknowledged, so the broker has it again; the worker's locks went with its connections.
        #expect(try await eventually { try await worker.depth(worker.queues.queue) == 1 })
        #expect(try await eventually {
            let held = try await locks(granted: true)
            return try await locks(granted: false) == 0 && held == 0
        })
        await worker.cleanUp()
    }
}

/// Runs `mingusctl` with arguments and returns its exit code and output.
func mingusctl(_ arguments: String...) async throws -> (code: Int32?, output: String) {
    let process = try WorkerProcess("mingusctl", arguments: arguments, environment: [:])
    let code = try await process.wait(timeout: .seconds(60))
    return (code, process.output)
}

@Suite("Worker runtime: failures, crashes and schedules")
struct WorkerRuntimeFailureTests {
    @Test("a job that always fails is dead-lettered after N attempts with its reason; dlq replay brings it back")
    func exhaustedThenReplayed() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start(["MINGUS_MAX_ATTEMPTS": "3"])
        let id = try await worker.publish("fail", json: #"{"key":"doomed"}"#)
        #expect(try await eventually { try await worker.depth(worker.queues.deadLetterQueue) == 1 }, "\(process.output.suffix(2000))")
        #expect(try await worker.attempts("doomed").map(\.attempt) == [1, 2, 3])

        let listed = try await mingusctl("dlq", "list", worker.name)
        #expect(listed.code == 0)
        #expect(listed.output.contains(id))
        #expect(listed.output.contains("reason=attempts_exhausted"))
        #expect(listed.output.contains("attempts=3"))
        #expect(listed.output.contains("boom"))

        let replayed = try await mingusctl("dlq", "replay", worker.name, "--id", id)
        #expect(replayed.code == 0, "\(replayed.output)")
        #expect(replayed.output.contains("replayed 1 job(s)"))
        // Back in the original queue as a first attempt: it runs (and fails) again.
        #expect(try await eventually { try await worker.attempts("doomed").count >= 4 })
        #expect(try await worker.attempts("doomed")[3].attempt == 1)
        #expect(try await eventually { try await worker.depth(worker.queues.deadLetterQueue) == 1 })

        let shown = try await mingusctl("dlq", "show", worker.name, id)
        #expect(shown.code == 0)
        #expect(shown.output.contains("routing key: \(worker.name).fail"))
        #expect(shown.output.contains(#"{"key":"doomed"}"#))

        let purged = try await mingusctl("dlq", "purge", worker.name)
        #expect(purged.output.contains("purged 1 job(s)"))
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }

    @Test("kill -9 in the middle of 20,000 jobs, then a restart: every effect exactly once")
    func killedWorkerLosesNothing() async throws {
        let worker = try await TestWorker.make()
        let count = 20_000
        let first = try worker.start()
        try #require(try await eventually { first.output.contains("consuming") }, "\(first.output.suffix(2000))")
        // Jobs are published while the worker takes them, so it is killed with jobs still coming
        // however fast it is.
        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for lane in 0..<100 {
                    group.addTask {
                        for index in stride(from: lane, to: count, by: 100) {
                            try await worker.publish("insert", json: #"{"key":"job\#(index)","value":\#(index)}"#)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        #expect(try await eventually { try await worker.effectCount() >= 200 }, "\(first.output.suffix(2000))")
        try await first.kill9()
        let applied = try await worker.effectCount()
        try await publishing.value
        #expect(applied > 0 && applied < count, "killed while jobs were still flowing: \(applied) applied")

        let second = try worker.start()
        try #require(try await eventually { second.output.contains("consuming") }, "\(second.output.suffix(2000))")
        let drained = try await eventually(timeout: .seconds(120)) {
            guard try await worker.effectCount() >= count else { return false }
            return try await worker.depth(worker.queues.queue) == 0
        }
        #expect(drained, "\(second.output.suffix(2000))")
        // Stopped, the worker has finished and acknowledged every job it took: the totals are final.
        second.signal(SIGTERM)
        #expect(try await second.wait(timeout: .seconds(60)) == 0, "\(second.output.suffix(3000))")
        #expect(try await worker.depth(worker.queues.queue) == 0)
        let totals = try await worker.effectTotals()
        #expect(totals.rows == count, "no job applied twice")
        #expect(totals.keys == count, "no job lost")
        await worker.cleanUp()
    }

    @Test("two worker processes running the scheduler fire 200 due jobs and a due cron schedule exactly once each")
    func schedulersFireOnce() async throws {
        let worker = try await TestWorker.make()
        try await worker.database.withTransaction { db in
            for index in 0..<200 {
                try await Scheduler.schedule(
                    on: db, id: "\(worker.name)-scheduled-\(index)", type: "\(worker.name).insert",
                    body: Array(#"{"key":"s\#(index)","value":\#(index)}"#.utf8), at: Date().addingTimeInterval(-1))
            }
        }
        // A cron schedule that is due: it fires once, then moves to its next run (next 1 January).
        let schedule = "\(worker.name)-yearly"
        _ = try await worker.database.execute("""
            INSERT INTO mingus_periodic_schedules (name, cron, routing_key, type, body, next_run_at)
            VALUES (\(schedule), '0 0 1 1 *', \(worker.name + ".insert"), \(worker.name + ".insert"),
                    \(Array(#"{"key":"cron","value":1}"#.utf8)), now() - interval '5 minutes')
            """)
        // A job due in a year stays pending (other tests' workers fire every due job, ours included).
        try await worker.database.withTransaction { db in
            try await Scheduler.schedule(on: db, id: "\(worker.name)-later", type: "\(worker.name).insert",
                                         body: Array(#"{"key":"later","value":0}"#.utf8), at: Date().addingTimeInterval(365 * 86400))
        }
        let listed = try await mingusctl("schedule", "list", "--limit", "100000")
        #expect(listed.output.contains(schedule))
        #expect(listed.output.contains("\(worker.name)-later "))

        let one = try worker.start()
        let two = try worker.start()
        let drained = try await eventually(timeout: .seconds(60)) {
            guard try await worker.effectCount() >= 201 else { return false }
            return try await worker.depth(worker.queues.queue) == 0
        }
        #expect(drained, "\(one.output.suffix(1000))\(two.output.suffix(1000))")
        // Stopped, both workers have finished and acknowledged every job they took: the totals are final.
        one.signal(SIGTERM)
        two.signal(SIGTERM)
        #expect(try await one.wait(timeout: .seconds(30)) == 0)
        #expect(try await two.wait(timeout: .seconds(30)) == 0)
        #expect(try await worker.depth(worker.queues.queue) == 0)
        #expect(try await worker.effectTotals() == (201, 201))
        let next = try await worker.database.query(
            "SELECT next_run_at > now(), last_run_at IS NOT NULL FROM mingus_periodic_schedules WHERE name = \(schedule)")[0]
        #expect(try next.decode(Bool.self, at: 0) && next.decode(Bool.self, at: 1))
        _ = try await worker.database.execute("DELETE FROM mingus_periodic_schedules WHERE name = \(schedule)")
        let unfired = try await worker.database.query(
            "SELECT count(*) FROM mingus_scheduled_jobs WHERE message_id LIKE \(worker.name + "-scheduled-%") AND fired_at IS NULL")
        #expect(try unfired[0].decode(Int.self, at: 0) == 0)
        _ = try await worker.database.execute("DELETE FROM mingus_scheduled_jobs WHERE message_id LIKE \(worker.name + "-%")")
        await worker.cleanUp()
    }
}

@Suite("Worker runtime: batches and observability")
struct WorkerRuntimeBatchTests {
    @Test("a batch handler gets every fresh job of a batch at once; a job published twice is applied once")
    func batchHandler() async throws {
        let worker = try await TestWorker.make()
        // Queued before the worker starts, so that they are taken in batches; every tenth twice.
        for index in 0..<300 {
            let id = try await worker.publish("insertbatch", json: #"{"key":"b\#(index)","value":\#(index)}"#)
            if index % 10 == 0 {
                try await worker.publish("insertbatch", json: #"{"key":"b\#(index)","value":\#(index)}"#, id: id)
            }
        }
        let process = try worker.start(["MINGUS_WORKER_CONCURRENCY": "2", "MINGUS_WORKER_BATCH_SIZE": "50"])
        let drained = try await eventually {
            guard try await worker.effectCount() >= 300 else { return false }
            return try await worker.depth(worker.queues.queue) == 0
        }
        #expect(drained, "\(process.output.suffix(2000))")
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        #expect(try await worker.effectTotals() == (300, 300))
        let sum = try await worker.database.query("SELECT sum(value)::bigint FROM runtime_test_effects WHERE worker = \(worker.name)")[0]
        #expect(try sum.decode(Int64.self, at: 0) == Int64((0..<300).reduce(0, +)))
        await worker.cleanUp()
    }

    @Test("a failing job in a batch does not fail its neighbours; each is applied once")
    func failingJobInBatch() async throws {
        let worker = try await TestWorker.make()
        // Queued before the worker starts, so that they are taken in batches.
        for index in 0..<200 {
            if index % 50 == 7 {
                try await worker.publish("flaky", json: #"{"key":"flaky\#(index)","failures":1}"#)
            } else {
                try await worker.publish("insert", json: #"{"key":"k\#(index)","value":\#(index)}"#)
            }
        }
        let process = try worker.start(["MINGUS_WORKER_CONCURRENCY": "2", "MINGUS_WORKER_BATCH_SIZE": "50"])
        let drained = try await eventually {
            guard try await worker.effectCount() >= 200 else { return false }
            return try await worker.depth(worker.queues.queue) == 0
        }
        #expect(drained, "\(process.output.suffix(2000))")
        // Stopped, the worker has finished and acknowledged every job it took: the totals are final.
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        #expect(try await worker.effectTotals() == (200, 200))
        var failedInsideABatch = 0
        for index in stride(from: 7, to: 200, by: 50) {
            let attempts = try await worker.attempts("flaky\(index)").map(\.attempt)
            #expect(attempts.last == 2)
            // In a batch the first attempt runs twice: once in the batch, once on its own after the
            // batch rolled back. At least one flaky job must have shown that path.
            if attempts == [1, 1, 2] { failedInsideABatch += 1 }
        }
        #expect(failedInsideABatch >= 1, "the flaky jobs were never taken in a batch")
        await worker.cleanUp()
    }

    @Test("/healthz, /readyz and /metrics answer with the runtime's metrics")
    func healthAndMetrics() async throws {
        let worker = try await TestWorker.make()
        let process = try worker.start()
        let port = try await loggedPort(process, message: "health and metrics server listening")
        let base = "http://127.0.0.1:\(try #require(port, "\(process.output.suffix(2000))"))"
        try await worker.publish("insert", json: #"{"key":"m","value":1}"#)
        try await worker.publish("unknown.kind", json: "{}")

        let health = try await httpGet(base + "/healthz")
        #expect(health.status == 200)
        #expect(try await eventually { try await httpGet(base + "/readyz").status == 200 })
        // Each count shows once its job is settled: the insert acknowledged, the unknown type
        // dead-lettered. Either may come first, so the metrics are read until both show.
        let queue = worker.queues.queue
        let processed = #"mingus_jobs_processed_total{queue="\#(queue)",type="\#(worker.name).insert",outcome="ok"} 1"#
        let deadLettered = #"mingus_jobs_dead_lettered_total{queue="\#(queue)",type="\#(worker.name).unknown.kind",reason="unknown_type"} 1"#
        var metrics = (status: 0, body: "")
        let counted = try await eventually {
            metrics = try await httpGet(base + "/metrics")
            return metrics.body.contains(processed) && metrics.body.contains(deadLettered)
        }
        #expect(metrics.status == 200)
        #expect(counted, "\(metrics.body)\n\(process.output.suffix(2000))")
        #expect(try await worker.effectCount() == 1)
        #expect(metrics.body.contains("mingus_job_duration_seconds_bucket"))
        #expect(metrics.body.contains("mingus_queue_lag_seconds"))
        #expect(metrics.body.contains("mingus_jobs_in_flight"))
        process.signal(SIGTERM)
        #expect(try await process.wait(timeout: .seconds(30)) == 0)
        await worker.cleanUp()
    }
}

/// A plain HTTP GET over loopback; returns the status and the body.
func httpGet(_ url: String) async throws -> (status: Int, body: String) {
    let response = try await httpRequest(url)
    return (response.status, response.body)
}

@Suite("Worker logs")
struct WorkerLogTests {
    @Test("a worker whose log reader has gone keeps running and stops cleanly on SIGTERM")
    func brokenLogPipe() async throws {
        let worker = try await TestWorker.make("pipe")
        let environment = [
            "MINGUS_TEST_WORKER_NAME": worker.name, "MINGUS_TEST_FIXTURES_DIR": TestEnvironment.fixturesDirectory.path,
            "MINGUS_METRICS_PORT": "0", "MINGUS_LOG_LEVEL": "info",
            "MINGUS_MIGRATIONS_DIR": TestEnvironment.migrationsDirectory.path,
        ]
        let runner = try WorkerProcess(
            "python",
            arguments: [TestEnvironment.fixturesDirectory.appendingPathComponent("broken_log_pipe.py").path,
                        WorkerProcess.binDirectory.appendingPathComponent("mingus-test-worker").path],
            environment: environment, bin: TestEnvironment.pythonBin)
        #expect(try await runner.wait(timeout: .seconds(60)) == 0)
        #expect(runner.output.contains("exit 0"), "\(runner.output)")
    }
}
