public import Foundation
import CoreMetrics
import Logging
import MingusAlerts
import MingusCore
public import MingusPostgres
public import MingusRuntime

/// One DigitalOcean polling cycle: lists the droplets, reads each one's metrics since its
/// newest stored sample (at most `lookback` back), stores the derived samples, and evaluates
/// the rules, firing and resolving alerts (and opening incidents for critical rules) in the
/// job's transaction. Cycles never overlap (a transaction-scoped advisory lock); a failure is
/// recorded in `do_poll_health` and the next cycle tries again.
public struct DropletMonitor: Sendable {
    public let client: DigitalOceanClient
    public let rules: DropletRules
    let metrics: MetricHandles

    public init(client: DigitalOceanClient, rules: DropletRules, metrics: MetricHandles = MetricHandles()) {
        self.client = client
        self.rules = rules
        self.metrics = metrics
    }

    /// What one cycle did.
    public struct Outcome: Sendable {
        public var droplets: Int
        public var samples: Int
        public var fired: Int
        public var resolved: Int
    }

    /// A sample to store.
    struct Sample {
        var droplet: Int64
        var metric: DropletMetric
        var at: Date
        var value: Double
    }

    /// Runs one cycle in the job's transaction; returns nil when another cycle holds the lock.
    public func poll(_ context: JobContext) async throws -> Outcome? {
        let db = context.database
        guard try await db.query("SELECT pg_try_advisory_xact_lock(hashtext('security.poll'))")[0].decode(Bool.self, at: 0) else {
            context.logger.info("a DigitalOcean poll is already running; skipping this one")
            return nil
        }
        let started = ContinuousClock.now
        let now = Date()
        do {
            let droplets = try await client.droplets(tag: rules.tag)
            let newest = Dictionary(uniqueKeysWithValues: try await db.query("""
                SELECT id, last_sample_at FROM do_droplets WHERE last_sample_at IS NOT NULL
                """).map { (try $0.decode(Int64.self, at: 0), try $0.decode(Date.self, at: 1)) })
            let samples = try await fetch(droplets, newest: newest, now: now)
            try await store(droplets, samples: samples, at: now, on: db)
            let (fired, resolved) = try await evaluate(droplets, at: now, context: context)
            let elapsed = ContinuousClock.now - started
            try await db.execute("""
                INSERT INTO do_poll_health (name, last_run_at, last_success_at, droplets, samples, duration_ms)
                VALUES ('digitalocean', \(now), \(now), \(droplets.count), \(samples.count), \(elapsed.inMilliseconds))
                ON CONFLICT (name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, last_success_at = EXCLUDED.last_success_at,
                    droplets = EXCLUDED.droplets, samples = EXCLUDED.samples, duration_ms = EXCLUDED.duration_ms
                """)
            metrics.histogram("mingus_do_poll_duration_seconds").record(elapsed.inSeconds)
            metrics.gauge("mingus_do_droplets").record(droplets.count)
            metrics.counter("mingus_do_polls_total", [("outcome", "success")]).increment()
            context.logger.info("DigitalOcean poll done", metadata: [
                "mingus.droplets": "\(droplets.count)", "mingus.samples": "\(samples.count)", "mingus.fired": "\(fired)",
                "mingus.resolved": "\(resolved)", "mingus.duration": "\(elapsed)"])
            return Outcome(droplets: droplets.count, samples: samples.count, fired: fired, resolved: resolved)
        } catch let error as DigitalOceanError {
            metrics.counter("mingus_do_polls_total", [("outcome", "failure")]).increment()
            context.logger.error("DigitalOcean poll failed", metadata: ["mingus.error": "\(error)"])
            try await db.execute("""
                INSERT INTO do_poll_health (name, last_run_at, last_error, last_error_at, duration_ms)
                VALUES ('digitalocean', \(now), \(error.description), \(now), \((ContinuousClock.now - started).inMilliseconds))
                ON CONFLICT (name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, last_error = EXCLUDED.last_error,
                    last_error_at = EXCLUDED.last_error_at, duration_ms = EXCLUDED.duration_ms
                """)
            return Outcome(droplets: 0, samples: 0, fired: 0, resolved: 0)
        }
    }

    // MARK: - Reading

