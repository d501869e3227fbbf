public import Foundation
import Logging
import MingusCore
import MingusMail
import MingusPostgres
import MingusRuntime
import MingusSecurity
import CoreMetrics

/// `breach.notify`: one chunk of a notification run (`Contracts/schemas/breach.notify.v1.json`).
public struct BreachNotifyJob: Codable, Sendable, Equatable {
    public static let type = "breach.notify"

    public var breachId: UUID
    public var runId: UUID
    public var chunk: Int

    public init(breachId: UUID, runId: UUID, chunk: Int) {
        self.breachId = breachId
        self.runId = runId
        self.chunk = chunk
    }

    /// `notify/<run>/<chunk>`: every chunk has an id of its own, so the inbox never mistakes the
    /// next chunk for a repeat of this one.
    public var messageID: String { "notify/\(runId.uuidString.lowercased())/\(chunk)" }
}

/// How the breach worker sends letters. Read from the environment:
///
/// - `MINGUS_BREACH_SMTP` (`host:port`, default `127.0.0.1:587`), `MINGUS_BREACH_SMTP_TLS`
///   (`starttls`, the default; `implicit`; `none`), `MINGUS_BREACH_SMTP_USERNAME`,
///   `MINGUS_BREACH_SMTP_PASSWORD` or `MINGUS_BREACH_SMTP_PASSWORD_FILE`, `MINGUS_BREACH_SMTP_CA_FILE`;
/// - `MINGUS_BREACH_MAIL_FROM` (default `privacy@mingus.local`): the letters' sender;
/// - `MINGUS_BREACH_SMTP_SESSIONS` (default 4): SMTP connections in parallel per worker;
/// - `MINGUS_BREACH_NOTIFY_RATE` (default 100): letters per second per worker at most;
/// - `MINGUS_BREACH_NOTIFY_CHUNK` (default 5000): recipients one `breach.notify` job sends;
/// - `MINGUS_BREACH_LETTERS_DIR` (default `letters` beside the schemas' folder).
struct NotifierSettings: Sendable {
    public var server: SMTPServerSettings
    public var from: String
    public var sessions: Int
    public var ratePerSecond: Double
    public var chunkSize: Int
    /// Recipients claimed per transaction.
    public var claimBatch: Int
    /// Sends of one recipient that a 4yz reply may fail before the recipient is `failed`.
    public var maxAttempts: Int

    static func fromEnvironment(_ environment: [String: String]) throws -> NotifierSettings {
        func value(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func integer(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let text = value(name) else { return fallback }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(variable: name, message: "must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
            }
            return number
        }
        let address = value("MINGUS_BREACH_SMTP") ?? "127.0.0.1:587"
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port),
              colon != address.startIndex else {
            throw ConfigurationError(variable: "MINGUS_BREACH_SMTP", message: "must be host:port, got '\(address)'")
        }
        let tlsText = value("MINGUS_BREACH_SMTP_TLS") ?? "starttls"
        guard let security = SMTPServerSettings.Security(rawValue: tlsText) else {
            throw ConfigurationError(variable: "MINGUS_BREACH_SMTP_TLS", message: "must be starttls, implicit or none, got '\(tlsText)'")
        }
        var password = value("MINGUS_BREACH_SMTP_PASSWORD")
        if password == nil, let file = value("MINGUS_BREACH_SMTP_PASSWORD_FILE") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(variable: "MINGUS_BREACH_SMTP_PASSWORD_FILE", message: "cannot read \(file)")
            }
            password = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let from = value("MINGUS_BREACH_MAIL_FROM") ?? "privacy@mingus.local"
        guard SMTPServerSettings.isAddress(from) else {
            throw ConfigurationError(variable: "MINGUS_BREACH_MAIL_FROM", message: "must be an e-mail address")
        }
        let rateText = value("MINGUS_BREACH_NOTIFY_RATE") ?? "100"
        guard let rate = Double(rateText), rate > 0, rate <= 100_000 else {
            throw ConfigurationError(variable: "MINGUS_BREACH_NOTIFY_RATE", message: "must be letters per second, more than 0 and at most 100000, got '\(rateText)'")
        }
        return NotifierSettings(
            server: SMTPServerSettings(host: String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port,
                                       security: security, username: value("MINGUS_BREACH_SMTP_USERNAME"), password: password,
                                       hello: value("MINGUS_BREACH_SMTP_HELLO") ?? "localhost", caFile: value("MINGUS_BREACH_SMTP_CA_FILE")),
            from: from, sessions: try integer("MINGUS_BREACH_SMTP_SESSIONS", 4, 1...64), ratePerSecond: rate,
            chunkSize: try integer("MINGUS_BREACH_NOTIFY_CHUNK", 5000, 1...1_000_000), claimBatch: 200, maxAttempts: 3)
    }
}

