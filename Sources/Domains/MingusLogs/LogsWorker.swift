public import Foundation
import CoreMetrics
import Logging
import MingusAlerts
import MingusCore
import MingusLogMining
public import MingusPostgres
public import MingusRuntime
import Synchronization

/// `logs.batch`: log lines to store, from the gateway (`POST /api/logs`, redacted there) or from a
/// service inside the cluster (redacted by the worker in any case).
public struct LogsBatchJob: Codable, Sendable, Equatable {
    public static let type = "logs.batch"
    public var lines: [LogRecord]
    /// When the gateway took the lines, microseconds since 1970.
    public var receivedAt: Int64
    /// Services whose lines held a card number before the gateway redacted it.
    public var cardSources: [String]?

    public init(lines: [LogRecord], receivedAt: Int64, cardSources: [String]? = nil) {
        self.lines = lines
        self.receivedAt = receivedAt
        self.cardSources = cardSources
    }
}

/// The logs worker: redacts (again), mines each line's template, stores the lines with COPY in
/// their day partition, counts them per template, service and minute, and turns anomalies into
/// alerts (`alerts.ingest`) — all in the jobs' transaction, so a redelivered batch is stored once.
///
/// Anomalies: a template first seen after the warm-up (`warmupLines` lines mined since the store
/// began), a service's error and fatal lines in one minute reaching `errorBurst`, and a card number
/// found in a service's lines (a PCI DSS finding; the alert names the service, never the number).
/// Each is stored once per kind, service, minute and template, and its alert carries a stable
/// `dedup_key` (`logs:<kind>:<service>[:<template>]`), so a continuing anomaly stays one alert.
public final class LogsWorker: Sendable {
    let miner: Mutex<LogTemplateMiner>
    let minedLines: Atomic<Int>
    let warmupLines: Int
    let errorBurst: Int
    let redactor = LogRedactor()
    let metrics = MetricHandles()

    /// Lines with a time further than this in the past, or a day in the future, are stored at the
    /// time they were received (so a wrong clock cannot make partitions for any day).
    static let acceptedPast: Int64 = 7 * 86_400 * 1_000_000
    static let acceptedFuture: Int64 = 86_400 * 1_000_000

    init(miner: LogTemplateMiner, minedLines: Int, warmupLines: Int, errorBurst: Int) {
        self.miner = Mutex(miner)
        self.minedLines = Atomic(minedLines)
        self.warmupLines = warmupLines
        self.errorBurst = errorBurst
    }

    /// Loads the saved templates; new templates get ids from a block of 2^32 reserved for this
    /// process from `log_template_ids`, so processes never hand out the same id.
    public static func load(database: PostgresClient, warmupLines: Int = 10_000, errorBurst: Int = 100) async throws -> LogsWorker {
        let saved = try await database.query("SELECT id, template, line_count FROM log_templates WHERE merged_into IS NULL ORDER BY id")
            .map { LogTemplate(id: LogTemplateID(try $0.decode(Int64.self, at: 0)), text: try $0.decode(String.self, at: 1),
                               count: Int(try $0.decode(Int64.self, at: 2))) }
        let block = try await database.query("SELECT nextval('log_template_ids')")[0].decode(Int64.self, at: 0)
        let lines = try await database.query("SELECT COALESCE(sum(line_count), 0)::bigint FROM log_templates")[0].decode(Int64.self, at: 0)
        let miner = try LogTemplateMiner(configuration: .standard, saved: Array(saved.suffix(LogTemplateMiner.Configuration.standard.maximumTemplates)),
                                         firstID: LogTemplateID(block - 1) << 32 + 1)
        return LogsWorker(miner: miner, minedLines: Int(lines), warmupLines: warmupLines, errorBurst: errorBurst)
    }

    public func registry(schema: (String) throws -> JSONSchema) throws -> JobRegistry {
        var registry = JobRegistry()
        registry.registerBatch(LogsBatchJob.type, as: LogsBatchJob.self, schema: try schema(LogsBatchJob.type)) { jobs in
            try await self.store(jobs)
        }
        return registry
    }

    /// One line ready to store.
    struct Mined {
        var record: LogRecord
        var at: Int64
        var template: Int64
        var variables: [String]
        var job: String
        var seq: Int
    }

    /// A template a batch touched.
    struct Touched {
        var text: String
        var lines: Int64 = 0
        var first: Int64
        var last: Int64
        var example: String
        var isNew = false
        var absorbed: [Int64] = []
    }

