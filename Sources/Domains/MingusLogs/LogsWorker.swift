import Foundation
import CoreMetrics
import Logging
import MingusAlerts
import MingusSecurityMonitoring
import MingusCore
import MingusLogMining
public import MingusPostgres
public import MingusRuntime
import Synchronization

/// `logs.batch`: log lines to store, from the gateway (`POST /api/logs`, redacted there) or from a
/// service inside the cluster (redacted by the worker in any case).
public struct LogsBatchJob: Codable, Sendable, Equatable, JSONBodyDecodable {
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

    /// The body as `JSONEncoder.mingus` writes it (keys sorted), written by hand: the gateway
    /// publishes hundreds of thousands of lines a second this way.
    public func json() -> [UInt8] {
        var writer = JSONWriter(capacity: lines.reduce(64) { $0 + $1.message.utf8.count + $1.service.utf8.count + 80 })
        writer.raw("{")
        if let cardSources {
            writer.raw("\"card_sources\":[")
            for (index, source) in cardSources.enumerated() {
                if index > 0 { writer.raw(",") }
                writer.string(source)
            }
            writer.raw("],")
        }
        writer.raw("\"lines\":[")
        for (index, line) in lines.enumerated() {
            writer.raw(index == 0 ? "{\"level\":" : ",{\"level\":")
            writer.string(line.level)
            writer.raw(",\"message\":")
            writer.string(line.message)
            writer.raw(",\"raw\":")
            writer.bool(line.raw)
            writer.raw(",\"service\":")
            writer.string(line.service)
            writer.raw(",\"time\":")
            writer.number(line.time)
            writer.raw("}")
        }
        writer.raw("],\"received_at\":")
        writer.number(receivedAt)
        writer.raw("}")
        return writer.bytes
    }

    /// Reads the body its schema check parsed (the schema guarantees every field's type).
    public init(json: JSONBody) throws {
        func wrong(_ field: String) -> JSONBodyError { JSONBodyError(field: field, message: "has the wrong type") }
        guard let lines = try json.required("lines").array else { throw wrong("lines") }
        self.lines = try lines.map { line in
            guard let time = try line.required("time").int64 else { throw wrong("lines.time") }
            guard let service = try line.required("service").string else { throw wrong("lines.service") }
            guard let level = try line.required("level").string else { throw wrong("lines.level") }
            guard let message = try line.required("message").string else { throw wrong("lines.message") }
            guard let raw = try line.required("raw").bool else { throw wrong("lines.raw") }
            return LogRecord(time: time, service: service, level: level, message: message, raw: raw)
        }
        guard let received = try json.required("received_at").int64 else { throw wrong("received_at") }
        receivedAt = received
        if let sources = json["card_sources"], !sources.isNull {
            guard let list = sources.array?.compactMap(\.string) else { throw wrong("card_sources") }
            cardSources = list
        }
    }
}

/// The logs worker: redacts (again), mines each line's template, stores the lines with COPY in
/// their day partition, counts them per template, service and minute, and turns anomalies into
/// alerts (`alerts.ingest`) — all in the jobs' transaction, so a redelivered batch is stored once.
///
/// Template ids are shared by every logs worker: one live template per text. Each worker mines
/// on its own; when its miner makes a template or changes one's text, the worker takes the id a
/// worker saved for that text first, or saves its own, in a short transaction of its own under a
/// lock per text (so the rows exist before any line names them).
///
/// Anomalies: a template first seen by the cluster after the warm-up (`warmupLines` lines mined
/// since the store began), a service's error and fatal lines in one minute reaching `errorBurst`,
/// a card number found in a service's lines (a PCI DSS finding; the alert names the service, never
/// the number), the security rules of ``LogRules``, and template rates far from their baseline
/// (``LogTemplateRates``). Each is stored once per kind, service, minute, template, rule and
/// source, and its alert carries a stable `dedup_key` (`logs:<kind>:<service>[:<template or
/// rule>[:<source>]]`), so a continuing anomaly stays one alert.
public final class LogsWorker: Sendable {
    let miner: Mutex<LogTemplateMiner>
    let minedLines: Atomic<Int>
    let warmupLines: Int
    let errorBurst: Int
    let rules: LogRules
    let rates: LogTemplateRates
    let side: PostgresClient
    let templates: Mutex<TemplateIDs>
    let redactor = LogRedactor()
    let metrics = MetricHandles()