    func fetch(_ droplets: [Droplet], newest: [Int64: Date], now: Date) async throws -> [Sample] {
        let lookback = rules.lookback.inSeconds
        let concurrency = rules.concurrency
        let client = self.client
        return try await withThrowingTaskGroup(of: [Sample].self) { group in
            var all: [Sample] = []
            var next = 0
            func add(_ droplet: Droplet) {
                // One step back from the newest stored sample, so CPU counters have a pair.
                let start = max(now.addingTimeInterval(-lookback), (newest[droplet.id] ?? .distantPast).addingTimeInterval(-120))
                group.addTask { try await Self.read(droplet.id, client: client, start: start, end: now) }
            }
            let active = droplets.filter { $0.status == "active" }
            while next < active.count && next < concurrency {
                add(active[next]); next += 1
            }
            while let samples = try await group.next() {
                all += samples
                if next < active.count { add(active[next]); next += 1 }
            }
            return all
        }
    }

    /// Reads one droplet's series (several requests in flight) and derives its samples.
    static func read(_ id: Int64, client: DigitalOceanClient, start: Date, end: Date) async throws -> [Sample] {
        async let cpu = client.metric("cpu", hostID: id, start: start, end: end)
        async let memoryAvailable = client.metric("memory_available", hostID: id, start: start, end: end)
        async let memoryTotal = client.metric("memory_total", hostID: id, start: start, end: end)
        async let filesystemFree = client.metric("filesystem_free", hostID: id, start: start, end: end)
        async let filesystemSize = client.metric("filesystem_size", hostID: id, start: start, end: end)
        async let load = client.metric("load_1", hostID: id, start: start, end: end)
        async let inbound = client.metric("bandwidth", hostID: id, start: start, end: end,
                                          extra: [("interface", "public"), ("direction", "inbound")])
        async let outbound = client.metric("bandwidth", hostID: id, start: start, end: end,
                                           extra: [("interface", "public"), ("direction", "outbound")])
        var samples: [Sample] = []
        for point in cpuPercent(try await cpu) { samples.append(Sample(droplet: id, metric: .cpuPercent, at: point.at, value: point.value)) }
        for point in usedPercent(free: try await memoryAvailable, size: try await memoryTotal) {
            samples.append(Sample(droplet: id, metric: .memoryUsedPercent, at: point.at, value: point.value))
        }
        for point in usedPercent(free: try await filesystemFree, size: try await filesystemSize) {
            samples.append(Sample(droplet: id, metric: .diskUsedPercent, at: point.at, value: point.value))
        }
        for (metric, series) in [(DropletMetric.load1, try await load), (.bandwidthInMbps, try await inbound), (.bandwidthOutMbps, try await outbound)] {
            for point in summed(series) { samples.append(Sample(droplet: id, metric: metric, at: point.at, value: point.value)) }
        }
        return samples
    }

    /// CPU use between consecutive points of the per-mode time counters.
    static func cpuPercent(_ series: [MetricSeries]) -> [MetricPoint] {
        var total: [Date: Double] = [:], idle: [Date: Double] = [:]
        for one in series {
            for point in one.points {
                total[point.at, default: 0] += point.value
                if one.labels["mode"] == "idle" { idle[point.at, default: 0] += point.value }
            }
        }
        let times = total.keys.sorted()
        var points: [MetricPoint] = []
        for (earlier, later) in zip(times, times.dropFirst()) {
            let all = total[later]! - total[earlier]!
            guard all > 0 else { continue }
            let idleDelta = (idle[later] ?? 0) - (idle[earlier] ?? 0)
            points.append(MetricPoint(at: later, value: min(100, max(0, 100 * (1 - idleDelta / all)))))
        }
        return points
    }

    /// 100 × (1 − free ÷ size) at the times both series have, each summed over its series.
    static func usedPercent(free: [MetricSeries], size: [MetricSeries]) -> [MetricPoint] {
        let freeSums = Dictionary(summed(free).map { ($0.at, $0.value) }) { a, _ in a }
        return summed(size).compactMap { point in
            guard point.value > 0, let available = freeSums[point.at] else { return nil }
            return MetricPoint(at: point.at, value: min(100, max(0, 100 * (1 - available / point.value))))
        }
    }

    /// The series added up per time.
    static func summed(_ series: [MetricSeries]) -> [MetricPoint] {
        var sums: [Date: Double] = [:]
        for one in series { for point in one.points { sums[point.at, default: 0] += point.value } }
        return sums.keys.sorted().map { MetricPoint(at: $0, value: sums[$0]!) }
    }

    // MARK: - Storing

