import AsyncHTTPClient
import CoreMetrics
import Crypto
import Foundation
import Logging
import MingusCore
import MingusSecurity
public import MingusPostgres
public import MingusRuntime
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The alerts worker: takes alerts in (`alerts.ingest`), deduplicates them, routes them into
/// groups, notifies each group's receiver when something changed (`alerts.flush`), and delivers
/// every notification on each channel target's own queue (`alerts.deliver`), recording every
/// attempt. `mingus-alerts-worker` runs ``MingusRuntime/WorkerDefinition/alerts``.
public struct AlertsWorker: Sendable {
    let configuration: AlertingConfigurationStore
    /// Statements that must not wait for the job's commit: attempts (they outlive the job's
    /// retries) and rate-limit slots (shared at once with the other workers).
    let sideChannel: PostgresClient
    let limiter: RateLimiter
    let metrics = MetricHandles()
    let maxAttempts: Int

    public init(configuration: AlertingConfigurationStore, sideChannel: PostgresClient, maxAttempts: Int) {
        self.configuration = configuration
        self.sideChannel = sideChannel
        limiter = RateLimiter(database: sideChannel)
        self.maxAttempts = maxAttempts
    }

    /// The worker's job types; `alerts.ingest` bodies are checked against their schema.
    public func registry(schema: JSONSchema) -> JobRegistry {
        var registry = JobRegistry()
        registry.register(AlertJob.type, as: AlertJob.self, schema: schema) { job, context in
            try await ingest(job, context)
        }
        registry.register(FlushJob.type, as: FlushJob.self) { job, context in
            try await flush(job, context)
        }
        registry.register(DeliveryJob.type, as: DeliveryJob.self, batchable: false) { job, context in
            try await deliver(job, context)
        }
        return registry
    }

    // MARK: - Intake

    /// Stores the alert (a repeat of a firing one only counts), or resolves the firing one, and
    /// puts a new alert into the group of every route it matches.
    func ingest(_ job: AlertJob, _ context: JobContext) async throws {
        if let violation = job.violation() { throw PermanentJobError("\(violation.field): \(violation.message)") }
        guard let eventID = UUID(uuidString: context.id) else { throw PermanentJobError("the job id must be a UUID") }
        let db = context.database
        let labels = job.matchLabels
        let labelsJSON = try jsonText(labels)
        let fingerprint = job.fingerprint
        if job.status == .resolved {
            let rows = try await db.query("""
                UPDATE alerts SET status = 'resolved', ends_at = \(job.receivedAt), updated_at = now()
                WHERE fingerprint = \(fingerprint) AND status = 'firing' RETURNING id
                """)
            let alertID = try rows.first?.decode(UUID.self, at: 0)
            try await db.execute("""
                INSERT INTO alert_events (id, alert_id, status, outcome)
                VALUES (\(eventID), \(alertID), 'resolved', \(alertID == nil ? "not_firing" : "resolved"))
                ON CONFLICT (id) DO NOTHING
                """)
            return
        }
        let rows = try await db.query("""
            INSERT INTO alerts (id, fingerprint, status, severity, title, description, labels, source, dedup_key,
                                starts_at, last_received_at)
            VALUES (\(eventID), \(fingerprint), 'firing', \(job.severity.rawValue), \(job.title), \(job.description),
                    \(labelsJSON)::jsonb, \(job.source), \(job.dedupKey), \(job.receivedAt), \(job.receivedAt))
            ON CONFLICT (fingerprint) WHERE status = 'firing' DO UPDATE SET
                received_count = alerts.received_count + 1, last_received_at = EXCLUDED.last_received_at,
                description = EXCLUDED.description, updated_at = now()
            RETURNING id, xmax = 0
            """)
        let alertID = try rows[0].decode(UUID.self, at: 0)
        let isNew = try rows[0].decode(Bool.self, at: 1)
        try await db.execute("""
            INSERT INTO alert_events (id, alert_id, status, outcome)
            VALUES (\(eventID), \(alertID), 'firing', \(isNew ? "new" : "deduplicated")) ON CONFLICT (id) DO NOTHING
            """)
        guard isNew else { return }
        // Recorded for the history; flushes check silences and inhibition again.
        let configuration = self.configuration.current
        if let suppressed = try await suppression(labels, alertID: alertID, configuration: configuration,
                                                  silences: try await activeSilences(on: db), sources: InhibitingAlerts(), on: db) {
            try await db.execute("UPDATE alerts SET suppressed_by = \(suppressed) WHERE id = \(alertID)")
        }
        for route in configuration.routes(for: labels) {
            try await join(alertID, labels: labels, route: route, context)
        }
    }