/// Spaces sends evenly at `perSecond` (a burst of `burst` at most after a pause).
actor SendPacer {
    private let interval: Duration
    private let burst: Int
    private var next = ContinuousClock.now

    init(perSecond: Double, burst: Int) {
        interval = .nanoseconds(Int64(1_000_000_000 / perSecond))
        self.burst = burst
    }

    /// Waits for the next slot.
    func wait() async throws {
        let now = ContinuousClock.now
        let earliest = now - interval * burst
        if next < earliest { next = earliest }
        let slot = next
        next = slot + interval
        if slot > now { try await Task.sleep(until: slot, clock: .continuous) }
    }
}

/// A recipient's state change, written with others in one statement (group commit).
struct RecipientOutcome: Sendable {
    var id: UUID
    var state: String
    var reply: String?
    var attempt: Int
    var uncertain: Int
}

/// Sends a run's letters, one `breach.notify` chunk at a time. See `NotifierSettings` for the
/// settings and `Contracts/migrations/0011_breach_notifications.sql` for the states a recipient
/// goes through.
final class BreachNotifier: Sendable {
    let settings: NotifierSettings
    let letters: BreachLetters
    let keys: KeyringCache
    let database: PostgresClient
    let smtp: SMTPSessionPool
    let pacer: SendPacer
    let outcomes: GroupCommitter<RecipientOutcome>
    let metrics = MetricHandles()
    let logger: Logger

    init(settings: NotifierSettings, letters: BreachLetters, keys: KeyringCache, database: PostgresClient, logger: Logger) {
        self.settings = settings
        self.letters = letters
        self.keys = keys
        self.database = database
        self.logger = logger
        smtp = SMTPSessionPool(settings: settings.server, size: settings.sessions)
        pacer = SendPacer(perSecond: settings.ratePerSecond, burst: settings.sessions)
        outcomes = GroupCommitter(database: database, maximumBatch: 256, logger: logger) { items, connection in
            try await connection.execute("""
                UPDATE breach_recipients r SET state = u.state, smtp_reply = coalesce(u.reply, r.smtp_reply),
                    attempts = r.attempts + u.attempt, uncertain_resends = r.uncertain_resends + u.uncertain,
                    sent_at = CASE WHEN u.state = 'sent' THEN clock_timestamp() ELSE r.sent_at END, updated_at = clock_timestamp()
                FROM unnest(\(items.map(\.id))::uuid[], \(items.map(\.state))::text[], \(items.map(\.reply))::text[],
                            \(items.map(\.attempt))::int[], \(items.map(\.uncertain))::int[]) AS u(id, state, reply, attempt, uncertain)
                WHERE r.id = u.id
                """)
        }
    }

    /// The SMTP server could not be reached or dropped the connection: the chunk stops and the
    /// job is retried through the retry tiers; the recipients not sent stay pending.
    struct SMTPUnavailable: Error, CustomStringConvertible {
        var detail: String
        var description: String { "the SMTP server is unavailable: \(detail)" }
    }