    func store(_ droplets: [Droplet], samples: [Sample], at now: Date, on db: PostgresConnection) async throws {
        if !droplets.isEmpty {
            try await db.execute("""
                INSERT INTO do_droplets (id, name, status, region, tags, listed_at)
                SELECT i, n, s, r, string_to_array(t, E'\\x1f'), \(now)
                FROM unnest(\(droplets.map(\.id))::bigint[], \(droplets.map(\.name))::text[], \(droplets.map(\.status))::text[],
                            \(droplets.map(\.region))::text[], \(droplets.map { $0.tags.joined(separator: "\u{1F}") })::text[]) AS d (i, n, s, r, t)
                ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status, region = EXCLUDED.region,
                    tags = EXCLUDED.tags, listed_at = EXCLUDED.listed_at
                """)
        }
        // Droplets no longer listed are gone (destroyed, or untagged).
        try await db.execute("DELETE FROM do_droplets WHERE listed_at < \(now)")
        guard !samples.isEmpty else { return }
        for start in stride(from: 0, to: samples.count, by: 20_000) {
            let chunk = samples[start..<min(start + 20_000, samples.count)]
            try await db.execute("""
                INSERT INTO do_samples (droplet_id, metric, at, value)
                SELECT * FROM unnest(\(chunk.map(\.droplet))::bigint[], \(chunk.map(\.metric.rawValue))::smallint[],
                                     \(chunk.map(\.at))::timestamptz[], \(chunk.map(\.value))::float8[]::real[])
                ON CONFLICT (droplet_id, metric, at) DO UPDATE SET value = EXCLUDED.value
                """)
        }
        try await db.execute("""
            UPDATE do_droplets d SET last_sample_at = s.newest
            FROM (SELECT droplet_id, max(at) AS newest FROM unnest(\(samples.map(\.droplet))::bigint[], \(samples.map(\.at))::timestamptz[])
                  AS u (droplet_id, at) GROUP BY droplet_id) s
            WHERE d.id = s.droplet_id AND (d.last_sample_at IS NULL OR d.last_sample_at < s.newest)
            """)
        var latest: [Int64: [DropletMetric: Sample]] = [:]
        for sample in samples where sample.at >= latest[sample.droplet]?[sample.metric]?.at ?? .distantPast {
            latest[sample.droplet, default: [:]][sample.metric] = sample
        }
        for (droplet, byMetric) in latest {
            for (metric, sample) in byMetric {
                metrics.gauge("mingus_do_droplet_value", [("droplet_id", String(droplet)), ("metric", metric.name)]).record(sample.value)
            }
        }
    }

    // MARK: - Rules

    struct Breach: Hashable {
        var rule: String
        var droplet: Int64
    }