    /// What this worker knows of its miner's templates in the database.
    struct TemplateIDs {
        /// The text last saved (or found) for a miner template.
        var saved: [Int64: String] = [:]
        /// The shared id of a miner template, where it is not the miner's own.
        var shared: [Int64: Int64] = [:]
        /// The security rules each template's text matches (indexes into the rules).
        var ruleMatches: [Int64: (text: String, rules: [Int])] = [:]
        /// Templates this worker found new, until a stored anomaly (or another worker's) says so.
        var unannounced: Set<Int64> = []
    }

    /// Lines with a time further than this in the past, or a day in the future, are stored at the
    /// time they were received (so a wrong clock cannot make partitions for any day).
    static let acceptedPast: Int64 = 7 * 86_400 * 1_000_000
    static let acceptedFuture: Int64 = 86_400 * 1_000_000

    init(miner: LogTemplateMiner, saved: [LogTemplate], minedLines: Int, warmupLines: Int, errorBurst: Int, rules: LogRules,
         rates: LogTemplateRates, side: PostgresClient) {
        self.miner = Mutex(miner)
        self.minedLines = Atomic(minedLines)
        self.warmupLines = warmupLines
        self.errorBurst = errorBurst
        self.rules = rules
        self.rates = rates
        self.side = side
        var ids = TemplateIDs()
        for template in saved { ids.saved[Int64(bitPattern: template.id)] = template.text }
        self.templates = Mutex(ids)
    }

    /// Loads the saved templates; new templates get ids from a block of 2^32 reserved for this
    /// process from `log_template_ids`, so processes never hand out the same id.
    public static func load(database: PostgresClient, warmupLines: Int = 10_000, errorBurst: Int = 100, rules: LogRules = LogRules(rules: []),
                            rates: LogTemplateRates = LogTemplateRates()) async throws -> LogsWorker {
        let saved = try await database.query("SELECT id, template, line_count FROM log_templates WHERE merged_into IS NULL ORDER BY id")
            .map { LogTemplate(id: LogTemplateID(try $0.decode(Int64.self, at: 0)), text: try $0.decode(String.self, at: 1),
                               count: Int(try $0.decode(Int64.self, at: 2))) }
        let block = try await database.query("SELECT nextval('log_template_ids')")[0].decode(Int64.self, at: 0)
        let lines = try await database.query("SELECT COALESCE(sum(line_count), 0)::bigint FROM log_templates")[0].decode(Int64.self, at: 0)
        let kept = Array(saved.suffix(LogTemplateMiner.Configuration.standard.maximumTemplates))
        let miner = try LogTemplateMiner(configuration: .standard, saved: kept, firstID: LogTemplateID(block - 1) << 32 + 1)
        return LogsWorker(miner: miner, saved: kept, minedLines: Int(lines), warmupLines: warmupLines, errorBurst: errorBurst,
                          rules: rules, rates: rates, side: database)
    }