    func store(_ jobs: [BatchedJob<LogsBatchJob>]) async throws {
        guard let db = jobs.first?.context.database else { return }
        var mined: [Mined] = []
        var touched: [Int64: Touched] = [:]
        var cardSources = Set(jobs.flatMap { $0.body.cardSources ?? [] })
        var redactions = Redactions()
        let warm = minedLines.load(ordering: .relaxed) >= warmupLines
        miner.withLock { miner in
            for job in jobs {
                let received = job.body.receivedAt
                for (seq, line) in job.body.lines.enumerated() {
                    var record = line
                    let (text, found) = redactor.redact(record.message)
                    record.message = text
                    if found.card > 0 { cardSources.insert(record.service) }
                    redactions += found
                    let match = miner.add(text)
                    let id = Int64(bitPattern: match.templateID)
                    let at = (received - Self.acceptedPast...received + Self.acceptedFuture).contains(record.time) ? record.time : received
                    mined.append(Mined(record: record, at: at, template: id, variables: Self.variables(text, template: match.templateText),
                                       job: job.context.id, seq: seq))
                    var entry = touched[id] ?? Touched(text: match.templateText, first: at, last: at, example: text)
                    entry.text = match.templateText
                    entry.lines += 1
                    entry.first = min(entry.first, at)
                    entry.last = max(entry.last, at)
                    entry.isNew = entry.isNew || match.isNew
                    entry.absorbed += match.absorbedTemplateIDs.map { Int64(bitPattern: $0) }
                    touched[id] = entry
                }
            }
        }
        minedLines.add(mined.count, ordering: .relaxed)
        for (kind, count) in redactions.counts {
            metrics.counter("mingus_logs_redactions_total", [("kind", kind)]).increment(by: count)
        }
        metrics.counter("mingus_logs_lines_total").increment(by: mined.count)

        try await ensurePartitions(Set(mined.map { Self.day($0.at) }), on: db)
        try await copy(mined, on: db)
        try await saveTemplates(touched, on: db)
        try await countMinutes(mined, on: db)
        try await detect(mined: mined, touched: touched, warm: warm, cardSources: cardSources, jobs: jobs)
    }

    /// The message's words where the template has `<*>` (when both have the same number of words).
    static func variables(_ message: String, template: String) -> [String] {
        let words = message.split(separator: " ", omittingEmptySubsequences: true)
        let slots = template.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count == slots.count else { return [] }
        return zip(words, slots).compactMap { word, slot in slot.contains("<*>") && word != slot ? String(word) : nil }
    }

    // MARK: - Storage

    /// Days since 1970 of a time in microseconds.
    static func day(_ micros: Int64) -> Int64 { micros >= 0 ? micros / 86_400_000_000 : (micros + 1) / 86_400_000_000 - 1 }