    /// Runs one chunk in the job's transaction, which holds the run's row lock all along
    /// (`FOR NO KEY UPDATE`: recipients claimed in other transactions still reference the row).
    func handle(_ job: BreachNotifyJob, _ context: JobContext) async throws {
        let db = context.database
        let runs = try await db.query("""
            SELECT r.status, r.letter::text, b.title, b.description, b.discovered_at, b.aware_at, b.data_categories, b.data_encrypted,
                   b.persons_affected, b.records_affected, b.jurisdictions
            FROM breach_notification_runs r JOIN breaches b ON b.id = r.breach_id
            WHERE r.id = \(job.runId) AND r.breach_id = \(job.breachId) FOR NO KEY UPDATE OF r
            """)
        guard let run = runs.first else { throw PermanentJobError("notification run \(job.runId) does not exist") }
        guard try run.decode(String.self, at: 0) == "running" else {
            context.logger.info("notification run already completed", metadata: ["mingus.run": "\(job.runId)"])
            return
        }
        let content = try LetterContent.decode(try run.decode(String.self, at: 1))
        let breach = LetterBreach(
            id: job.breachId, title: try run.decode(String.self, at: 2), description: try run.decode(String.self, at: 3),
            discoveredAt: try run.decode(Date.self, at: 4), awareAt: try run.decode(Date.self, at: 5),
            dataCategories: try run.decode([String].self, at: 6), dataEncrypted: try run.decode(Bool.self, at: 7),
            personsAffected: try run.decode(Int64.self, at: 8), recordsAffected: try run.decode(Int64.self, at: 9),
            jurisdictions: try run.decode([String].self, at: 10))
        let shared = BreachLetters.context(content, breach: breach)

        // Whatever this run's rows still claim belongs to a job that ended without committing:
        // this job holds the run's lock now.
        let recovered = try await database.withTransaction { try await NotificationStore.recover(run: job.runId, breach: job.breachId, on: $0) }
        if recovered.claimed + recovered.uncertain > 0 {
            context.logger.warning("taking over a notification run", metadata: [
                "mingus.run": "\(job.runId)", "mingus.recipients.claimed": "\(recovered.claimed)",
                "mingus.recipients.uncertain": "\(recovered.uncertain)",
            ])
            metrics.counter("mingus_breach_notifications_total", [("outcome", "uncertain")]).increment(by: recovered.uncertain)
        }
        if job.chunk == 0 { try await renderLetters(job, shared: shared, on: db) }

        var processed = 0
        while processed < settings.chunkSize {
            try Task.checkCancellation()
            let batch = try await NotificationStore.claim(run: job.runId, breach: job.breachId,
                                                          limit: min(settings.claimBatch, settings.chunkSize - processed), on: database)
            guard !batch.isEmpty else { break }
            try await send(batch, subject: content.subject, shared: shared, logger: context.logger)
            processed += batch.count
        }

        try await db.execute("UPDATE breach_notification_runs SET chunks = chunks + 1 WHERE id = \(job.runId)")
        if try await NotificationStore.hasPending(breach: job.breachId, on: db) {
            let next = BreachNotifyJob(breachId: job.breachId, runId: job.runId, chunk: job.chunk + 1)
            try await context.emit(type: BreachNotifyJob.type, next, id: next.messageID)
            return
        }
        let counts = try await db.query("""
            SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'failed') FROM breach_recipients
            WHERE breach_id = \(job.breachId)
            """)
        let sent = try counts[0].decode(Int.self, at: 0)
        let failed = try counts[0].decode(Int.self, at: 1)
        try await db.execute("""
            UPDATE breach_notification_runs SET status = 'completed', finished_at = clock_timestamp() WHERE id = \(job.runId)
            """)
        try await db.execute("""
            INSERT INTO breach_timeline (breach_id, actor, kind, message, details)
            VALUES (\(job.breachId), 'breach-worker', 'notification_run_completed',
                    \("Notification run completed: \(sent) letters sent, \(failed) failed"),
                    jsonb_build_object('run_id', \(job.runId.uuidString.lowercased())::text, 'sent', \(sent)::bigint, 'failed', \(failed)::bigint))
            """)
        context.logger.info("notification run completed", metadata: ["mingus.run": "\(job.runId)", "mingus.sent": "\(sent)", "mingus.failed": "\(failed)"])
    }