    /// Adds an alert to its group for `route`, making the group (and its first flush, after
    /// `group_wait`) when it is new.
    private func join(_ alertID: UUID, labels: [String: String], route: AlertRoute, _ context: JobContext) async throws {
        let groupLabels = route.groupLabels(labels)
        let key = route.id + "|" + groupLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        let firstFlush = Date().addingTimeInterval(route.groupWait.inSeconds)
        let rows = try await context.database.query("""
            INSERT INTO alert_groups (route, group_key, receiver, group_labels, next_flush_at)
            VALUES (\(route.id), \(key), \(route.receiver), \(try jsonText(groupLabels))::jsonb, \(firstFlush))
            ON CONFLICT (route, group_key) DO UPDATE SET
                next_flush_at = COALESCE(alert_groups.next_flush_at, EXCLUDED.next_flush_at), receiver = EXCLUDED.receiver
            RETURNING id, next_flush_at, xmax = 0 OR alert_groups.next_flush_at IS NULL
            """)
        let groupID = try rows[0].decode(UUID.self, at: 0)
        try await context.database.execute("""
            INSERT INTO alert_group_members (group_id, alert_id) VALUES (\(groupID), \(alertID)) ON CONFLICT DO NOTHING
            """)
        if try rows[0].decode(Bool.self, at: 2) {
            try await scheduleFlush(groupID, at: try rows[0].decode(Date.self, at: 1), immediately: route.groupWait == .zero, context)
        }
    }

    private func scheduleFlush(_ group: UUID, at date: Date, immediately: Bool, _ context: JobContext) async throws {
        let id = "flush/\(group.uuidString.lowercased())/\(Int64(date.timeIntervalSince1970 * 1000))"
        if immediately {
            try await context.emit(type: FlushJob.type, routingKey: FlushJob.type, FlushJob(groupId: group), id: id)
        } else {
            try await Scheduler.schedule(on: context.database, id: id, type: FlushJob.type, routingKey: FlushJob.type,
                                         body: Array(try JSONEncoder.mingus.encode(FlushJob(groupId: group))), at: date)
        }
    }

    /// Why an alert with `labels` is muted now: `silence:<id>`, `inhibited`, or nil.
    func suppression(_ labels: [String: String], alertID: UUID, configuration: AlertingConfiguration,
                     silences: [(UUID, [LabelMatcher])], sources: InhibitingAlerts, on db: PostgresConnection) async throws -> String? {
        for (id, matchers) in silences where matchers.matchAll(labels) {
            return "silence:\(id.uuidString.lowercased())"
        }
        for rule in configuration.inhibitRules where rule.targetMatchers.matchAll(labels) {
            let equal = try jsonText(Dictionary(uniqueKeysWithValues: rule.equal.compactMap { name in labels[name].map { (name, $0) } }))
            for (id, source) in try await sources.firing(containing: equal, on: db) where id != alertID {
                if rule.inhibits(labels, by: source) { return "inhibited" }
            }
        }
        return nil
    }

    /// Firing alerts by the labels they contain, each set looked up once per flush: a group's
    /// members usually share the labels an inhibition rule compares, so one query serves them all.
    final class InhibitingAlerts {
        private var found: [String: [(UUID, [String: String])]] = [:]

        func firing(containing labels: String, on db: PostgresConnection) async throws -> [(UUID, [String: String])] {
            if let known = found[labels] { return known }
            let rows = try await db.query("""
                SELECT id, labels::text FROM alerts WHERE status = 'firing' AND labels @> \(labels)::jsonb
                """)
            let alerts = try rows.map { row in
                (try row.decode(UUID.self, at: 0),
                 try JSONDecoder().decode([String: String].self, from: Data(try row.decode(String.self, at: 1).utf8)))
            }
            found[labels] = alerts
            return alerts
        }
    }

