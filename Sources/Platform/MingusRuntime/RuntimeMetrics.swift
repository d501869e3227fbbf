public import CoreMetrics
import Foundation
import Synchronization

/// The runtime's metrics, created from one factory (Prometheus in the executables). Names follow
/// Prometheus conventions; dimensions stay low-cardinality (queue, type, outcome, never job ids).
/// Handles are cached in ``MetricHandles``.
public final class RuntimeMetrics: Sendable {
    private let handles: MetricHandles
    let jobsInFlight: Meter
    /// The handles every job touches, per queue and type: looked up with one hash per job.
    private let perJob = Mutex<[JobKey: JobHandles]>([:])

    private struct JobKey: Hashable {
        var queue: String
        var type: String
    }

    private struct JobHandles {
        var applied: Counter
        var duplicate: Counter
        var duration: Recorder
    }

    public init(factory: any MetricsFactory) {
        handles = MetricHandles(factory: factory)
        jobsInFlight = Meter(label: "mingus_jobs_in_flight", factory: factory)
    }

    /// Outcomes of a delivery: `ok`, `duplicate` (already applied), `retried`, `dead_lettered`.
    func processed(queue: String, type: String, outcome: String) {
        handles.counter("mingus_jobs_processed_total", [("queue", queue), ("type", type), ("outcome", outcome)]).increment()
    }

    /// A job that committed: its duration, and outcome `ok` when it was applied or `duplicate`
    /// when the inbox already held it.
    func committed(queue: String, type: String, applied: Bool, seconds: Double) {
        let key = JobKey(queue: queue, type: type)
        let job = perJob.withLock { cache in
            if let job = cache[key] { return job }
            let job = JobHandles(
                applied: handles.counter("mingus_jobs_processed_total", [("queue", queue), ("type", type), ("outcome", "ok")]),
                duplicate: handles.counter("mingus_jobs_processed_total", [("queue", queue), ("type", type), ("outcome", "duplicate")]),
                duration: handles.histogram("mingus_job_duration_seconds", [("queue", queue), ("type", type)]))
            cache[key] = job
            return job
        }
        job.duration.record(seconds)
        (applied ? job.applied : job.duplicate).increment()
    }

    func lag(queue: String, seconds: Double) {
        handles.gauge("mingus_queue_lag_seconds", [("queue", queue)]).record(max(0, seconds))
    }

    func retried(queue: String, type: String) {
        handles.counter("mingus_jobs_retried_total", [("queue", queue), ("type", type)]).increment()
    }

    func deadLettered(queue: String, type: String, reason: String) {
        handles.counter("mingus_jobs_dead_lettered_total", [("queue", queue), ("type", type), ("reason", reason)]).increment()
    }

    func reconnected(_ component: String) {
        handles.counter("mingus_reconnects_total", [("component", component)]).increment()
    }

    func outboxPublished(_ count: Int) {
        handles.counter("mingus_outbox_published_total", []).increment(by: count)
    }

    /// A job the gateway could not publish: `unreachable`, `blocked`, `confirm_timeout`, `refused`.
    func publishFailed(reason: String) {
        handles.counter("mingus_publish_failures_total", [("reason", reason)]).increment()
    }

    func scheduledFired(kind: String, count: Int) {
        handles.counter("mingus_scheduled_jobs_fired_total", [("kind", kind)]).increment(by: count)
    }
}
