public import CoreMetrics
import Foundation

/// The runtime's metrics, created from one factory (Prometheus in the executables). Names follow
/// Prometheus conventions; dimensions stay low-cardinality (queue, type, outcome, never job ids).
public struct RuntimeMetrics: Sendable {
    let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
        jobsInFlight = Meter(label: "mingus_jobs_in_flight", factory: factory)
        reconnects = { component in
            Counter(label: "mingus_reconnects_total", dimensions: [("component", component)], factory: factory)
        }
    }

    let jobsInFlight: Meter
    let reconnects: @Sendable (String) -> Counter

    /// Outcomes of a delivery: `ok`, `duplicate` (already applied), `retried`, `dead_lettered`, `requeued`.
    func processed(queue: String, type: String, outcome: String) {
        Counter(label: "mingus_jobs_processed_total", dimensions: [("queue", queue), ("type", type), ("outcome", outcome)],
                factory: factory).increment()
    }

    func duration(queue: String, type: String, seconds: Double) {
        Recorder(label: "mingus_job_duration_seconds", dimensions: [("queue", queue), ("type", type)], aggregate: true,
                 factory: factory).record(seconds)
    }

    func lag(queue: String, seconds: Double) {
        Gauge(label: "mingus_queue_lag_seconds", dimensions: [("queue", queue)], factory: factory).record(max(0, seconds))
    }

    func retried(queue: String, type: String) {
        Counter(label: "mingus_jobs_retried_total", dimensions: [("queue", queue), ("type", type)], factory: factory).increment()
    }

    func deadLettered(queue: String, type: String, reason: String) {
        Counter(label: "mingus_jobs_dead_lettered_total", dimensions: [("queue", queue), ("type", type), ("reason", reason)],
                factory: factory).increment()
    }

    func outboxPublished(_ count: Int) {
        Counter(label: "mingus_outbox_published_total", factory: factory).increment(by: count)
    }

    func scheduledFired(kind: String, count: Int) {
        Counter(label: "mingus_scheduled_jobs_fired_total", dimensions: [("kind", kind)], factory: factory).increment(by: count)
    }
}
