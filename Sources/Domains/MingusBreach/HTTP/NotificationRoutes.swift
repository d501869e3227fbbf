import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusMail
import MingusPostgres
import MingusSecurity
import NIOCore

/// `/api/financial/breach/{id}/recipients`, `…/notifications` and `…/letters`: the people a
/// breach affected, the runs that e-mail them, and the letters to regulators and the media.
///
/// An upload is streamed: lines are parsed as the body arrives and stored in batches of
/// ``batchSize`` (sealed, COPY into a staging table, one INSERT), so memory holds one batch
/// whatever the upload's size. A bad line is reported with its number, field and rule and does
/// not stop the good ones: an upload with some good lines answers 200 listing the bad ones; one
/// with none answers 422. A repeated address (the same e-mail, in any case, for the same breach)
/// is counted in `duplicates` and stored once.
public struct NotificationRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher
    let keys: KeyringCache

    /// Recipients sealed and stored per transaction.
    static let batchSize = 2000
    /// The longest line an upload may have, in bytes.
    static let maxLineBytes = 4096
    /// Line errors an upload's answer lists at most (all are counted).
    static let maxListedErrors = 1000

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        publisher = gateway.publisher
        keys = gateway.keys
    }

    /// The routes, to mount at `/api/financial`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .breachWrite)
        write.post("breach/:id/recipients") { request, context in
            try await upload(request, breach: try context.uuidParameter("id"))
        }
        write.post("breach/:id/notifications") { request, context in
            try await start(request, breach: try context.uuidParameter("id"), caller: try context.caller())
        }
        let read = routes.group(requiring: .breachRead)
        read.get("breach/:id/notifications") { _, context in
            let id = try context.uuidParameter("id")
            guard let progress = try await NotificationStore.progress(of: id, on: database) else { throw BreachRoutes.notFound(id) }
            return APIResponse(progress)
        }
        read.get("breach/:id/letters") { _, context in
            let id = try context.uuidParameter("id")
            guard try await exists(id) else { throw BreachRoutes.notFound(id) }
            return APIResponse(LetterList(letters: try await NotificationStore.letters(of: id, on: database)))
        }
        return routes
    }

    // MARK: - Answers

    struct LetterList: Encodable, Sendable {
        var letters: [LetterView]
    }

    /// What an upload did.
    struct UploadReport: Encodable, Sendable {
        var breachId: String
        var lines: Int
        var accepted: Int
        var duplicates: Int
        var rejected: Int
        var errors: [RecipientLineError]
        var errorsTruncated: Bool
    }

    /// A 422 for an upload without one good line: the error (naming the first bad line's field)
    /// and the report.
    struct UploadRejected: Encodable, Sendable {
        var error: Detail
        var breachId: String
        var lines: Int
        var accepted: Int
        var duplicates: Int
        var rejected: Int
        var errors: [RecipientLineError]
        var errorsTruncated: Bool

        struct Detail: Encodable, Sendable {
            var code: String
            var message: String
            var field: String
            var rule: String
        }
    }

    struct RunStarted: Encodable, Sendable {
        var id: String
        var breachId: String
        var status = "running"
        var statusUrl: String
    }

    private func exists(_ id: UUID) async throws -> Bool {
        try await !database.query("SELECT 1 FROM breaches WHERE id = \(id)").isEmpty
    }

    // MARK: - Upload

    private func upload(_ request: Request, breach: UUID) async throws -> Response {
        let contentType = request.headers[.contentType]?.lowercased().split(separator: ";").first?.trimmingCharacters(in: .whitespaces) ?? ""
        guard let format = RecipientFormat(rawValue: contentType) else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "the body must be application/x-ndjson or text/csv")
        }
        guard try await exists(breach) else { throw BreachRoutes.notFound(breach) }
        let keyring = try await recipientKeyring()
        var splitter = LineSplitter(maxLength: Self.maxLineBytes)
        var parser = RecipientParser(format: format)
        var batch: [RecipientRecord] = []
        var report = UploadReport(breachId: breach.uuidString.lowercased(), lines: 0, accepted: 0, duplicates: 0, rejected: 0, errors: [],
                                  errorsTruncated: false)
        var lines: [LineSplitter.Line] = []

        func take(_ lines: [LineSplitter.Line]) throws {
            for line in lines {
                do {
                    switch try parser.parse(line) {
                    case .success(let record)?: batch.append(record)
                    case .failure(let error)?: reject(error)
                    case nil: break
                    }
                } catch let error as RecipientUploadError {
                    throw APIError(.badRequest, code: "invalid_upload", message: error.message, field: error.field, rule: error.rule)
                }
            }
        }
        func reject(_ error: RecipientLineError) {
            report.rejected += 1
            if report.errors.count < Self.maxListedErrors { report.errors.append(error) } else { report.errorsTruncated = true }
        }
        func flush() async throws {
            guard !batch.isEmpty else { return }
            let sealed = try batch.map { try SealedRecipient($0, keyring: keyring) }
            let stored = try await NotificationStore.insert(sealed, breach: breach, on: database)
            report.accepted += stored.count
            report.duplicates += batch.count - stored.count
            batch.removeAll(keepingCapacity: true)
        }

        for try await buffer in request.body {
            splitter.feed(buffer.readableBytesView) { lines.append($0) }
            try take(lines)
            lines.removeAll(keepingCapacity: true)
            if batch.count >= Self.batchSize { try await flush() }
        }
        splitter.finish { lines.append($0) }
        try take(lines)
        try await flush()
        report.lines = splitter.lineNumber
        if format == .csv && !parser.hasHeader {
            throw APIError(.badRequest, code: "invalid_upload", message: "the body is empty: the first line must be the CSV header (id,name,email,jurisdiction)",
                           field: "header", rule: "required")
        }
        if report.accepted + report.duplicates + report.rejected == 0 {
            throw APIError(.unprocessableContent, code: "invalid_upload", message: "the upload lists no recipient", field: "body", rule: "empty")
        }
        if report.accepted + report.duplicates == 0, let first = report.errors.first {
            let rejected = UploadRejected(
                error: .init(code: "invalid_recipients", message: "no line could be used; the first bad one: \(first.message)",
                             field: first.field, rule: first.rule),
                breachId: report.breachId, lines: report.lines, accepted: 0, duplicates: 0, rejected: report.rejected, errors: report.errors,
                errorsTruncated: report.errorsTruncated)
            return try APIResponse(.unprocessableContent, rejected).encodedResponse()
        }
        return try APIResponse(report).encodedResponse()
    }

    /// The data keys, read again when the breach purposes are newer than the cached keys.
    private func recipientKeyring() async throws -> Keyring {
        let keyring = try await keys.current()
        if keyring.versions(.breachRecipients).isEmpty || keyring.versions(.breachFingerprint).isEmpty {
            let reloaded = try await keys.reload()
            guard !reloaded.versions(.breachRecipients).isEmpty, !reloaded.versions(.breachFingerprint).isEmpty else {
                throw KeyringError("no breach-recipients or breach-fingerprint data key (mingusctl keys init)")
            }
            return reloaded
        }
        return keyring
    }

    // MARK: - Runs

    static let letterFields: Set<String> = ["organization", "subject", "what_happened", "what_is_being_done", "what_you_can_do",
                                            "likely_consequences", "contact"]
    static let contactFields: Set<String> = ["phone", "email", "website", "postal_address"]

    private func start(_ request: Request, breach: UUID, caller: APIKeyIdentity) async throws -> APIResponse<RunStarted> {
        let body = try await JSONRequestBody.read(request, limit: 32 * 1024, allowed: Self.letterFields)
        let content = try Self.letterContent(body)
        guard try await exists(breach) else { throw BreachRoutes.notFound(breach) }
        let run = UUID()
        do {
            try await database.execute("""
                INSERT INTO breach_notification_runs (id, breach_id, letter, requested_by)
                VALUES (\(run), \(breach), \(try content.encoded())::jsonb, \(caller.actor))
                """)
        } catch let error as PostgresError where error.sqlState == "23505" {
            let running = try await database.query("""
                SELECT id FROM breach_notification_runs WHERE breach_id = \(breach) AND status = 'running'
                """).first.map { try $0.decode(UUID.self, at: 0).uuidString.lowercased() } ?? "another run"
            throw APIError(.conflict, code: "run_in_progress", message: "notification run \(running) of this breach is still running")
        }
        let job = BreachNotifyJob(breachId: breach, runId: run, chunk: 0)
        do {
            try await publisher.publish(type: BreachNotifyJob.type, id: job.messageID, body: job, traceID: nil)
        } catch {
            _ = try? await database.execute("DELETE FROM breach_notification_runs WHERE id = \(run)")
            throw error
        }
        let path = "/api/financial/breach/\(breach.uuidString.lowercased())/notifications"
        return APIResponse(.accepted, RunStarted(id: run.uuidString.lowercased(), breachId: breach.uuidString.lowercased(), statusUrl: path),
                           headers: [.location: path])
    }

    static func letterContent(_ body: JSONRequestBody) throws -> LetterContent {
        func text(_ name: String, max: Int, required: Bool) throws -> String? {
            if required, body.value(name) == nil {
                throw APIError(.badRequest, code: "invalid_request", message: "\(name) is required", field: name, rule: "required")
            }
            return try BreachInput.text(body, name, max: max)
        }
        guard body.value("contact") != nil else {
            throw APIError(.badRequest, code: "invalid_request", message: "contact is required", field: "contact", rule: "required")
        }
        let contactFields = try body.object("contact")
        if let unknown = contactFields.keys.sorted().first(where: { !Self.contactFields.contains($0) }) {
            throw APIError(.badRequest, code: "invalid_request", message: "contact.\(unknown) is not a field of a contact",
                           field: "contact.\(unknown)", rule: "unknown_field")
        }
        var contact = LetterContent.Contact()
        for (name, value) in contactFields {
            guard case .string(let text) = value else {
                throw APIError(.badRequest, code: "invalid_request", message: "contact.\(name) must be a JSON string", field: "contact.\(name)", rule: "type")
            }
            guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, text.unicodeScalars.count <= 512, !text.unicodeScalars.contains("\0") else {
                throw APIError.invalidField("contact.\(name)", rule: "length", "contact.\(name) must have 1 to 512 characters")
            }
            switch name {
            case "phone": contact.phone = text
            case "email":
                guard SMTPServerSettings.isAddress(text) else { throw APIError.invalidField("contact.email", rule: "format", "contact.email must be an e-mail address") }
                contact.email = text
            case "website": contact.website = text
            default: contact.postalAddress = text
            }
        }
        // HIPAA 164.404(c)(1)(E): a toll-free number and an e-mail address, website or postal address.
        guard contact.phone != nil else {
            throw APIError.invalidField("contact.phone", rule: "required", "contact.phone is required (a toll-free number)")
        }
        guard contact.email != nil || contact.website != nil || contact.postalAddress != nil else {
            throw APIError.invalidField("contact", rule: "incomplete", "contact needs an email, website or postal_address besides the phone")
        }
        let subject = try text("subject", max: 200, required: false) ?? "Important notice about your personal information"
        guard !subject.contains(where: { $0 == "\r" || $0 == "\n" }) else {
            throw APIError.invalidField("subject", rule: "characters", "subject must be one line")
        }
        return LetterContent(
            organization: try text("organization", max: 200, required: false) ?? "Mingus", subject: subject,
            whatHappened: try text("what_happened", max: 8000, required: false),
            whatIsBeingDone: try text("what_is_being_done", max: 8000, required: true)!,
            whatYouCanDo: try text("what_you_can_do", max: 8000, required: true)!,
            likelyConsequences: try text("likely_consequences", max: 8000, required: true)!, contact: contact)
    }
}
