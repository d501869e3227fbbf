public import Foundation
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
public import MingusPostgres
import MingusCore
import MingusSecurity

/// `GET /api/integrations/status`: one view of the health of every part (``IntegrationsStatus``).
public struct StatusRoutes: Sendable {
    let status: IntegrationsStatus

    public init(_ gateway: GatewayServices) {
        let publisher = gateway.publisher
        status = IntegrationsStatus(database: gateway.database) { await publisher.queueInfo($0) }
    }

    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let status = self.status
        routes.group(requiring: .securityRead).get("status") { _, _ in APIResponse(try await status.check()) }
        return routes
    }
}

/// The health of every part of the system; each item is `healthy`, `degraded` or `down`, with
/// the reasons. The status route and the dashboard's status panel both answer with ``check()``.
///
/// - processes: every kind that sent a heartbeat in the last 7 days (``ProcessHeartbeat``):
///   instances alive (seen within 15 s, not stopped), ready, last seen; down with none alive;
/// - queues: each worker kind's queue depth and consumers, and its dead-letter queue's depth;
/// - alert channels: the share of deliveries of the last hour that were delivered;
/// - DigitalOcean polling, cron schedules' last runs, and the age of the newest audit checkpoint.
public struct IntegrationsStatus: Sendable {
    /// A queue's depth and consumer count; nil when the broker cannot tell.
    public typealias QueueInspector = @Sendable (String) async -> (messages: Int, consumers: Int)?

    let database: PostgresClient
    let queueInfo: QueueInspector

    public init(database: PostgresClient, queueInfo: @escaping QueueInspector) {
        self.database = database
        self.queueInfo = queueInfo
    }

    /// One part's health.
    public struct Item: Encodable, Sendable {
        /// `process`, `queue`, `alert_channel`, `digitalocean`, `schedule` or `audit`.
        public var component: String
        public var name: String
        /// `healthy`, `degraded` or `down`.
        public var status: String
        /// Why it is not healthy (empty when it is).
        public var reasons: [String]
        public var details: [String: String]
    }

    /// Every part's health and the worst of them.
    public struct Report: Encodable, Sendable {
        public var status: String
        public var checkedAt: Date
        public var items: [Item]
    }

    /// Worse statuses rank higher.
    public static let rank = ["healthy": 0, "degraded": 1, "down": 2]

    static func item(_ component: String, _ name: String, _ problems: [(String, String)], _ details: [String: String]) -> Item {
        let worst = problems.map(\.0).max { rank[$0]! < rank[$1]! } ?? "healthy"
        return Item(component: component, name: name, status: worst, reasons: problems.map(\.1), details: details)
    }

