import CLibPQ
import Foundation

/// A serial executor backed by one dedicated OS thread, for blocking calls (libpq) that must
/// never run on the Swift cooperative pool or an event loop.
///
/// Jobs run one at a time, in submission order. After `shutdown()` the thread finishes the jobs
/// already queued, then exits; later submissions are refused.
final class BlockingThread: @unchecked Sendable {
    // `@unchecked`: all mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var isShuttingDown = false

    /// Starts the thread; `name` (at most 15 bytes are kept) shows up in `top -H`, `perf`,
    /// debuggers and crash reports.
    init(name: String) {
        let thread = Thread { [self] in
            // Foundation names only the `Thread` object on Linux, not the OS thread.
            mingus_pq_name_thread(name)
            runLoop()
        }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result; throws `PostgresError.closed` after `shutdown()`.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = submit {
                continuation.resume(with: Result { try body() })
            }
            if !accepted {
                continuation.resume(throwing: PostgresError.closed())
            }
        }
    }

    /// Queues `job` without waiting for it; returns false (and drops the job) after `shutdown()`.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !isShuttingDown else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Lets the thread exit once the jobs already queued have run.
    func shutdown() {
        condition.lock()
        isShuttingDown = true
        condition.signal()
        condition.unlock()
    }

    private func runLoop() {
        while let job = nextJob() {
            job()
        }
    }

    /// Waits for the next job; nil once shut down and drained.
    private func nextJob() -> (@Sendable () -> Void)? {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty && !isShuttingDown {
            condition.wait()
        }
        return jobs.isEmpty ? nil : jobs.removeFirst()
    }
}
