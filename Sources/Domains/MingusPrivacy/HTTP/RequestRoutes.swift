import Crypto
import MingusCore
import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
import MingusSecurity
import NIOCore

/// `/api/gdpr/requests…`, `/exports…`, `/processing-records…`, `/dashboard`: data-subject
/// requests with their deadlines (Art. 12(3)), identity verification, extension, status history,
/// the export archive's one-time download, records of processing (Art. 30) and the dashboard.
///
/// A request is written here with its reminders scheduled in the same transaction. Verifying the
/// subject's identity is the step before any data leaves: it publishes the `privacy.export` or
/// `privacy.erase` job of access, portability and erasure requests. Reminder lead times are
/// `MINGUS_PRIVACY_REMINDERS` (default `7d,3d,1d`), read by the gateway that files requests.
public struct RequestRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher
    let keys: KeyringCache
    let subjectKeys: SubjectKeys
    let deadlines: RequestDeadlines

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        publisher = gateway.publisher
        keys = gateway.keys
        subjectKeys = SubjectKeys(kek: gateway.keys.keyEncryptingKey, database: gateway.database)
        let text = ProcessInfo.processInfo.environment["MINGUS_PRIVACY_REMINDERS"].flatMap { $0.isEmpty ? nil : $0 } ?? "7d,3d,1d"
        deadlines = RequestDeadlines(reminderLeadTimes: RequestDeadlines.leadTimes(text) ?? RequestDeadlines().reminderLeadTimes)
    }

    static let bodyLimit = 16 * 1024
    /// How long an export link stays valid.
    static let linkLifetime: TimeInterval = 3600
    static let verificationMethods = ["account_login", "email_confirmation", "document_check", "knowledge_based", "in_person"]

    /// The routes, to mount at `/api/gdpr`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .privacyWrite)
        let read = routes.group(requiring: .privacyRead)
        write.post("requests") { request, context in try await file(request, caller: try context.caller()) }
        read.get("requests") { request, _ in try await list(request.uri.queryParameters) }
        read.get("requests/:id") { _, context in
            let id = try context.uuidParameter("id")
            guard let view = try await database.withConnection({ try await RequestStore.find(id, keys: subjectKeys, on: $0) }) else {
                throw Self.notFound(id)
            }
            return APIResponse(view)
        }
        write.post("requests/:id/verify") { request, context in
            try await verify(request, id: try context.uuidParameter("id"), caller: try context.caller())
        }
        write.post("requests/:id/extend") { request, context in
            try await extend(request, id: try context.uuidParameter("id"), caller: try context.caller())
        }
        write.put("requests/:id/status") { request, context in
            try await close(request, id: try context.uuidParameter("id"), caller: try context.caller())
        }
        write.post("requests/:id/lift") { request, context in
            try await lift(request, id: try context.uuidParameter("id"), caller: try context.caller())
        }
        read.get("requests/:id/export") { _, context in try await exportInfo(try context.uuidParameter("id")) }
        read.get("exports/:id") { request, context in
            try await download(try context.uuidParameter("id"), query: request.uri.queryParameters, caller: try context.caller())
        }
        read.get("processing-records") { _, _ in APIResponse(try await ProcessingRecords.build(on: database)) }
        read.get("processing-records/document") { _, _ in
            let text = try await ProcessingRecords.build(on: database).markdown()
            return Response(status: .ok, headers: [.contentType: "text/markdown; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        read.get("dashboard") { _, _ in APIResponse(try await PrivacyDashboard.build(on: database)) }
        return routes
    }

    static func notFound(_ id: UUID) -> APIError {
        .notFound("no data-subject request \(id.uuidString.lowercased())")
    }

    struct RequestList: Encodable, Sendable {
        var requests: [PrivacyRequestView]
        var nextCursor: String?
    }

    struct ExportInfo: Encodable, Sendable {
        var requestId: String
        var status: String
        var bytes: Int64
        var counts: [String: Int64]
        var readyAt: Date?
        var expiresAt: Date?
        var downloadedAt: Date?
        /// A link that downloads the archive once, valid until `link_expires_at`.
        var downloadUrl: String?
        var linkExpiresAt: Date?
    }

    // MARK: - Filing

    private func file(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<PrivacyRequestView> {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["subject_id", "type", "received_at", "details", "purposes"])
        let subject = try PrivacyInput.subject(body)
        let type = try PrivacyInput.oneOf(try body.string("type"), "type", RequestStore.types)
        let purposes = try objectedPurposes(body, type: type)
        let now = Date()
        let received = try PrivacyInput.date(body, "received_at") ?? now
        guard received <= now.addingTimeInterval(300) else {
            throw APIError.invalidField("received_at", rule: "not_future", "received_at cannot be in the future")
        }
        guard received >= now.addingTimeInterval(-366 * 86_400) else {
            throw APIError.invalidField("received_at", rule: "range", "received_at must be within the last year")
        }
        let details = try body.text("details", max: 4096, blank: true)
        let id = UUID()
        let due = deadlines.due(receivedAt: received)
        var sealed: [UInt8]?
        if let details, !details.isEmpty {
            do {
                sealed = try await subjectKeys.key(subject).seal(Array(details.utf8), context: RequestStore.detailsContext(id))
            } catch is SubjectKeyErased {
                sealed = nil   // An erased subject's key is never made again; the details are not kept.
            }
        }
        let view = try await database.withTransaction { db -> PrivacyRequestView in
            if let purposes {
                let known = try await db.query("SELECT purpose FROM privacy_purposes WHERE purpose = ANY(\(purposes))").map { try $0.decode(String.self, at: 0) }
                if let unknown = purposes.first(where: { !known.contains($0) }) {
                    throw APIError.invalidField("purposes", rule: "unknown", "\(unknown) is not a known purpose (GET /api/gdpr/purposes lists them)")
                }
            }
            try await db.execute("""
                INSERT INTO privacy_requests (id, subject_id, type, details_sealed, received_at, due_at, original_due_at, requested_by, purposes)
                VALUES (\(id), \(subject), \(type), \(sealed), \(received), \(due), \(due), \(caller.actor), \(purposes))
                """)
            try await RequestStore.history(id, actor: caller.actor, status: "received", kind: "received",
                                           note: "due \(APITime.format(due)) (one month, Art. 12(3))", on: db)
            try await RequestStore.scheduleReminders(id, deadline: due, deadlines: deadlines, now: now, on: db)
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "privacy.request.file", resource: "privacy/requests/\(id.uuidString.lowercased())",
                                                       outcome: .success, details: ["type": type]), component: "privacy", on: db)
            return try await RequestStore.find(id, keys: nil, on: db)!
        }
        var answer = view
        answer.details = sealed == nil ? nil : details
        let path = "/api/gdpr/requests/\(id.uuidString.lowercased())"
        return APIResponse(.created, answer, headers: [.location: path])
    }

    /// An objection's `purposes` (required, 1–64 distinct purpose names); refused for other types.
    private func objectedPurposes(_ body: JSONRequestBody, type: String) throws -> [String]? {
        let purposes = try PrivacyInput.strings(body, "purposes")
        guard type == "objection" else {
            guard purposes == nil else {
                throw APIError.invalidField("purposes", rule: "not_allowed", "purposes is only for an objection")
            }
            return nil
        }
        guard let purposes, !purposes.isEmpty else {
            throw APIError.invalidField("purposes", rule: "required", "an objection names the purposes objected to (GET /api/gdpr/purposes lists them)")
        }
        guard purposes.count <= 64, Set(purposes).count == purposes.count, purposes.allSatisfy(PrivacyInput.isName) else {
            throw APIError.invalidField("purposes", rule: "format", "purposes must be 1 to 64 distinct purpose names")
        }
        return purposes
    }

    private func list(_ query: Parameters) async throws -> APIResponse<RequestList> {
        let limit = try PageCursor.limit(query, default: 100, max: 500)
        let status = try query.get("status").map { text -> String in
            guard RequestStore.statuses.contains(text) else { throw APIError.invalidParameter("status", rule: "enum", "status must be one of \(RequestStore.statuses.joined(separator: ", "))") }
            return text
        }
        let type = try query.get("type").map { text -> String in
            guard RequestStore.types.contains(text) else { throw APIError.invalidParameter("type", rule: "enum", "type must be one of \(RequestStore.types.joined(separator: ", "))") }
            return text
        }
        let subject = try query.get("subject_id").map { try PrivacyInput.subjectParameter($0) }
        let overdue = try query.get("overdue").map { text -> Bool in
            guard let value = Bool(text) else { throw APIError.invalidParameter("overdue", rule: "type", "overdue must be true or false") }
            return value
        }
        var afterTime: Date?
        var afterID: UUID?
        if let cursor = query.get("cursor") {
            let fields = try PageCursor.decode(cursor, fields: 2)
            guard let micros = Int64(fields[0]), let id = UUID(uuidString: fields[1]) else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            afterTime = Date(timeIntervalSince1970: Double(micros) / 1_000_000)
            afterID = id
        }
        let rows = try await database.query("""
            SELECT \(unescaped: RequestStore.columns), (extract(epoch FROM received_at) * 1000000)::bigint FROM privacy_requests
            WHERE (\(status)::text IS NULL OR status = \(status)) AND (\(type)::text IS NULL OR type = \(type))
              AND (\(subject)::text IS NULL OR subject_id = \(subject))
              AND (\(overdue)::boolean IS NULL OR (due_at < now() AND status NOT IN ('completed', 'rejected')) = \(overdue))
              AND (\(afterTime)::timestamptz IS NULL OR (received_at, id) < (\(afterTime), \(afterID)))
            ORDER BY received_at DESC, id DESC LIMIT \(limit + 1)
            """)
        var views: [PrivacyRequestView] = []
        var last: (Int64, String)?
        for row in rows.prefix(limit) {
            views.append(try await RequestStore.view(row, keys: nil))
            last = (try row.decode(Int64.self, at: RequestStore.columnCount), try row.decode(UUID.self, at: 0).uuidString.lowercased())
        }
        let next = rows.count > limit ? last.map { PageCursor.encode(["\($0.0)", $0.1]) } : nil
        return APIResponse(RequestList(requests: views, nextCursor: next))
    }

    // MARK: - Verification, extension, closing

    /// Records the identity check; for access, portability and erasure it starts the job. Asked
    /// again while the job has not finished (the broker refused it), it publishes the same job
    /// again (same message id: the worker applies it once).
    private func verify(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> APIResponse<PrivacyRequestView> {
        let body = try await JSONRequestBody.read(request, limit: 4096, allowed: ["method", "note"])
        let method = try PrivacyInput.oneOf(try body.string("method"), "method", Self.verificationMethods)
        let note = try body.text("note", max: 2048, blank: true) ?? ""
        let type = try await database.withTransaction { db -> String in
            guard let row = try await db.query("SELECT type, status FROM privacy_requests WHERE id = \(id) FOR UPDATE").first else {
                throw Self.notFound(id)
            }
            let type = try row.decode(String.self, at: 0), status = try row.decode(String.self, at: 1)
            switch status {
            case "received":
                let next = ["access", "portability", "erasure"].contains(type) ? "in_progress" : "verified"
                try await db.execute("""
                    UPDATE privacy_requests SET status = \(next), verified_at = now(), verification_method = \(method), verified_by = \(caller.actor),
                        updated_at = now() WHERE id = \(id)
                    """)
                try await RequestStore.history(id, actor: caller.actor, status: "verified", kind: "identity_verified",
                                               note: note.isEmpty ? "identity verified by \(method)" : "identity verified by \(method): \(note)", on: db)
                if next == "in_progress" {
                    try await RequestStore.history(id, actor: caller.actor, status: next, kind: "job_started", note: type == "erasure" ? "erasure job queued" : "export job queued", on: db)
                }
                _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "privacy.request.verify", resource: "privacy/requests/\(id.uuidString.lowercased())",
                                                           outcome: .success, details: ["method": method]), component: "privacy", on: db)
            case "in_progress":
                break
            default:
                throw APIError(.conflict, code: "request_state", message: "this request is \(status); identity is verified once, while it is received")
            }
            return type
        }
        switch type {
        case "access", "portability":
            try await publisher.publish(type: PrivacyExportJob.type, id: "export/\(id.uuidString.lowercased())", body: PrivacyExportJob(requestId: id), traceID: nil)
        case "erasure":
            try await publisher.publish(type: PrivacyEraseJob.type, id: "erase/\(id.uuidString.lowercased())", body: PrivacyEraseJob(requestId: id), traceID: nil)
        default:
            break
        }
        return APIResponse(try await database.withConnection { try await RequestStore.find(id, keys: subjectKeys, on: $0) }!)
    }

    /// Extends the deadline once by two further months (Art. 12(3)), with the reason recorded.
    private func extend(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> APIResponse<PrivacyRequestView> {
        let body = try await JSONRequestBody.read(request, limit: 4096, allowed: ["reason"])
        let reason = try PrivacyInput.text(body, "reason", max: 2048)
        try await database.withTransaction { db in
            guard let row = try await db.query("""
                SELECT status, original_due_at, extended_at FROM privacy_requests WHERE id = \(id) FOR UPDATE
                """).first else { throw Self.notFound(id) }
            let status = try row.decode(String.self, at: 0)
            guard !["completed", "rejected"].contains(status) else {
                throw APIError(.conflict, code: "request_state", message: "this request is \(status); only an open request can be extended")
            }
            guard try row.decode(Date?.self, at: 2) == nil else {
                throw APIError(.conflict, code: "already_extended", message: "the deadline was extended already; Art. 12(3) allows one extension of two months")
            }
            let due = deadlines.extended(originalDue: try row.decode(Date.self, at: 1))
            try await db.execute("""
                UPDATE privacy_requests SET due_at = \(due), extended_at = now(), extension_reason = \(reason), updated_at = now() WHERE id = \(id)
                """)
            try await RequestStore.history(id, actor: caller.actor, status: status, kind: "extended",
                                           note: "due \(APITime.format(due)) (extended by two months): \(reason)", on: db)
            try await RequestStore.scheduleReminders(id, deadline: due, deadlines: deadlines, now: Date(), on: db)
        }
        return APIResponse(try await database.withConnection { try await RequestStore.find(id, keys: subjectKeys, on: $0) }!)
    }

    /// Closes a rectification, restriction or objection (`completed`, once verified) or any
    /// open request (`rejected`, e.g. identity not confirmed, Art. 12(5)); a note is required.
    private func close(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> APIResponse<PrivacyRequestView> {
        let body = try await JSONRequestBody.read(request, limit: 4096, allowed: ["status", "note"])
        let target = try PrivacyInput.oneOf(try body.string("status"), "status", ["completed", "rejected"])
        let note = try PrivacyInput.text(body, "note", max: 2048)
        try await database.withTransaction { db in
            guard let row = try await db.query("SELECT type, status FROM privacy_requests WHERE id = \(id) FOR UPDATE").first else {
                throw Self.notFound(id)
            }
            let type = try row.decode(String.self, at: 0), status = try row.decode(String.self, at: 1)
            if target == "completed" {
                guard !["access", "portability", "erasure"].contains(type) else {
                    throw APIError(.conflict, code: "request_state", message: "a \(type) request completes when its job finishes")
                }
                guard status == "verified" else {
                    throw APIError(.conflict, code: "request_state", message: "this request is \(status); it completes once verified")
                }
            } else {
                guard ["received", "verified"].contains(status) else {
                    throw APIError(.conflict, code: "request_state", message: "this request is \(status); only a received or verified request can be rejected")
                }
            }
            var result = ["note": note]
            if target == "completed" {
                result.merge(try await uphold(id, type: type, actor: caller.actor, on: db)) { _, new in new }
            }
            try await RequestStore.complete(id, status: target, result: result, actor: caller.actor, note: note, on: db)
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "privacy.request.\(target == "completed" ? "complete" : "reject")",
                                                       resource: "privacy/requests/\(id.uuidString.lowercased())", outcome: .success,
                                                       details: ["type": type]), component: "privacy", on: db)
        }
        return APIResponse(try await database.withConnection { try await RequestStore.find(id, keys: subjectKeys, on: $0) }!)
    }

    /// What completing a request does by itself: an objection stops processing for its purposes
    /// (and withdraws a consent given for them); a restriction restricts all the subject's
    /// processing until it is lifted. Returns what it did, for the request's result.
    private func uphold(_ id: UUID, type: String, actor: String, on db: PostgresConnection) async throws -> [String: String] {
        let row = try await db.query("SELECT subject_id, purposes FROM privacy_requests WHERE id = \(id)")[0]
        let subject = try row.decode(String.self, at: 0)
        switch type {
        case "objection":
            let purposes = try row.decode([String].self, at: 1)
            try await db.execute("""
                INSERT INTO privacy_objections (subject_id, purpose, request_id)
                SELECT \(subject), purpose, \(id) FROM unnest(\(purposes)::text[]) AS purpose ON CONFLICT (subject_id, purpose) DO NOTHING
                """)
            // A consent given for an objected purpose is withdrawn in the ledger, so every reader of
            // the consent state sees it, not only mayProcess.
            var withdrawn: [String] = []
            for state in try await ConsentLedger.current(subject, on: db) where purposes.contains(state.purpose) && state.state == "given" {
                _ = try await ConsentLedger.record(subject: subject, purpose: state.purpose, granted: false, source: "objection",
                                                   policyVersion: state.policyVersion ?? 1, occurredAt: Date(), actor: actor, on: db)
                withdrawn.append(state.purpose)
            }
            return ["objected": purposes.joined(separator: ", "), "consents_withdrawn": withdrawn.joined(separator: ", ")]
        case "restriction":
            try await db.execute("""
                INSERT INTO privacy_restrictions (subject_id, data_type, legal_basis, request_id)
                VALUES (\(subject), 'all', 'Art. 18(1) request', \(id)) ON CONFLICT (subject_id, data_type) DO NOTHING
                """)
            return ["restricted": "all processing but storage, until lifted"]
        default:
            return [:]
        }
    }

    /// Lifts the restriction an upheld restriction request placed (Art. 18(3): the subject is told
    /// before); a note is required. Audited.
    private func lift(_ request: Request, id: UUID, caller: APIKeyIdentity) async throws -> APIResponse<PrivacyRequestView> {
        let body = try await JSONRequestBody.read(request, limit: 4096, allowed: ["note"])
        let note = try PrivacyInput.text(body, "note", max: 2048)
        try await database.withTransaction { db in
            guard let row = try await db.query("SELECT type, status FROM privacy_requests WHERE id = \(id) FOR UPDATE").first else {
                throw Self.notFound(id)
            }
            let type = try row.decode(String.self, at: 0), status = try row.decode(String.self, at: 1)
            guard type == "restriction", status == "completed" else {
                throw APIError(.conflict, code: "request_state", message: "only a completed restriction request has a restriction to lift; this is a \(status) \(type) request")
            }
            let lifted = try await db.execute("DELETE FROM privacy_restrictions WHERE request_id = \(id) AND data_type = 'all'")
            guard lifted > 0 else {
                throw APIError(.conflict, code: "request_state", message: "this request's restriction was lifted already")
            }
            try await RequestStore.history(id, actor: caller.actor, status: status, kind: "lifted", note: note, on: db)
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "privacy.restriction.lift",
                                                       resource: "privacy/requests/\(id.uuidString.lowercased())", outcome: .success,
                                                       details: ["type": type]), component: "privacy", on: db)
        }
        return APIResponse(try await database.withConnection { try await RequestStore.find(id, keys: subjectKeys, on: $0) }!)
    }

    // MARK: - Export download

    /// The hex HMAC-SHA256 of `id|expires` under the newest `privacy-link` key.
    static func signature(_ id: UUID, expires: Int64, keyring: Keyring) -> [String] {
        keyring.fingerprints(Array("\(id.uuidString.lowercased())|\(expires)".utf8), purpose: .privacyLink).map { Hex.encode($0.value) }
    }

    private func exportInfo(_ id: UUID) async throws -> APIResponse<ExportInfo> {
        guard let row = try await database.query("""
            SELECT e.status, e.bytes, e.counts::text, e.ready_at, e.expires_at, e.downloaded_at, r.verified_at IS NOT NULL
            FROM privacy_exports e JOIN privacy_requests r ON r.id = e.request_id WHERE e.request_id = \(id)
            """).first else {
            throw APIError.notFound("no export for request \(id.uuidString.lowercased()) (it is made once the identity is verified)")
        }
        let status = try row.decode(String.self, at: 0)
        let counts = (try? JSONDecoder().decode([String: Int64].self, from: Data(try row.decode(String.self, at: 2).utf8))) ?? [:]
        var info = ExportInfo(requestId: id.uuidString.lowercased(), status: status, bytes: try row.decode(Int64.self, at: 1), counts: counts,
                              readyAt: try row.decode(Date?.self, at: 3), expiresAt: try row.decode(Date?.self, at: 4),
                              downloadedAt: try row.decode(Date?.self, at: 5))
        if status == "ready", try row.decode(Bool.self, at: 6), let expiresAt = info.expiresAt, expiresAt > Date() {
            let linkExpiry = min(expiresAt, Date().addingTimeInterval(Self.linkLifetime))
            let expires = Int64(linkExpiry.timeIntervalSince1970)
            guard let signature = Self.signature(id, expires: expires, keyring: try await keys.current()).first else {
                throw APIError(.serviceUnavailable, code: "unavailable", message: "no privacy-link data key: run mingusctl keys init")
            }
            info.downloadUrl = "/api/gdpr/exports/\(id.uuidString.lowercased())?expires=\(expires)&signature=\(signature)"
            info.linkExpiresAt = Date(timeIntervalSince1970: Double(expires))
        }
        return APIResponse(info)
    }

    /// Streams the archive, opening one sealed chunk at a time, then deletes it: a second
    /// download is 410. The link's signature and expiry are checked first.
    private func download(_ id: UUID, query: Parameters, caller: APIKeyIdentity) async throws -> Response {
        guard let expiresText = query.get("expires") else {
            throw APIError.invalidParameter("expires", rule: "required", "expires is required (use the download_url as given)")
        }
        guard let expires = Int64(expiresText), (0...253_402_300_799).contains(expires) else {
            throw APIError.invalidParameter("expires", rule: "range", "expires must be a Unix time from 0 to 253402300799")
        }
        guard let signature = query.get("signature"), signature.count == 64 else {
            throw APIError.invalidParameter("signature", rule: "format", "signature must be the 64 hex digits of the download_url")
        }
        let keyring = try await keys.current()
        guard Self.signature(id, expires: expires, keyring: keyring).contains(signature.lowercased()) else {
            throw APIError(.forbidden, code: "invalid_signature", message: "the link's signature does not match")
        }
        guard Double(expires) > Date().timeIntervalSince1970 else {
            throw APIError(.gone, code: "link_expired", message: "the link has expired; ask for a new one")
        }
        // Claim the download: only one caller streams it.
        let claimed = try await database.withTransaction { db -> (chunks: Int, bytes: Int64)? in
            guard let row = try await db.query("""
                SELECT e.status, e.chunks, e.bytes FROM privacy_exports e JOIN privacy_requests r ON r.id = e.request_id
                WHERE e.request_id = \(id) AND r.verified_at IS NOT NULL FOR UPDATE OF e
                """).first else { return nil }
            guard try row.decode(String.self, at: 0) == "ready" else {
                throw APIError(.gone, code: "export_gone", message: "this export was downloaded already or has expired")
            }
            try await db.execute("UPDATE privacy_exports SET status = 'downloaded', downloaded_at = now() WHERE request_id = \(id)")
            try await RequestStore.history(id, actor: caller.actor, status: "completed", kind: "downloaded", note: "archive downloaded; deleted", on: db)
            _ = try await AuditTrail.append(AuditEvent(actor: caller.actor, action: "privacy.export.download", resource: "privacy/requests/\(id.uuidString.lowercased())",
                                                       outcome: .success), component: "privacy", on: db)
            return (try row.decode(Int.self, at: 1), try row.decode(Int64.self, at: 2))
        }
        guard let claimed else { throw APIError.notFound("no export for request \(id.uuidString.lowercased())") }
        let database = self.database
        let keys = self.keys
        let body = ResponseBody(contentLength: Int(claimed.bytes)) { writer in
            for seq in 0..<claimed.chunks {
                guard let row = try await database.query("""
                    SELECT key_version, sealed FROM privacy_export_chunks WHERE request_id = \(id) AND seq = \(seq)
                    """).first else { throw APIError(.internalServerError, code: "export_incomplete", message: "a chunk of the export is missing") }
                let sealed = SealedValue(version: try row.decode(Int.self, at: 0), combined: try row.decode([UInt8].self, at: 1))
                let plain = try await keys.current(having: sealed.version, of: .privacyExport)
                    .open(sealed, purpose: .privacyExport, context: ExportChunks.context(id, seq))
                try await writer.write(ByteBuffer(bytes: plain))
            }
            try await writer.finish(nil)
            try await database.execute("DELETE FROM privacy_export_chunks WHERE request_id = \(id)")
        }
        return Response(status: .ok, headers: [.contentType: "application/zip",
                                               .contentDisposition: "attachment; filename=\"gdpr-export-\(id.uuidString.lowercased()).zip\""],
                        body: body)
    }
}