    /// Reads every part's health now.
    public func check() async throws -> Report {
        var items: [Item] = []
        let now = Date()
        let kinds = try await database.withConnection { db in
            let processes = try await db.query("""
                SELECT kind,
                       count(*) FILTER (WHERE stopped_at IS NULL AND last_seen_at > now() - interval '15 seconds'),
                       count(*) FILTER (WHERE stopped_at IS NULL AND last_seen_at > now() - interval '15 seconds' AND ready),
                       max(last_seen_at), max(stopped_at)
                FROM mingus_processes WHERE last_seen_at > now() - interval '7 days' GROUP BY kind ORDER BY kind
                """)
            var kinds: [String] = []
            for row in processes {
                let kind = try row.decode(String.self, at: 0)
                kinds.append(kind)
                let alive = try row.decode(Int64.self, at: 1), ready = try row.decode(Int64.self, at: 2)
                let seen = try row.decode(Date.self, at: 3)
                var problems: [(String, String)] = []
                if alive == 0 { problems.append(("down", "no instance alive (last seen \(APITime.format(seen)))")) }
                else if ready < alive { problems.append(("degraded", "\(alive - ready) of \(alive) instances not ready")) }
                items.append(Self.item("process", kind, problems, ["alive": String(alive), "ready": String(ready), "last_seen_at": APITime.format(seen)]))
            }
            let channels = try await db.query("""
                SELECT channel, count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status <> 'pending')
                FROM alert_deliveries WHERE created_at > now() - interval '1 hour' GROUP BY channel ORDER BY channel
                """)
            for row in channels {
                let channel = try row.decode(String.self, at: 0)
                let delivered = try row.decode(Int64.self, at: 1), finished = try row.decode(Int64.self, at: 2)
                var problems: [(String, String)] = []
                let rate = finished == 0 ? 1 : Double(delivered) / Double(finished)
                if rate < 0.5 { problems.append(("down", "\(delivered) of \(finished) deliveries succeeded in the last hour")) }
                else if rate < 0.95 { problems.append(("degraded", "\(delivered) of \(finished) deliveries succeeded in the last hour")) }
                items.append(Self.item("alert_channel", channel, problems,
                                       ["delivered": String(delivered), "finished": String(finished), "success_rate": String(format: "%.3f", rate)]))
            }
            if let row = try await db.query("""
                SELECT last_run_at, last_success_at, last_error, last_error_at, droplets FROM do_poll_health WHERE name = 'digitalocean'
                """).first {
                let success = try row.decode(Date?.self, at: 1), errorAt = try row.decode(Date?.self, at: 3)
                var problems: [(String, String)] = []
                if let errorAt, errorAt > (success ?? .distantPast) {
                    problems.append(("degraded", "the last poll failed: \(try row.decode(String?.self, at: 2) ?? "")"))
                }
                if now.timeIntervalSince(success ?? .distantPast) > 600 { problems.append(("down", "no successful poll for 10 minutes")) }
                items.append(Self.item("digitalocean", "polling", problems, [
                    "last_success_at": success.map(APITime.format) ?? "", "droplets": String(try row.decode(Int.self, at: 4))]))
            } else {
                items.append(Self.item("digitalocean", "polling", [], ["polling": "off or not run yet"]))
            }
            for row in try await db.query("""
                SELECT name, last_run_at, next_run_at, enabled FROM mingus_periodic_schedules ORDER BY name
                """) {
                let name = try row.decode(String.self, at: 0)
                let next = try row.decode(Date.self, at: 2)
                var problems: [(String, String)] = []
                if !(try row.decode(Bool.self, at: 3)) { problems.append(("degraded", "disabled")) }
                else if now.timeIntervalSince(next) > 120 { problems.append(("degraded", "overdue since \(APITime.format(next)): no worker fires it")) }
                items.append(Self.item("schedule", name, problems, [
                    "last_run_at": try row.decode(Date?.self, at: 1).map(APITime.format) ?? "", "next_run_at": APITime.format(next)]))
            }
            let checkpoint = try await db.query("SELECT max(created_at) FROM audit_checkpoints")[0].decode(Date?.self, at: 0)
            var problems: [(String, String)] = []
            if let checkpoint {
                if now.timeIntervalSince(checkpoint) > 86_400 { problems.append(("degraded", "the newest audit checkpoint is over a day old")) }
            } else {
                problems.append(("degraded", "no audit checkpoint yet"))
            }
            items.append(Self.item("audit", "checkpoint", problems, ["newest_at": checkpoint.map(APITime.format) ?? ""]))
            return kinds
        }
        for kind in kinds where kind != "gateway" {
            let queues = WorkerQueues(name: kind)
            var problems: [(String, String)] = []
            var details: [String: String] = [:]
            if let info = await queueInfo(queues.queue) {
                details["depth"] = String(info.messages)
                details["consumers"] = String(info.consumers)
                if info.consumers == 0 { problems.append(("down", "no consumer on \(queues.queue)")) }
                else if info.messages > 10_000 { problems.append(("degraded", "\(info.messages) jobs waiting")) }
            } else {
                problems.append(("down", "cannot inspect \(queues.queue) (broker unreachable or queue missing)"))
            }
            if let dead = await queueInfo(queues.deadLetterQueue) {
                details["dead_letters"] = String(dead.messages)
                if dead.messages > 0 { problems.append(("degraded", "\(dead.messages) jobs in \(queues.deadLetterQueue)")) }
            }
            items.append(Self.item("queue", queues.queue, problems, details))
        }
        let worst = items.map(\.status).max { Self.rank[$0]! < Self.rank[$1]! } ?? "healthy"
        return Report(status: worst, checkedAt: now, items: items)
    }
}