    /// Which droplets breach which rules now; fires the new breaches and resolves the cleared ones.
    func evaluate(_ droplets: [Droplet], at now: Date, context: JobContext) async throws -> (fired: Int, resolved: Int) {
        let db = context.database
        let byID = Dictionary(droplets.map { ($0.id, $0) }) { a, _ in a }
        var breaches: [Breach: String] = [:]
        for rule in rules.rules {
            switch rule.condition {
            case .off:
                for droplet in droplets where droplet.status == "off" {
                    breaches[Breach(rule: rule.name, droplet: droplet.id)] = "droplet \(droplet.name) (\(droplet.id)) is off"
                }
            case .notReporting:
                let silent = try await db.query("""
                    SELECT id, last_sample_at FROM do_droplets
                    WHERE status = 'active' AND (last_sample_at IS NULL OR last_sample_at < \(now)::timestamptz - make_interval(secs => \(rule.duration.inSeconds)::float8))
                    """)
                for row in silent {
                    let id = try row.decode(Int64.self, at: 0)
                    let last = try row.decode(Date?.self, at: 1)
                    breaches[Breach(rule: rule.name, droplet: id)] = "droplet \(byID[id]?.name ?? String(id)) (\(id)) sent no metrics "
                        + (last.map { "since \(JobEnvelope.formatTime($0))" } ?? "yet")
                }
            case .above(let metric, let threshold):
                let seconds = rule.duration.inSeconds
                // With a duration: every sample within it; without: the newest sample of the last 10 minutes.
                let rows = seconds > 0 ? try await db.query("""
                    SELECT droplet_id, bool_and(value > \(threshold)::float8), min(at), max(value)::float8 FROM do_samples
                    WHERE metric = \(metric.rawValue)::smallint AND at >= \(now)::timestamptz - make_interval(secs => \(seconds)::float8)
                    GROUP BY droplet_id
                    """) : try await db.query("""
                    SELECT DISTINCT ON (droplet_id) droplet_id, value > \(threshold)::float8, at, value::float8 FROM do_samples
                    WHERE metric = \(metric.rawValue)::smallint AND at >= \(now)::timestamptz - interval '10 minutes'
                    ORDER BY droplet_id, at DESC
                    """)
                for row in rows {
                    let id = try row.decode(Int64.self, at: 0)
                    guard byID[id]?.status == "active", try row.decode(Bool.self, at: 1) else { continue }
                    // The samples must cover the whole duration (one step of slack).
                    let earliest = try row.decode(Date.self, at: 2)
                    guard seconds == 0 || earliest <= now.addingTimeInterval(-seconds + 90) else { continue }
                    let peak = try row.decode(Double.self, at: 3)
                    let lasting = seconds == 0 ? "" : " for \(DurationText.format(rule.duration))"
                    breaches[Breach(rule: rule.name, droplet: id)] =
                        "\(metric.name) of droplet \(byID[id]?.name ?? String(id)) (\(id)) above \(Self.format(threshold))\(lasting) (peak \(Self.format(peak)))"
                }
            }
        }
        let firing = try await db.query("SELECT rule, droplet_id, alert_id FROM do_rule_states FOR UPDATE").map {
            (Breach(rule: try $0.decode(String.self, at: 0), droplet: try $0.decode(Int64.self, at: 1)), try $0.decode(UUID.self, at: 2))
        }
        let known = Set(firing.map(\.0))
        var resolved = 0
        for (breach, alert) in firing where breaches[breach] == nil {
            try await db.execute("DELETE FROM do_rule_states WHERE rule = \(breach.rule) AND droplet_id = \(breach.droplet)")
            let rule = rules.rules.first { $0.name == breach.rule }
            try await context.emit(type: AlertJob.type, alertJob(.resolved, breach, rule: rule, droplet: byID[breach.droplet],
                                                                  summary: "cleared"),
                                   id: UUID.derived("\(alert)/resolved").uuidString.lowercased())
            resolved += 1
        }
        var fired = 0
        for (breach, summary) in breaches.sorted(by: { ($0.key.rule, $0.key.droplet) < ($1.key.rule, $1.key.droplet) }) where !known.contains(breach) {
            guard let rule = rules.rules.first(where: { $0.name == breach.rule }) else { continue }
            let alert = UUID()
            try await db.execute("""
                INSERT INTO do_rule_states (rule, droplet_id, alert_id, summary) VALUES (\(breach.rule), \(breach.droplet), \(alert), \(summary))
                """)
            try await context.emit(type: AlertJob.type, alertJob(.firing, breach, rule: rule, droplet: byID[breach.droplet], summary: summary),
                                   id: alert.uuidString.lowercased())
            if rule.severity == .critical {
                let detection = SecurityDetectionJob(
                    kind: "droplet_rule", rule: rule.name, severity: .critical, dedupKey: "do:\(rule.name):\(breach.droplet)",
                    title: "Droplet rule \(rule.name): \(byID[breach.droplet]?.name ?? String(breach.droplet))", summary: summary,
                    service: byID[breach.droplet]?.name, detectedAt: now, reportedBy: "security-worker")
                try await context.emit(type: SecurityDetectionJob.type, detection, id: "do/\(alert.uuidString.lowercased())")
            }
            fired += 1
        }
        return (fired, resolved)
    }

    func alertJob(_ status: AlertStatus, _ breach: Breach, rule: DropletRule?, droplet: Droplet?, summary: String) -> AlertJob {
        let name = droplet?.name ?? String(breach.droplet)
        let severity: AlertSeverity = switch rule?.severity ?? .high {
        case .low: .low
        case .medium: .medium
        case .high: .high
        case .critical: .critical
        }
        return AlertJob(
            status: status, severity: severity, title: "Droplet \(name): \(rule?.description ?? breach.rule)", description: summary,
            labels: ["droplet_id": String(breach.droplet), "droplet": name, "rule": breach.rule, "component": "digitalocean"],
            source: "security-worker", dedupKey: "do:\(breach.rule):\(breach.droplet)", receivedAt: Date())
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int64(value)) : String(format: "%.1f", value)
    }
}