    private func activeSilences(on db: PostgresConnection) async throws -> [(UUID, [LabelMatcher])] {
        try await db.query("""
            SELECT id, matchers::text FROM alert_silences WHERE starts_at <= now() AND ends_at > now()
            """).map { row in
            let texts = try JSONDecoder().decode([String].self, from: Data(try row.decode(String.self, at: 1).utf8))
            return (try row.decode(UUID.self, at: 0), try texts.map { try LabelMatcher(parsing: $0) })
        }
    }

    // MARK: - Groups

    /// Notifies a group's receiver when alerts are new or resolved since the last notification,
    /// or when `repeat_interval` has passed; then schedules the next look after `group_interval`,
    /// or removes the group once nothing is left in it.
    func flush(_ job: FlushJob, _ context: JobContext) async throws {
        let db = context.database
        let groups = try await db.query("""
            SELECT route, receiver, group_labels::text, last_notified_at, group_key FROM alert_groups
            WHERE id = \(job.groupId) FOR UPDATE
            """)
        guard let group = groups.first else { return }
        let routeID = try group.decode(String.self, at: 0)
        let receiverName = try group.decode(String.self, at: 1)
        let groupLabels = try JSONDecoder().decode([String: String].self, from: Data(try group.decode(String.self, at: 2).utf8))
        let lastNotified = try group.decode(Date?.self, at: 3)
        let groupKey = try group.decode(String.self, at: 4)
        let configuration = self.configuration.current
        let route = configuration.route.find(routeID)
        let groupInterval = route?.groupInterval ?? .seconds(300)
        let repeatInterval = route?.repeatInterval ?? .seconds(14_400)

        let members = try await db.query("""
            SELECT a.id, a.status, a.severity, a.title, a.description, a.labels::text, a.source, a.starts_at, a.ends_at,
                   m.notified_status
            FROM alert_group_members m JOIN alerts a ON a.id = m.alert_id WHERE m.group_id = \(job.groupId)
            ORDER BY a.starts_at, a.id
            """)
        let silences = try await activeSilences(on: db)
        let sources = InhibitingAlerts()
        var firing: [NotifiedAlert] = []
        var newlyFiring = false
        var resolved: [NotifiedAlert] = []
        var finished: [UUID] = []
        for row in members {
            let labels = try JSONDecoder().decode([String: String].self, from: Data(try row.decode(String.self, at: 5).utf8))
            let alert = NotifiedAlert(
                id: try row.decode(UUID.self, at: 0), status: AlertStatus(rawValue: try row.decode(String.self, at: 1)) ?? .firing,
                severity: AlertSeverity(rawValue: try row.decode(String.self, at: 2)) ?? .info, title: try row.decode(String.self, at: 3),
                description: try row.decode(String.self, at: 4), labels: labels.filter { !AlertJob.reservedLabels.contains($0.key) },
                source: try row.decode(String.self, at: 6), startsAt: try row.decode(Date.self, at: 7),
                endsAt: try row.decode(Date?.self, at: 8))
            let notified = try row.decode(String?.self, at: 9)
            if alert.status == .resolved {
                finished.append(alert.id)
                if notified == "firing" { resolved.append(alert) }
            } else if try await suppression(labels, alertID: alert.id, configuration: configuration, silences: silences,
                                            sources: sources, on: db) == nil {
                firing.append(alert)
                if notified != "firing" { newlyFiring = true }
            }
        }
        let now = Date()
        let repeatDue = lastNotified.map { now.timeIntervalSince($0) >= repeatInterval.inSeconds - 0.5 } ?? true
        let notify = newlyFiring || !resolved.isEmpty || (!firing.isEmpty && repeatDue)
        if notify, !firing.isEmpty || !resolved.isEmpty, let receiver = configuration.receivers[receiverName] {
            let notification = AlertNotification(
                status: firing.isEmpty ? .resolved : .firing, receiver: receiverName, groupLabels: groupLabels,
                groupKey: "mingus-" + sha256Hex(groupKey + "|" + receiverName).prefix(32),
                alerts: firing + resolved)
            for target in receiver.targets where notification.status == .firing || target.sendResolved {
                try await createDelivery(notification, groupID: job.groupId, target: target, receiver: receiverName,
                                         fallbackOf: nil, id: UUID(), context)
            }
            try await db.execute("""
                UPDATE alert_group_members SET notified_status = 'firing'
                WHERE group_id = \(job.groupId) AND alert_id = ANY(\(firing.map(\.id))::uuid[])
                """)
            try await db.execute("UPDATE alert_groups SET last_notified_at = now() WHERE id = \(job.groupId)")
        }
        if !finished.isEmpty {
            try await db.execute("""
                DELETE FROM alert_group_members WHERE group_id = \(job.groupId) AND alert_id = ANY(\(finished)::uuid[])
                """)
        }
        if members.count == finished.count {
            try await db.execute("DELETE FROM alert_groups WHERE id = \(job.groupId)")
            return
        }
        let next = now.addingTimeInterval(groupInterval.inSeconds)
        try await db.execute("UPDATE alert_groups SET next_flush_at = \(next) WHERE id = \(job.groupId)")
        try await scheduleFlush(job.groupId, at: next, immediately: false, context)
    }