    /// Sends a claimed batch over the session pool, `settings.sessions` at a time.
    private func send(_ batch: [ClaimedRecipient], subject: String, shared: [String: Any], logger: Logger) async throws {
        let version = batch.map(\.keyVersion).max() ?? 1
        let keyring = try await keys.current(having: version, of: .breachRecipients)
        let date = LetterMail.date(Date())
        let unavailable = try await withThrowingTaskGroup(of: String?.self) { group in
            var running = 0
            var unavailable: String?
            for recipient in batch {
                if unavailable != nil { break }
                if running == settings.sessions {
                    if let problem = try await group.next() ?? nil { unavailable = problem }
                    running -= 1
                    if unavailable != nil { break }
                }
                try await pacer.wait()
                let name = String(decoding: try keyring.open(SealedValue(version: recipient.keyVersion, combined: Array(recipient.name)),
                                                              purpose: .breachRecipients, context: SealedRecipient.nameContext(recipient.id)), as: UTF8.self)
                let address = String(decoding: try keyring.open(SealedValue(version: recipient.keyVersion, combined: Array(recipient.email)),
                                                                 purpose: .breachRecipients, context: SealedRecipient.emailContext(recipient.id)), as: UTF8.self)
                let messageID = LetterMail.messageID(recipient: recipient.id, from: settings.from)
                let letter = letters.individual(shared, name: name, reference: recipient.externalID)
                let mail = OutgoingMail(from: settings.from, recipients: [address], data: LetterMail.build(
                    from: settings.from, to: address, name: name, subject: subject, messageID: messageID, date: date,
                    text: letter.text, html: letter.html))
                group.addTask { try await self.deliver(mail, to: recipient) }
                running += 1
            }
            // The batch's recipients that were not handed to a session go back to pending.
            for try await problem in group where unavailable == nil { unavailable = problem }
            return unavailable
        }
        if let unavailable {
            let untouched = try await database.execute("""
                UPDATE breach_recipients SET state = 'pending', updated_at = clock_timestamp()
                WHERE id = ANY(\(batch.map(\.id))::uuid[]) AND state = 'claimed'
                """)
            logger.warning("SMTP server unavailable; the chunk stops and is retried", metadata: ["mingus.recipients.returned": "\(untouched)"])
            throw SMTPUnavailable(detail: unavailable)
        }
    }

    /// Sends one letter and records the outcome; returns why the server is unavailable when it is.
    private func deliver(_ mail: OutgoingMail, to recipient: ClaimedRecipient) async throws -> String? {
        let started = ContinuousClock.now
        let id = recipient.id
        let outcomes = self.outcomes
        do {
            let reply = try await smtp.send(mail) {
                // The last moment at which the server does not have the message: from here until
                // the reply is recorded, a worker that dies leaves the outcome unknown.
                try await outcomes.commit(RecipientOutcome(id: id, state: "sending", reply: nil, attempt: 1, uncertain: 0))
            }
            try await outcomes.commit(RecipientOutcome(id: id, state: "sent", reply: reply.text(), attempt: 0, uncertain: 0))
            record("sent", since: started)
            return nil
        } catch let error as SMTPReplyError where error.fromServer {
            let attempts = try await database.query("SELECT attempts FROM breach_recipients WHERE id = \(id)").first?.decode(Int.self, at: 0) ?? 0
            // A refusal before DATA never reached the `sending` mark, which counts the attempt.
            let counted = error.command == "(message)" ? 0 : 1
            let final = error.isPermanent || attempts + counted >= settings.maxAttempts
            try await outcomes.commit(RecipientOutcome(id: id, state: final ? "failed" : "pending", reply: error.description,
                                                       attempt: counted, uncertain: 0))
            record(final ? "failed" : "retried", since: started)
            return nil
        } catch let error as SMTPReplyError where error.outcomeUnknown {
            try await outcomes.commit(RecipientOutcome(id: id, state: "pending", reply: error.description, attempt: 0, uncertain: 1))
            record("uncertain", since: started)
            return error.description
        } catch let error as PostgresError {
            throw error
        } catch {
            try await outcomes.commit(RecipientOutcome(id: id, state: "pending", reply: "SMTP: \(error)".prefix(300).description, attempt: 0, uncertain: 0))
            record("unavailable", since: started)
            return "\(error)"
        }
    }