    static func partitionName(_ day: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(day) * 86_400)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "log_lines_%04d%02d%02d", parts.year!, parts.month!, parts.day!)
    }

    /// Makes the day partitions a batch needs; two workers making one at once both succeed (the
    /// loser's statement waits for the winner's lock, then finds the table there).
    func ensurePartitions(_ days: Set<Int64>, on db: PostgresConnection) async throws {
        for day in days.sorted() {
            let name = Self.partitionName(day)
            let exists = try await db.query("SELECT to_regclass(\(name)) IS NOT NULL")[0].decode(Bool.self, at: 0)
            if exists { continue }
            try await db.execute("SELECT pg_advisory_xact_lock(hashtext('mingus.logs.partition'))")
            try await db.execute("""
                DO $$ BEGIN
                    IF to_regclass('\(unescaped: name)') IS NULL THEN
                        CREATE TABLE \(unescaped: name) PARTITION OF log_lines
                            FOR VALUES FROM (to_timestamp(\(unescaped: String(day * 86_400)))) TO (to_timestamp(\(unescaped: String((day + 1) * 86_400))));
                    END IF;
                END $$
                """)
        }
    }

    func copy(_ lines: [Mined], on db: PostgresConnection) async throws {
        guard !lines.isEmpty else { return }
        try await db.copyFrom(table: "log_lines",
                              columns: ["at", "received_at", "service", "level", "template_id", "variables", "message", "raw", "job_id", "seq"],
                              rows: lines.lazy.map { line -> [(any PostgresEncodable)?] in
            let at = Self.timestamp(line.at)
            return [at, at, line.record.service, line.record.level, line.template, Self.arrayLiteral(line.variables), line.record.message,
                    line.record.raw, line.job, line.seq]
        })
    }

    /// COPY text of a time in microseconds since 1970: `2026-11-26 23:59:59.123456+00`.
    static func timestamp(_ micros: Int64) -> String {
        let days = day(micros)
        let inDay = micros - days * 86_400_000_000
        // Civil date from days since 1970 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        let seconds = inDay / 1_000_000
        var text = [UInt8]()
        text.reserveCapacity(29)
        func digits(_ value: Int64, _ count: Int) {
            var divisor: Int64 = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                text.append(UInt8(truncatingIfNeeded: 0x30 + rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(y, 4); text.append(UInt8(ascii: "-")); digits(m, 2); text.append(UInt8(ascii: "-")); digits(d, 2)
        text.append(UInt8(ascii: " ")); digits(seconds / 3600, 2); text.append(UInt8(ascii: ":")); digits(seconds / 60 % 60, 2)
        text.append(UInt8(ascii: ":")); digits(seconds % 60, 2); text.append(UInt8(ascii: ".")); digits(inDay % 1_000_000, 6)
        text.append(contentsOf: "+00".utf8)
        return String(decoding: text, as: UTF8.self)
    }

    /// A PostgreSQL array literal of text.
    static func arrayLiteral(_ values: [String]) -> String {
        if values.isEmpty { return "{}" }
        return "{" + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
            .joined(separator: ",") + "}"
    }

    func saveTemplates(_ touched: [Int64: Touched], on db: PostgresConnection) async throws {
        guard !touched.isEmpty else { return }
        let ids = Array(touched.keys).sorted()
        let entries = ids.map { touched[$0]! }
        try await db.execute("""
            INSERT INTO log_templates (id, template, line_count, first_seen, last_seen, example)
            SELECT id, template, lines, to_timestamp(first / 1e6), to_timestamp(last / 1e6), example
            FROM unnest(\(ids)::bigint[], \(entries.map(\.text))::text[], \(entries.map(\.lines))::bigint[],
                        \(entries.map(\.first))::bigint[], \(entries.map(\.last))::bigint[], \(entries.map(\.example))::text[])
                 AS t (id, template, lines, first, last, example)
            ON CONFLICT (id) DO UPDATE SET template = EXCLUDED.template, line_count = log_templates.line_count + EXCLUDED.line_count,
                first_seen = least(log_templates.first_seen, EXCLUDED.first_seen),
                last_seen = greatest(log_templates.last_seen, EXCLUDED.last_seen), updated_at = now()
            """)
        for (id, entry) in touched where !entry.absorbed.isEmpty {
            try await db.execute("UPDATE log_templates SET merged_into = \(id) WHERE id = ANY(\(entry.absorbed)::bigint[]) AND id <> \(id)")
        }
    }

    func countMinutes(_ lines: [Mined], on db: PostgresConnection) async throws {
        struct Key: Hashable { var template: Int64, service: String, minute: Int64 }
        var counts: [Key: Int64] = [:]
        for line in lines { counts[Key(template: line.template, service: line.record.service, minute: line.at / 60_000_000), default: 0] += 1 }
        let keys = counts.keys.sorted { ($0.template, $0.service, $0.minute) < ($1.template, $1.service, $1.minute) }
        try await db.execute("""
            INSERT INTO log_template_minutes (template_id, service, minute, lines)
            SELECT t, s, to_timestamp(m * 60), n FROM unnest(\(keys.map(\.template))::bigint[], \(keys.map(\.service))::text[],
                                                            \(keys.map(\.minute))::bigint[], \(keys.map { counts[$0]! })::bigint[]) AS c (t, s, m, n)
            ON CONFLICT (template_id, service, minute) DO UPDATE SET lines = log_template_minutes.lines + EXCLUDED.lines
            """)
    }

    // MARK: - Anomalies

    func detect(mined: [Mined], touched: [Int64: Touched], warm: Bool, cardSources: Set<String>,
                jobs: [BatchedJob<LogsBatchJob>]) async throws {
        guard let context = jobs.first?.context else { return }
        let db = context.database
        struct Finding { var kind: String, service: String, template: Int64?, minute: Int64, lines: Int64, summary: String, severity: AlertSeverity }
        var findings: [Finding] = []

        if warm {
            for (id, entry) in touched.sorted(by: { $0.key < $1.key }) where entry.isNew {
                let service = mined.first { $0.template == id }?.record.service ?? "unknown"
                findings.append(Finding(kind: "new_template", service: service, template: id, minute: entry.first / 60_000_000,
                                        lines: entry.lines, summary: "New log template from \(service): \(entry.text.prefix(300))",
                                        severity: .low))
            }
        }
        for service in cardSources.sorted() {
            let minute = (mined.first { $0.record.service == service }?.at ?? (jobs[0].body.receivedAt)) / 60_000_000
            findings.append(Finding(kind: "card_number", service: service, template: nil, minute: minute, lines: 1,
                                    summary: "A card number was found in the logs of \(service) (redacted before storage): PCI DSS 3.4/3.5 finding",
                                    severity: .critical))
        }
        // Error bursts: a service's error and fatal lines in one minute crossing the threshold.
        struct Key: Hashable { var service: String, minute: Int64 }
        var errors: [Key: Int64] = [:]
        for line in mined where line.record.level == "error" || line.record.level == "fatal" {
            errors[Key(service: line.record.service, minute: line.at / 60_000_000), default: 0] += 1
        }
        if !errors.isEmpty {
            let keys = errors.keys.sorted { ($0.service, $0.minute) < ($1.service, $1.minute) }
            let rows = try await db.query("""
                INSERT INTO log_service_minutes (service, minute, errors)
                SELECT s, to_timestamp(m * 60), n FROM unnest(\(keys.map(\.service))::text[], \(keys.map(\.minute))::bigint[],
                                                              \(keys.map { errors[$0]! })::bigint[]) AS e (s, m, n)
                ON CONFLICT (service, minute) DO UPDATE SET errors = log_service_minutes.errors + EXCLUDED.errors
                RETURNING service, (extract(epoch FROM minute) / 60)::bigint, errors
                """)
            for row in rows {
                let service = try row.decode(String.self, at: 0)
                let minute = try row.decode(Int64.self, at: 1)
                let total = try row.decode(Int64.self, at: 2)
                let added = errors[Key(service: service, minute: minute)] ?? 0
                if total >= Int64(errorBurst), total - added < Int64(errorBurst) {
                    findings.append(Finding(kind: "error_burst", service: service, template: nil, minute: minute, lines: total,
                                            summary: "\(total) error lines from \(service) in one minute (threshold \(errorBurst))",
                                            severity: .high))
                }
            }
        }
        for finding in findings {
            let dedup = "logs:\(finding.kind):\(finding.service)" + (finding.template.map { ":\($0)" } ?? "")
            let anomaly = UUID()
            let stored = try await db.query("""
                INSERT INTO log_anomalies (id, kind, service, template_id, minute, lines, summary, dedup_key)
                VALUES (\(anomaly), \(finding.kind), \(finding.service), \(finding.template), to_timestamp(\(finding.minute * 60)),
                        \(finding.lines), \(finding.summary), \(dedup))
                ON CONFLICT DO NOTHING RETURNING id
                """)
            guard !stored.isEmpty else { continue }
            metrics.counter("mingus_logs_anomalies_total", [("kind", finding.kind)]).increment()
            var labels = ["service": finding.service, "anomaly": finding.kind, "component": "logs"]
            if let template = finding.template { labels["template_id"] = String(template) }
            try await context.emit(type: AlertJob.type, AlertJob(
                status: .firing, severity: finding.severity, title: Self.titles[finding.kind] ?? "Log anomaly",
                description: finding.summary, labels: labels, source: "logs-worker", dedupKey: dedup, receivedAt: Date()),
                id: anomaly.uuidString.lowercased())
        }
    }

    static let titles = ["new_template": "New log template", "error_burst": "Burst of error lines",
                         "card_number": "Card number in application logs"]
}

extension WorkerDefinition {
    /// `mingus-logs-worker`: queue `mingus.logs`, metrics on 9106. `MINGUS_LOGS_WARMUP_LINES`
    /// (default 10000) lines are mined before new templates count as anomalies;
    /// `MINGUS_LOGS_ERROR_BURST` (default 100) error lines of one service in one minute are a burst.
    public static let logs = WorkerDefinition(name: "logs", defaultMetricsPort: 9106, sideConnections: 2) { setup in
        func number(_ name: String, _ fallback: Int) throws -> Int {
            guard let text = setup.environment[name], !text.isEmpty else { return fallback }
            guard let value = Int(text), value >= 0 else { throw ConfigurationError(variable: name, message: "must be a whole number ≥ 0") }
            return value
        }
        let worker = try await LogsWorker.load(database: setup.sideDatabase, warmupLines: try number("MINGUS_LOGS_WARMUP_LINES", 10_000),
                                               errorBurst: try number("MINGUS_LOGS_ERROR_BURST", 100))
        return WorkerParts(registry: try worker.registry(schema: setup.schema))
    }
}