    /// Records a pending delivery and emits its job to the channel's queue.
    private func createDelivery(_ notification: AlertNotification, groupID: UUID, target: ChannelTarget, receiver: String,
                                fallbackOf: UUID?, id: UUID, _ context: JobContext) async throws {
        let inserted = try await context.database.execute("""
            INSERT INTO alert_deliveries (id, group_id, alert_ids, kind, receiver, target, channel, fallback_of)
            VALUES (\(id), \(groupID), \(notification.alerts.map(\.id))::uuid[], \(notification.status.rawValue), \(receiver),
                    \(target.name), \(target.channel.rawValue), \(fallbackOf))
            ON CONFLICT (id) DO NOTHING
            """)
        guard inserted > 0 else { return }
        let job = DeliveryJob(deliveryId: id, channel: target.channel, receiver: receiver, target: target.name,
                              notification: notification, groupId: groupID)
        try await context.emit(type: DeliveryJob.type, routingKey: target.channel.routingKey, job,
                               id: "deliver/\(id.uuidString.lowercased())")
    }

    // MARK: - Delivery

    /// Sends one notification to one target: waits for the target's rate limit, honours 429
    /// (pausing the target for the provider's retry signal), records each attempt, and leaves
    /// 5xx and timeouts to the retry tiers. A permanent failure (or the last attempt) marks the
    /// delivery failed, hands the notification to the receiver's fallback, and dead-letters the job.
    func deliver(_ job: DeliveryJob, _ context: JobContext) async throws {
        let rows = try await context.database.query("""
            SELECT status, created_at, fallback_of FROM alert_deliveries WHERE id = \(job.deliveryId)
            """)
        guard let row = rows.first else { throw PermanentJobError("delivery \(job.deliveryId) is not recorded") }
        switch try row.decode(String.self, at: 0) {
        case "pending":
            break
        case "failed" where context.attempt == 1:
            // Replayed from the dead-letter queue (replays start again at attempt 1): try it again.
            // Committed at once: attempts are recorded on another connection, which must not wait
            // for this job's lock on the row.
            try await sideChannel.execute("""
                UPDATE alert_deliveries SET status = 'pending', finished_at = NULL WHERE id = \(job.deliveryId)
                """)
        default:
            return
        }
        let created = try row.decode(Date.self, at: 1)
        let isFallback = try row.decode(UUID?.self, at: 2) != nil
        let configuration = self.configuration.current
        guard let target = configuration.target(receiver: job.receiver, name: job.target) else {
            try await fail(job, reason: "target \(job.target) is no longer configured", isFallback: isFallback,
                           configuration: configuration, context)
        }
        var throttles = 0
        while true {
            let wait = try await limiter.reserve(target.name, target.rateLimit)
            if wait > .zero {
                metrics.counter("mingus_alert_rate_limit_waits_total", [("channel", target.channel.rawValue)]).increment()
                metrics.histogram("mingus_alert_rate_limit_wait_seconds", [("channel", target.channel.rawValue)])
                    .record(wait.inSeconds)
                try await Task.sleep(for: wait)
            }
            let started = Date()
            let result = await send(job, to: target)
            let elapsed = Date().timeIntervalSince(started)
            // A success commits with the job; any other outcome is written at once, as the job's
            // transaction may roll back (a retry) and the attempt must stay on record.
            if case .delivered = result {
                try await recordAttempt(job.deliveryId, started: started, seconds: elapsed, result: result, on: context.database)
            } else {
                try await sideChannel.withConnection { connection in
                    try await recordAttempt(job.deliveryId, started: started, seconds: elapsed, result: result, on: connection)
                }
            }
            metrics.counter("mingus_alert_deliveries_total",
                            [("channel", target.channel.rawValue), ("outcome", result.outcome)]).increment()
            switch result {
            case .delivered:
                metrics.histogram("mingus_alert_delivery_latency_seconds", [("channel", target.channel.rawValue)])
                    .record(Date().timeIntervalSince(created))
                return
            case .throttled(let retryAfter, let detail):
                try await limiter.pause(target.name, target.rateLimit, for: retryAfter)
                throttles += 1
                if throttles > 5 || retryAfter > .seconds(120) {
                    throw DeliveryFailure("\(detail); still throttled after \(throttles) tries")
                }
                context.logger.info("provider asked to slow down", metadata: [
                    "mingus.alert.target": "\(target.name)", "mingus.retry_after": "\(DurationText.format(retryAfter))",
                ])
            case .retryable(let detail, _):
                guard context.attempt < maxAttempts else {
                    try await fail(job, reason: "\(detail) (after \(context.attempt) attempts)", isFallback: isFallback,
                                   configuration: configuration, context)
                }
                throw DeliveryFailure(detail)
            case .permanent(let detail, _):
                try await fail(job, reason: detail, isFallback: isFallback, configuration: configuration, context)
            }
        }
    }