    public func registry(schema: (String) throws -> JSONSchema) throws -> JobRegistry {
        var registry = JobRegistry()
        registry.registerBatch(LogsBatchJob.type, as: LogsBatchJob.self, schema: try schema(LogsBatchJob.type)) { jobs in
            try await self.store(jobs)
        }
        registry.register(LogsRatesJob.type, as: LogsRatesJob.self, schema: try schema(LogsRatesJob.type), batchable: false) { _, context in
            try await self.rates.evaluate(context, metrics: self.metrics)
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
        var slots: [Int64: TemplateSlots] = [:]
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
                    if slots[id]?.text != match.templateText { slots[id] = TemplateSlots(match.templateText) }
                    mined.append(Mined(record: record, at: at, template: id, variables: Self.variables(text, slots: slots[id]!),
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

        let shared = try await shareTemplates(touched, warm: warm)
        for index in mined.indices { mined[index].template = shared[mined[index].template] ?? mined[index].template }
        try await ensurePartitions(Set(mined.map { Self.day($0.at) }), on: db)
        try await copy(mined, on: db)
        try await countTemplates(touched, shared: shared, on: db)
        try await countMinutes(mined, on: db)
        let announce = try await newTemplates(Set(shared.values), on: db)
        try await detect(mined: mined, touched: touched, shared: shared, announce: announce, cardSources: cardSources, jobs: jobs)
    }

    /// The message's words where the template has `<*>` (when both have the same number of words).
    static func variables(_ message: String, template: String) -> [String] {
        variables(message, slots: TemplateSlots(template))
    }

    /// A template's words, split once for all the lines of a batch that match it.
    struct TemplateSlots {
        let text: String
        let words: [[UInt8]]
        let isWildcard: [Bool]

        init(_ text: String) {
            self.text = text
            words = text.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true).map(Array.init)
            isWildcard = words.map { LogsWorker.hasWildcard($0) }
        }
    }

    /// Walks the message's words in UTF-8 (splitting `Character`s costs grapheme breaking)
    /// against the template's, keeping the words in wildcard slots that differ from the slot.
    static func variables(_ message: String, slots: TemplateSlots) -> [String] {
        var found: [String] = []
        var index = 0
        var mismatch = false
        var copy = message
        copy.withUTF8 { bytes in
            var position = 0
            while position < bytes.count {
                while position < bytes.count, bytes[position] == UInt8(ascii: " ") { position += 1 }
                guard position < bytes.count else { break }
                let start = position
                while position < bytes.count, bytes[position] != UInt8(ascii: " ") { position += 1 }
                guard index < slots.words.count else { mismatch = true; return }
                if slots.isWildcard[index] {
                    let word = UnsafeBufferPointer(rebasing: bytes[start..<position])
                    if !word.elementsEqual(slots.words[index]) { found.append(String(decoding: word, as: UTF8.self)) }
                }
                index += 1
            }
        }
        return mismatch || index != slots.words.count ? [] : found
    }

    /// Whether a template word holds `<*>` (Foundation's `contains` bridges to NSString, a tenth
    /// of the worker's time when it was used here).
    static func hasWildcard(_ word: some Sequence<UInt8>) -> Bool {
        var matched = 0
        for byte in word {
            switch (matched, byte) {
            case (_, UInt8(ascii: "<")): matched = 1
            case (1, UInt8(ascii: "*")): matched = 2
            case (2, UInt8(ascii: ">")): return true
            default: matched = 0
            }
        }
        return false
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
                              rows: lines) { line, row in
            let at = Self.timestamp(line.at)
            row.text(at)
            row.text(at)
            row.text(line.record.service)
            row.text(line.record.level)
            row.integer(line.template)
            row.text(PostgresArrayLiteral.encode(line.variables))
            row.text(line.record.message)
            row.bool(line.record.raw)
            row.text(line.job)
            row.integer(Int64(line.seq))
        }
    }

    /// COPY text of a time in microseconds since 1970: `2026-11-26 23:59:59.123456+00`.
    static func timestamp(_ micros: Int64) -> String {
        let days = day(micros)
        let inDay = micros - days * 86_400_000_000
        let (y, m, d) = RFC3339.civil(fromDays: Int(days))
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
        digits(Int64(y), 4); text.append(UInt8(ascii: "-")); digits(Int64(m), 2); text.append(UInt8(ascii: "-")); digits(Int64(d), 2)
        text.append(UInt8(ascii: " ")); digits(seconds / 3600, 2); text.append(UInt8(ascii: ":")); digits(seconds / 60 % 60, 2)
        text.append(UInt8(ascii: ":")); digits(seconds % 60, 2); text.append(UInt8(ascii: ".")); digits(inDay % 1_000_000, 6)
        text.append(contentsOf: "+00".utf8)
        return String(decoding: text, as: UTF8.self)
    }

    /// The shared id of every template the batch touched (the miner's own id where it is the
    /// shared one). Templates the database does not know by their current text are looked up or
    /// saved in a transaction of their own, under a lock per text, and committed before any line
    /// names them; templates the miner merged into another are marked merged into its shared id.
    func shareTemplates(_ touched: [Int64: Touched], warm: Bool) async throws -> [Int64: Int64] {
        struct Unsaved { var local: Int64, text: String, previous: Int64?, isNew: Bool }
        var shared: [Int64: Int64] = [:]
        var unsaved: [Unsaved] = []
        var absorbed: [(Int64, Int64)] = []
        templates.withLock { ids in
            for (local, entry) in touched.sorted(by: { $0.key < $1.key }) {
                if ids.saved[local] == entry.text {
                    shared[local] = ids.shared[local] ?? local
                } else {
                    unsaved.append(Unsaved(local: local, text: entry.text, previous: ids.saved[local] == nil ? nil : ids.shared[local] ?? local,
                                           isNew: entry.isNew))
                }
                for gone in entry.absorbed where gone != local {
                    if ids.saved[gone] != nil { absorbed.append((ids.shared[gone] ?? gone, local)) }
                    ids.saved[gone] = nil
                    ids.shared[gone] = nil
                    ids.ruleMatches[gone] = nil
                }
            }
        }
        guard !unsaved.isEmpty || !absorbed.isEmpty else { return shared }
        let fresh: Set<Int64> = try await side.withTransaction { db in
            var fresh: Set<Int64> = []
            if !unsaved.isEmpty {
                let texts = unsaved.map(\.text)
                try await db.execute("""
                    SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT DISTINCT hashtextextended(t, 7) AS k FROM unnest(\(texts)::text[]) AS t
                                                                 ORDER BY k) AS locks
                    """)
                var byText: [String: Int64] = [:]
                for row in try await db.query("""
                    SELECT id, template FROM log_templates
                    WHERE md5(template) = ANY(ARRAY(SELECT md5(t) FROM unnest(\(texts)::text[]) AS t)) AND merged_into IS NULL
                    """) {
                    byText[try row.decode(String.self, at: 1)] = try row.decode(Int64.self, at: 0)
                }
                var renamed: [(Int64, String)] = []
                var merged: [(Int64, Int64)] = []
                var inserted: [Unsaved] = []
                for entry in unsaved {
                    if let found = byText[entry.text] {
                        shared[entry.local] = found
                        if let previous = entry.previous, previous != found { merged.append((previous, found)) }
                    } else if let previous = entry.previous {
                        renamed.append((previous, entry.text))
                        shared[entry.local] = previous
                        byText[entry.text] = previous
                    } else {
                        inserted.append(entry)
                        shared[entry.local] = entry.local
                        byText[entry.text] = entry.local
                        fresh.insert(entry.local)
                    }
                }
                // Merges first: a text a merged template held is free for a rename.
                if !merged.isEmpty {
                    try await db.execute("""
                        UPDATE log_templates SET merged_into = m.into, updated_at = now()
                        FROM unnest(\(merged.map(\.0))::bigint[], \(merged.map(\.1))::bigint[]) AS m (id, into) WHERE log_templates.id = m.id
                        """)
                }
                for (id, text) in renamed {
                    try await db.execute("UPDATE log_templates SET template = \(text), updated_at = now() WHERE id = \(id)")
                }
                if !inserted.isEmpty {
                    let examples = inserted.map { touched[$0.local]!.example }
                    let first = inserted.map { touched[$0.local]!.first }
                    try await db.execute("""
                        INSERT INTO log_templates (id, template, line_count, first_seen, last_seen, example, announce)
                        SELECT id, template, 0, to_timestamp(first / 1e6), to_timestamp(first / 1e6), example, \(warm)
                        FROM unnest(\(inserted.map(\.local))::bigint[], \(inserted.map(\.text))::text[], \(first)::bigint[], \(examples)::text[])
                             AS t (id, template, first, example)
                        """)
                }
            }
            let merges = absorbed.compactMap { gone, into -> (Int64, Int64)? in
                let target = shared[into] ?? into
                return gone == target ? nil : (gone, target)
            }
            if !merges.isEmpty {
                try await db.execute("""
                    UPDATE log_templates SET merged_into = m.into, updated_at = now()
                    FROM unnest(\(merges.map(\.0))::bigint[], \(merges.map(\.1))::bigint[]) AS m (id, into)
                    WHERE log_templates.id = m.id AND merged_into IS NULL
                    """)
            }
            return fresh
        }
        templates.withLock { ids in
            for entry in unsaved {
                let id = shared[entry.local]!
                ids.saved[entry.local] = entry.text
                ids.shared[entry.local] = id == entry.local ? nil : id
                if warm && (entry.isNew || fresh.contains(entry.local)) { ids.unannounced.insert(id) }
            }
        }
        return shared
    }

    /// Adds the batch's lines to each template's count and times.
    func countTemplates(_ touched: [Int64: Touched], shared: [Int64: Int64], on db: PostgresConnection) async throws {
        guard !touched.isEmpty else { return }
        var totals: [Int64: (lines: Int64, first: Int64, last: Int64)] = [:]
        for (local, entry) in touched {
            let id = shared[local] ?? local
            let total = totals[id]
            totals[id] = ((total?.lines ?? 0) + entry.lines, min(total?.first ?? entry.first, entry.first), max(total?.last ?? entry.last, entry.last))
        }
        let ids = totals.keys.sorted()
        try await db.execute("""
            UPDATE log_templates SET line_count = line_count + c.lines, first_seen = least(first_seen, to_timestamp(c.first / 1e6)),
                last_seen = greatest(last_seen, to_timestamp(c.last / 1e6)), updated_at = now()
            FROM unnest(\(ids)::bigint[], \(ids.map { totals[$0]!.lines })::bigint[], \(ids.map { totals[$0]!.first })::bigint[],
                        \(ids.map { totals[$0]!.last })::bigint[]) AS c (id, lines, first, last)
            WHERE log_templates.id = c.id
            """)
    }

    /// The templates among `ids` that are new to the cluster and not yet announced; they are
    /// marked announced in the batch's transaction, so a batch that rolls back announces them
    /// again when it runs again.
    func newTemplates(_ ids: Set<Int64>, on db: PostgresConnection) async throws -> Set<Int64> {
        let candidates = templates.withLock { $0.unannounced.intersection(ids) }
        guard !candidates.isEmpty else { return [] }
        let announce = Set(try await db.query("""
            UPDATE log_templates SET announce = false WHERE id = ANY(\(Array(candidates))::bigint[]) AND announce RETURNING id
            """).map { try $0.decode(Int64.self, at: 0) })
        // Those the update did not return were announced already (by a committed batch).
        templates.withLock { $0.unannounced.subtract(candidates.subtracting(announce)) }
        return announce
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

    func detect(mined: [Mined], touched: [Int64: Touched], shared: [Int64: Int64], announce: Set<Int64>, cardSources: Set<String>,
                jobs: [BatchedJob<LogsBatchJob>]) async throws {
        guard let context = jobs.first?.context else { return }
        let db = context.database
        var findings: [Finding] = []

        for (local, entry) in touched.sorted(by: { $0.key < $1.key }) {
            let id = shared[local] ?? local
            guard announce.contains(id), !findings.contains(where: { $0.template == id }) else { continue }
            let service = mined.first { $0.template == id }?.record.service ?? "unknown"
            findings.append(Finding(kind: "new_template", service: service, template: id, minute: entry.first / 60_000_000,
                                    lines: entry.lines, summary: "New log template from \(service): \(entry.text.prefix(300))",
                                    severity: .low))
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
        findings += try await matchRules(mined, touched: touched, shared: shared, on: db)
        try await Self.report(findings, context: context, metrics: metrics)
    }

    /// Counts the lines of templates that match a security rule, per rule, service, source and
    /// minute, and finds the rules whose window reached their threshold with this batch.
    func matchRules(_ mined: [Mined], touched: [Int64: Touched], shared: [Int64: Int64], on db: PostgresConnection) async throws -> [Finding] {
        guard !rules.rules.isEmpty else { return [] }
        var matching: [Int64: [Int]] = [:]
        templates.withLock { ids in
            for (local, entry) in touched {
                if let cached = ids.ruleMatches[local], cached.text == entry.text {
                    if !cached.rules.isEmpty { matching[shared[local] ?? local] = cached.rules }
                    continue
                }
                let found = rules.rules.indices.filter { rules.rules[$0].matches(template: entry.text) }
                ids.ruleMatches[local] = (entry.text, found)
                if !found.isEmpty { matching[shared[local] ?? local] = found }
            }
        }
        guard !matching.isEmpty else { return [] }
        struct Key: Hashable { var rule: Int, service: String, source: String, minute: Int64 }
        var counts: [Key: Int64] = [:]
        for line in mined {
            guard let matched = matching[line.template] else { continue }
            for rule in matched {
                let source = rules.rules[rule].source(of: line.record.message)
                counts[Key(rule: rule, service: line.record.service, source: source, minute: line.at / 60_000_000), default: 0] += 1
            }
        }
        let keys = counts.keys.sorted { ($0.rule, $0.service, $0.source, $0.minute) < ($1.rule, $1.service, $1.source, $1.minute) }
        try await db.execute("""
            INSERT INTO log_rule_minutes (rule, service, source, minute, lines)
            SELECT r, s, src, to_timestamp(m * 60), n
            FROM unnest(\(keys.map { rules.rules[$0.rule].name })::text[], \(keys.map(\.service))::text[], \(keys.map(\.source))::text[],
                        \(keys.map(\.minute))::bigint[], \(keys.map { counts[$0]! })::bigint[]) AS c (r, s, src, m, n)
            ON CONFLICT (rule, service, source, minute) DO UPDATE SET lines = log_rule_minutes.lines + EXCLUDED.lines
            """)
        // Each key's window (its minute and the ones before it) after this batch.
        let totals = try await db.query("""
            SELECT (SELECT coalesce(sum(lines), 0)::bigint FROM log_rule_minutes AS w
                    WHERE w.rule = k.r AND w.service = k.s AND w.source = k.src
                      AND w.minute > to_timestamp((k.m - k.win) * 60) AND w.minute <= to_timestamp(k.m * 60))
            FROM unnest(\(keys.map { rules.rules[$0.rule].name })::text[], \(keys.map(\.service))::text[], \(keys.map(\.source))::text[],
                        \(keys.map(\.minute))::bigint[], \(keys.map { rules.rules[$0.rule].windowMinutes })::bigint[])
                 WITH ORDINALITY AS k (r, s, src, m, win, n)
            ORDER BY k.n
            """).map { try $0.decode(Int64.self, at: 0) }
        var findings: [Finding] = []
        for (key, total) in zip(keys, totals) {
            let rule = rules.rules[key.rule]
            let threshold = Int64(rule.threshold)
            guard total >= threshold, total - counts[key]! < threshold else { continue }
            let from = key.source.isEmpty ? "" : ", source \(key.source)"
            findings.append(Finding(
                kind: "security_rule", service: key.service, template: nil, rule: rule.name, source: key.source, minute: key.minute, lines: total,
                summary: "\(rule.description): \(total) matching lines from \(key.service)\(from) within \(DurationText.format(rule.window)) (rule \(rule.name), threshold \(rule.threshold))",
                severity: rule.severity))
        }
        return findings
    }

    /// Something a detection found, to store as an anomaly and send as an alert.
    struct Finding {
        var kind: String
        var service: String
        var template: Int64?
        var rule: String? = nil
        var source: String? = nil
        var minute: Int64
        var lines: Int64
        var summary: String
        var severity: AlertSeverity

        /// `logs:<kind>:<service>[:<template or rule>[:<source>]]`.
        var dedupKey: String {
            var key = "logs:\(kind):\(service)"
            if let template { key += ":\(template)" }
            if let rule { key += ":\(rule)" }
            if let source, !source.isEmpty { key += ":\(source)" }
            return key
        }
    }

    /// Stores each finding once (per kind, service, minute, template, rule and source) and sends
    /// the new ones to the alerts worker, in the caller's transaction.
    static func report(_ findings: [Finding], context: JobContext, metrics: MetricHandles) async throws {
        for finding in findings {
            let dedup = finding.dedupKey
            let anomaly = UUID()
            let stored = try await context.database.query("""
                INSERT INTO log_anomalies (id, kind, service, template_id, rule, source, minute, lines, summary, dedup_key)
                VALUES (\(anomaly), \(finding.kind), \(finding.service), \(finding.template), \(finding.rule), \(finding.source),
                        to_timestamp(\(finding.minute * 60)), \(finding.lines), \(finding.summary), \(dedup))
                ON CONFLICT DO NOTHING RETURNING id
                """)
            guard !stored.isEmpty else { continue }
            metrics.counter("mingus_logs_anomalies_total", [("kind", finding.kind)]).increment()
            var labels = ["service": finding.service, "anomaly": finding.kind, "component": "logs"]
            if let template = finding.template { labels["template_id"] = String(template) }
            if let rule = finding.rule { labels["rule"] = rule }
            if let source = finding.source, !source.isEmpty { labels["rule_source"] = source }
            try await context.emit(type: AlertJob.type, AlertJob(
                status: .firing, severity: finding.severity, title: titles[finding.kind] ?? "Log anomaly",
                description: finding.summary, labels: labels, source: "logs-worker", dedupKey: dedup, receivedAt: Date()),
                id: anomaly.uuidString.lowercased())
            // Security findings are detections for the security worker's incidents too.
            if finding.kind == "security_rule" || finding.kind == "card_number" {
                let address = finding.source.flatMap { IncidentEngine.isAddress($0) ? $0 : nil }
                try await context.emit(type: SecurityDetectionJob.type, SecurityDetectionJob(
                    kind: finding.kind, rule: finding.rule, severity: IncidentSeverity(rawValue: finding.severity.rawValue) ?? .low,
                    dedupKey: dedup, title: titles[finding.kind] ?? "Log anomaly", summary: finding.summary, service: finding.service,
                    sourceAddress: address, detectedAt: Date(timeIntervalSince1970: TimeInterval(finding.minute * 60)), reportedBy: "logs-worker"),
                    id: "logs/\(anomaly.uuidString.lowercased())")
            }
        }
    }

    static let titles = ["new_template": "New log template", "error_burst": "Burst of error lines",
                         "card_number": "Card number in application logs", "template_rate": "Log template rate far from its baseline",
                         "security_rule": "Security rule matched in logs"]
}

extension WorkerDefinition {
    /// `mingus-logs-worker`: queue `mingus.logs`, metrics on 9106. `MINGUS_LOGS_WARMUP_LINES`
    /// (default 10000) lines are mined before new templates count as anomalies;
    /// `MINGUS_LOGS_ERROR_BURST` (default 100) error lines of one service in one minute are a burst;
    /// `MINGUS_LOGS_RULES` (default `Deploy/log-rules.yaml`, found from the working directory or
    /// the executable) holds the security rules;
    /// `MINGUS_LOGS_RATE_MIN_LINES` (default 20) is the fewest lines in a minute (or in a
    /// baseline) that a template's rate anomaly needs; `MINGUS_LOGS_RATES_SCHEDULE` (cron, default
    /// every minute, `off` for none) evaluates the rates.
    public static let logs = WorkerDefinition(name: "logs", defaultMetricsPort: 9106, sideConnections: 2) { setup in
        func number(_ name: String, _ fallback: Int) throws -> Int {
            guard let text = setup.environment[name], !text.isEmpty else { return fallback }
            guard let value = Int(text), value >= 0 else { throw ConfigurationError(variable: name, message: "must be a whole number ≥ 0") }
            return value
        }
        let rulesPath = try setup.environment["MINGUS_LOGS_RULES"].flatMap { $0.isEmpty ? nil : $0 }
            ?? MingusConfiguration.projectFile("Deploy/log-rules.yaml", variable: "MINGUS_LOGS_RULES").path
        let rules = try LogRules.load(path: rulesPath)
        let rates = LogTemplateRates(minimumLines: try number("MINGUS_LOGS_RATE_MIN_LINES", 20))
        let cron = setup.environment["MINGUS_LOGS_RATES_SCHEDULE"].flatMap { $0.isEmpty ? nil : $0 } ?? "* * * * *"
        if cron != "off" {
            guard (try? CronSchedule(cron)) != nil else {
                throw ConfigurationError(variable: "MINGUS_LOGS_RATES_SCHEDULE", message: "'\(cron)' is not a cron expression")
            }
            try await setup.sideDatabase.withTransaction { db in
                try await Scheduler.upsertPeriodic(on: db, name: "logs.rates", cron: cron, type: LogsRatesJob.type)
            }
        }
        let worker = try await LogsWorker.load(database: setup.sideDatabase, warmupLines: try number("MINGUS_LOGS_WARMUP_LINES", 10_000),
                                               errorBurst: try number("MINGUS_LOGS_ERROR_BURST", 100), rules: rules, rates: rates)
        setup.logger.info("log rules loaded", metadata: ["mingus.rules": "\(rules.rules.map(\.name).joined(separator: ","))",
                                                         "mingus.file": "\(rulesPath)"])
        return WorkerParts(registry: try worker.registry(schema: setup.schema))
    }
}
