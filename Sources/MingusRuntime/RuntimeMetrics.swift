public import CoreMetrics
import Foundation
import Synchronization

/// The runtime's metrics, created from one factory (Prometheus in the executables). Names follow
/// Prometheus conventions; dimensions stay low-cardinality (queue, type, outcome, never job ids).
/// Metric handles are made once per label set and cached: making one costs a registry lookup.
public final class RuntimeMetrics: Sendable {
    private let factory: any MetricsFactory
    private let counters = Mutex<[[String]: Counter]>([:])
    private let recorders = Mutex<[[String]: Recorder]>([:])
    private let gauges = Mutex<[[String]: Gauge]>([:])
    let jobsInFlight: Meter

    public init(factory: any MetricsFactory) {
        self.factory = factory
        jobsInFlight = Meter(label: "mingus_jobs_in_flight", factory: factory)
    }

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = [label] + dimensions.flatMap { [$0.0, $0.1] }
        return counters.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions, factory: factory)
            cache[key] = counter
            return counter
        }
    }

    /// Outcomes of a delivery: `ok`, `duplicate` (already applied), `retried`, `dead_lettered`, `requeued`.
    func processed(queue: String, type: String, outcome: String) {
        counter("mingus_jobs_processed_total", [("queue", queue), ("type", type), ("outcome", outcome)]).increment()
    }

    func duration(queue: String, type: String, seconds: Double) {
        let key = [queue, type]
        let recorder = recorders.withLock { cache in
            if let recorder = cache[key] { return recorder }
            let recorder = Recorder(label: "mingus_job_duration_seconds", dimensions: [("queue", queue), ("type", type)],
                                    aggregate: true, factory: factory)
            cache[key] = recorder
            return recorder
        }
        recorder.record(seconds)
    }

    func lag(queue: String, seconds: Double) {
        let gauge = gauges.withLock { cache in
            if let gauge = cache[[queue]] { return gauge }
            let gauge = Gauge(label: "mingus_queue_lag_seconds", dimensions: [("queue", queue)], factory: factory)
            cache[[queue]] = gauge
            return gauge
        }
        gauge.record(max(0, seconds))
    }

    func retried(queue: String, type: String) {
        counter("mingus_jobs_retried_total", [("queue", queue), ("type", type)]).increment()
    }

    func deadLettered(queue: String, type: String, reason: String) {
        counter("mingus_jobs_dead_lettered_total", [("queue", queue), ("type", type), ("reason", reason)]).increment()
    }

    func reconnected(_ component: String) {
        counter("mingus_reconnects_total", [("component", component)]).increment()
    }

    func outboxPublished(_ count: Int) {
        counter("mingus_outbox_published_total", []).increment(by: count)
    }

    func scheduledFired(kind: String, count: Int) {
        counter("mingus_scheduled_jobs_fired_total", [("kind", kind)]).increment(by: count)
    }
}