    private func send(_ job: DeliveryJob, to target: ChannelTarget) async -> AttemptResult {
        if case .email(let settings) = target.settings {
            let message = EmailMessage.build(job.notification, settings: settings, delivery: job.deliveryId)
            return await SMTPClient(settings: settings).send(message, timeout: target.timeout)
        }
        do {
            let request = try ChannelRequests.request(target.settings, job.notification, delivery: job.deliveryId)
            var http = HTTPClientRequest(url: request.url)
            http.method = .POST
            for header in request.headers { http.headers.add(name: header.name, value: header.value) }
            http.headers.add(name: "user-agent", value: "mingus-alerts/1")
            http.body = .bytes(ByteBuffer(bytes: request.body))
            let timeout = TimeAmount.nanoseconds(Int64(target.timeout.inSeconds * 1e9))
            let response = try await HTTPClient.shared.execute(http, timeout: timeout)
            let body = try await response.body.collect(upTo: 64 * 1024)
            return ChannelRequests.classify(target.channel, status: Int(response.status.code),
                                            headers: response.headers.map { ($0.name, $0.value) }, body: Array(body.readableBytesView))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .retryable(detail: "no answer within \(DurationText.format(target.timeout))", httpStatus: nil)
        } catch {
            return .retryable(detail: "\(error)".prefixed(300), httpStatus: nil)
        }
    }

    /// Writes one attempt, committed at once so that a retried or failed job keeps it.
    /// Counts an attempt on the delivery (finishing it when delivered) and writes its row.
    private func recordAttempt(_ delivery: UUID, started: Date, seconds: Double, result: AttemptResult,
                               on connection: PostgresConnection) async throws {
        var providerID: String?
        if case .delivered(let id) = result { providerID = id }
        let delivered = result.outcome == "delivered"
        try await connection.execute("""
            WITH counted AS (
                UPDATE alert_deliveries SET attempts = attempts + 1, last_error = \(result.detail),
                    status = CASE WHEN \(delivered)::boolean THEN 'delivered' ELSE status END,
                    provider_id = COALESCE(\(providerID)::text, provider_id),
                    finished_at = CASE WHEN \(delivered)::boolean THEN clock_timestamp() ELSE finished_at END
                WHERE id = \(delivery) RETURNING attempts)
            INSERT INTO alert_delivery_attempts (delivery_id, attempt, started_at, duration_ms, outcome, http_status, error)
            SELECT \(delivery)::uuid, attempts, \(started)::timestamptz, \(seconds * 1000)::double precision,
                   \(result.outcome)::text, \(result.httpStatus)::int, \(result.detail)::text
            FROM counted
            """)
    }

