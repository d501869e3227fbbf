import Foundation
import MingusAMQP
import MingusCore
import MingusPostgres
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Figures of the worker runtime, measured through a real `mingus-test-worker` process.
struct RuntimeFigures {
    var rate: Double
    var workerCPU: Double
    var loadedRSS: Int
}

enum RuntimeBenchmarks {
    /// The ceiling the worker is compared with: `count` jobs of `kind` published exactly as for
    /// ``throughput(kind:count:)`` into a worker's queue, then consumed and acknowledged one by
    /// one by a bare AMQP consumer with the worker's prefetch. Messages per second from the
    /// first delivery to the last acknowledgement.
    static func rawConsume(kind: String, count: Int, prefetch: UInt16) async throws -> Double {
        let worker = try await TestWorker.make("bench")
        try await publish(worker, kind: kind, count: count) { index in #"{"key":"k\#(index)","value":\#(index)}"# }
        var received = 0
        var first: ContinuousClock.Instant?
        for try await delivery in try await worker.broker.consume(queue: worker.queues.queue, prefetch: prefetch) {
            if first == nil { first = .now }
            try delivery.ack()
            received += 1
            if received == count { break }
        }
        let elapsed = ContinuousClock.now - first!
        await worker.cleanUp()
        return Double(count - 1) / elapsed.inSeconds
    }

    /// Publishes `count` jobs of `kind`, then starts one worker process and measures the rate
    /// at which their transactions commit (from the inbox timestamps), its CPU time and peak RSS.
    /// Progress is read from the broker's queue depth while it drains (counting the inbox
    /// would scan it ten times a second beside the worker), then from the inbox.
    static func throughput(kind: String, count: Int) async throws -> RuntimeFigures {
        let worker = try await TestWorker.make("bench")
        try await publish(worker, kind: kind, count: count) { index in #"{"key":"k\#(index)","value":\#(index)}"# }
        let process = try worker.start(["MINGUS_LOG_LEVEL": "warning"])
        var peakRSS = 0
        var drained = false
        while true {
            peakRSS = max(peakRSS, rss(process.pid))
            if let code = try await process.wait(timeout: .zero) {
                throw WorkerProcessError(message: "the worker exited with \(code): \(process.output.suffix(1000))")
            }
            if !drained { drained = try await worker.broker.queueInfo(worker.queues.queue).messageCount == 0 }
            if drained, try await inboxCount(worker) == count { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let cpu = cpuSeconds(process.pid)
        let span = try await worker.database.query("""
            SELECT extract(epoch FROM max(processed_at) - min(processed_at))::float8 FROM mingus_inbox WHERE queue = \(worker.queues.queue)
            """)[0].decode(Double.self, at: 0)
        process.signal(SIGTERM)
        _ = try await process.wait(timeout: .seconds(30))
        try await cleanUp(worker)
        return RuntimeFigures(rate: Double(count - 1) / span, workerCPU: cpu, loadedRSS: peakRSS)
    }

    /// Memory of a worker that has started and has nothing to do, from `/proc/PID/smaps_rollup`:
    /// resident, anonymous, proportional (shared pages divided among the processes mapping
    /// them) and private.
    static func idleMemory() async throws -> (rss: Int, anonymous: Int, proportional: Int, unique: Int) {
        let worker = try await TestWorker.make("bench")
        let process = try worker.start(["MINGUS_LOG_LEVEL": "warning"])
        _ = try await eventually { try await worker.broker.queueInfo(worker.queues.queue).consumerCount == 1 }
        try await Task.sleep(for: .seconds(2))
        let fields = smapsRollup(process.pid)
        process.signal(SIGTERM)
        _ = try await process.wait(timeout: .seconds(30))
        try await cleanUp(worker)
        return (fields["Rss"] ?? 0, fields["Anonymous"] ?? 0, fields["Pss"] ?? 0,
                (fields["Private_Clean"] ?? 0) + (fields["Private_Dirty"] ?? 0))
    }

    /// The kilobyte fields of `/proc/PID/smaps_rollup`, in bytes.
    static func smapsRollup(_ pid: pid_t) -> [String: Int] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return [:] }
        var fields: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 3, parts[2] == "kB", let kilobytes = Int(parts[1]) else { continue }
            fields[String(parts[0].dropLast())] = kilobytes * 1024
        }
        return fields
    }

    /// Publishes insert jobs at `rate` per second for `seconds`, each carrying its publish time;
    /// returns the p50 and p99 of publish → effect committed, in milliseconds.
    static func latency(rate: Double, seconds: Double) async throws -> (p50: Double, p99: Double, jobs: Int) {
        let worker = try await TestWorker.make("bench")
        let process = try worker.start(["MINGUS_LOG_LEVEL": "warning"])
        _ = try await eventually { try await worker.broker.queueInfo(worker.queues.queue).consumerCount == 1 }
        let total = Int(rate * seconds)
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<total {
                try await Task.sleep(until: start + .seconds(Double(index) / rate))
                let micros = Int(Date().timeIntervalSince1970 * 1_000_000)
                group.addTask {
                    try await worker.publish("insert", json: #"{"key":"l\#(index)","value":\#(micros)}"#)
                }
            }
            try await group.waitForAll()
        }
        _ = try await eventually(timeout: .seconds(60)) { try await worker.effectCount() >= total }
        let row = try await worker.database.query("""
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM at) * 1000000 - value),
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM at) * 1000000 - value)
            FROM runtime_test_effects WHERE worker = \(worker.name)
            """)[0]
        process.signal(SIGTERM)
        _ = try await process.wait(timeout: .seconds(30))
        try await cleanUp(worker)
        return (try row.decode(Double.self, at: 0) / 1000, try row.decode(Double.self, at: 1) / 1000, total)
    }

    private static func publish(_ worker: TestWorker, kind: String, count: Int, body: @escaping @Sendable (Int) -> String) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<200 {
                group.addTask {
                    for index in stride(from: lane, to: count, by: 200) {
                        try await worker.publish(kind, json: body(index))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private static func inboxCount(_ worker: TestWorker) async throws -> Int {
        try await worker.database.query("SELECT count(*) FROM mingus_inbox WHERE queue = \(worker.queues.queue)")[0].decode(Int.self, at: 0)
    }

    private static func cleanUp(_ worker: TestWorker) async throws {
        _ = try await worker.database.execute("DELETE FROM mingus_inbox WHERE queue = \(worker.queues.queue)")
        await worker.cleanUp()
    }

    /// Resident set size of a process in bytes (VmRSS).
    static func rss(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    /// User plus system CPU seconds a process has used (from /proc/PID/stat).
    static func cpuSeconds(_ pid: pid_t) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