    private func record(_ outcome: String, since started: ContinuousClock.Instant) {
        metrics.counter("mingus_breach_notifications_total", [("outcome", outcome)]).increment()
        let elapsed = ContinuousClock.now - started
        metrics.histogram("mingus_breach_notification_send_seconds")
            .record(elapsed.inSeconds)
    }

    /// Renders and stores the letter of every open obligation to notify anyone but the people
    /// affected (regulators, attorneys general, card brands, the media), for review.
    private func renderLetters(_ job: BreachNotifyJob, shared: [String: Any], on db: PostgresConnection) async throws {
        let obligations = try await db.query("""
            SELECT id, regime, regime_name, notify, deadline, period FROM breach_obligations
            WHERE breach_id = \(job.breachId) AND status = 'open' ORDER BY regime
            """)
        for row in obligations {
            let notify = try row.decode(String.self, at: 3)
            guard !NotifyAudience.isIndividuals(notify) else { continue }
            let regime = try row.decode(String.self, at: 1)
            let regimeName = try row.decode(String.self, at: 2)
            let body = letters.forAudience(shared, regime: regime, regimeName: regimeName, audience: notify,
                                           deadline: try row.decode(Date?.self, at: 4), period: try row.decode(String.self, at: 5))
            let subject = notify == "media" ? "Press release: data security incident (\(regimeName))"
                                            : "Notification of a breach under \(regimeName)"
            try await db.execute("""
                INSERT INTO breach_letters (id, breach_id, run_id, obligation_id, regime, audience, subject, body)
                VALUES (\(UUID()), \(job.breachId), \(job.runId), \(try row.decode(UUID.self, at: 0)), \(regime), \(notify), \(subject), \(body))
                """)
        }
    }

    /// Closes the SMTP sessions.
    func shutdown() async {
        await smtp.close()
    }
}

extension LetterContent {
    /// Reads the content as stored with the run (snake_case keys).
    static func decode(_ json: String) throws -> LetterContent {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(LetterContent.self, from: Data(json.utf8))
    }

    /// The content as stored with the run.
    func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

extension WorkerParts {
    /// The breach worker's handlers with `breach.notify` added (it waits on SMTP, so it runs in
    /// a transaction of its own, never batched with other jobs).
    static func breach(_ worker: BreachWorker, notifier: BreachNotifier, schema: (String) throws -> JSONSchema) throws -> WorkerParts {
        var registry = try worker.registry(schema: schema)
        registry.register(BreachNotifyJob.type, as: BreachNotifyJob.self, schema: try schema(BreachNotifyJob.type), batchable: false) { job, context in
            try await notifier.handle(job, context)
        }
        return WorkerParts(registry: registry)
    }
}

extension BreachNotifier {
    /// The notifier of a breach worker: settings from its environment, letters from
    /// `MINGUS_BREACH_LETTERS_DIR` (default `letters` beside the schemas' folder), data keys
    /// through the worker's side pool.
    static func make(_ setup: WorkerSetup) throws -> BreachNotifier {
        let settings = try NotifierSettings.fromEnvironment(setup.environment)
        let directory = setup.environment["MINGUS_BREACH_LETTERS_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? setup.schemas.deletingLastPathComponent().appendingPathComponent("letters")
        let letters = try BreachLetters.load(directory: directory)
        let kek = try KeyEncryptingKey(contentsOf: URL(fileURLWithPath: setup.configuration.financialKeyPath))
        setup.logger.info("breach notifications configured", metadata: [
            "mingus.smtp": "\(settings.server.host):\(settings.server.port)", "mingus.smtp.sessions": "\(settings.sessions)",
            "mingus.notify.rate": "\(settings.ratePerSecond)", "mingus.notify.chunk": "\(settings.chunkSize)",
        ])
        return BreachNotifier(settings: settings, letters: letters, keys: KeyringCache(kek: kek, database: setup.sideDatabase),
                              database: setup.sideDatabase, logger: setup.logger)
    }
}