    /// Marks the delivery failed, hands the notification to the receiver's fallback (not for a
    /// delivery that is itself a fallback), and dead-letters the job keeping those changes.
    private func fail(_ job: DeliveryJob, reason: String, isFallback: Bool, configuration: AlertingConfiguration,
                      _ context: JobContext) async throws -> Never {
        try await context.database.execute("""
            UPDATE alert_deliveries SET status = 'failed', last_error = \(reason), finished_at = clock_timestamp() WHERE id = \(job.deliveryId)
            """)
        var handedTo: [String] = []
        if !isFallback, let fallback = configuration.receivers[job.receiver]?.fallback, let receiver = configuration.receivers[fallback] {
            for target in receiver.targets {
                try await createDelivery(job.notification, groupID: job.groupId, target: target, receiver: fallback,
                                         fallbackOf: job.deliveryId, id: derivedUUID(job.deliveryId, target.name), context)
                handedTo.append(target.name)
            }
        }
        context.logger.warning("alert delivery failed", metadata: [
            "mingus.alert.target": "\(job.target)", "mingus.error": "\(reason)", "mingus.alert.fallback": "\(handedTo)",
        ])
        throw PermanentJobError("\(job.target): \(reason)", keepingChanges: true)
    }
}

/// A delivery attempt that failed in a way worth retrying later.
struct DeliveryFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The routing configuration in use, replaced as a whole on reload.
public final class AlertingConfigurationStore: Sendable {
    private let value: Mutex<AlertingConfiguration>

    public init(_ configuration: AlertingConfiguration) { value = Mutex(configuration) }

    public var current: AlertingConfiguration { value.withLock { $0 } }

    func replace(_ configuration: AlertingConfiguration) { value.withLock { $0 = configuration } }
}

/// Reloads the routing file on SIGHUP; an invalid file is reported and the old one kept.
struct ConfigurationReloader: Service {
    let store: AlertingConfigurationStore
    let path: String
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            do {
                let configuration = try AlertingConfiguration.load(path: path)
                store.replace(configuration)
                logger.info("alerting configuration reloaded", metadata: [
                    "mingus.config": "\(path)", "mingus.receivers": "\(configuration.receivers.count)",
                ])
            } catch {
                logger.error("alerting configuration reload failed; keeping the previous one", metadata: [
                    "mingus.config": "\(path)", "mingus.error": "\(error)",
                ])
            }
        }
    }
}

extension AlertRoute {
    /// The route with `id` in this subtree.
    func find(_ id: String) -> AlertRoute? {
        if self.id == id { return self }
        for child in routes { if let found = child.find(id) { return found } }
        return nil
    }
}

func sha256Hex(_ text: String) -> String {
    Hex.encode(SHA256.hash(data: Data(text.utf8)))
}

/// A UUID that is the same for the same inputs (for ids a retried handler must reproduce): the
/// first 128 bits of SHA-256 over both, with the version and variant bits set. RFC 9562 keeps
/// version 5 for SHA-1 name-based UUIDs; a UUID built from another hash is version 8 (custom).
func derivedUUID(_ base: UUID, _ salt: String) -> UUID {
    var bytes = Array(SHA256.hash(data: Data((base.uuidString + "|" + salt).utf8)).prefix(16))
    bytes[6] = (bytes[6] & 0x0F) | 0x80
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                       bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
}

func jsonText(_ labels: [String: String]) throws -> String {
    String(decoding: try JSONEncoder.sortedKeys.encode(labels), as: UTF8.self)
}
