import CoreMetrics
import Logging
import MingusBreach
import MingusCore
import MingusPostgres
import MingusRuntime
import MingusSecurity
import ServiceLifecycle

/// Gauges of the cluster's shared state on the gateway's `/metrics`, read every `interval`
/// (15 s), for the alerting rules and the dashboard (`Deploy/prometheus/`):
///
/// - `mingus_queue_messages{queue}` and `mingus_queue_consumers{queue}`: every worker queue and
///   dead-letter queue (a passive declare each);
/// - `mingus_audit_checkpoint_age_seconds`: since the newest signed checkpoint (+Inf before the
///   first);
/// - `mingus_breach_obligations_due_soon` and `mingus_breach_obligations_overdue`: open
///   obligations whose deadline is within 24 hours, and past.
///
/// Every gateway replica reports the same values; rules aggregate them with `max`.
struct ClusterStateGauges: Service {
    let queues: [String]
    let publisher: JobPublisher
    let database: PostgresClient
    let metrics: MetricHandles
    let logger: Logger
    var interval: Duration = .seconds(15)

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await refresh()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    func refresh() async {
        for queue in queues {
            // An unreachable broker leaves the last values; the reconnect metrics and readiness say why.
            guard let info = await publisher.queueInfo(queue) else { continue }
            metrics.gauge("mingus_queue_messages", [("queue", queue)]).record(info.messages)
            metrics.gauge("mingus_queue_consumers", [("queue", queue)]).record(info.consumers)
        }
        do {
            let age = try await AuditTrail.newestCheckpointAge(on: database) ?? .infinity
            metrics.gauge("mingus_audit_checkpoint_age_seconds").record(age)
            let obligations = try await ObligationDeadlines.read(on: database)
            metrics.gauge("mingus_breach_obligations_due_soon").record(obligations.dueWithinDay)
            metrics.gauge("mingus_breach_obligations_overdue").record(obligations.overdue)
        } catch {
            logger.warning("reading the cluster's state for /metrics failed; will retry", metadata: ["mingus.error": "\(error)"])
        }
    }
}
