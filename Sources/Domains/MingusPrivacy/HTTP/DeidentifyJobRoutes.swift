import Foundation
import HTTPTypes
public import Hummingbird
import MingusBreach
import MingusCore
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
import MingusSecurity
import NIOCore

/// `/api/hipaa/deidentify/jobs`: de-identification of sets larger than `POST /deidentify` takes.
///
/// The upload is JSON lines (`application/x-ndjson`): the first line holds the settings (`level`,
/// `columns`, `purpose`, and `group_by`, `minimum_cell`, `reference_date` as for the synchronous
/// route), each further line one row. Lines are read as the body arrives and stored in sealed
/// blocks of at most ``DeidentifyBlocks/rowsPerBlock`` rows, so memory holds one block whatever
/// the upload's size. A bad settings line refuses the upload (400/422 naming the field) before
/// anything is stored; a bad row line is listed with its number, field and rule and does not stop
/// the good ones. The job is queued for the privacy worker (`privacy.hipaa.deidentify`) and
/// answered 202 with its status URL in `Location`. Role `hipaa:read`, as the synchronous route;
/// a job's status and result are the requester's (and an admin's): anyone else gets 404, since
/// a `none` or `pseudonymized` result is still health information. Each download of a result is
/// an audit event (`hipaa.deidentify.download`) committed before the first byte is sent.
public struct DeidentifyJobRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher
    let keys: KeyringCache
    let audit: AuditBatcher

    /// The longest line an upload may have, in bytes.
    static let maxLineBytes = 64 * 1024
    /// Rows one job takes at most.
    static let maxRows = 5_000_000
    /// Line errors an answer lists at most (all are counted).
    static let maxListedErrors = 1000
    /// The settings line's fields.
    static let settingsFields: Set<String> = ["level", "columns", "purpose", "group_by", "minimum_cell", "reference_date"]

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        publisher = gateway.publisher
        keys = gateway.keys
        audit = gateway.audit
    }

    /// The routes, to mount at `/api/hipaa`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let read = routes.group(requiring: .hipaaRead)
        read.post("deidentify/jobs") { request, context in try await submit(request, context) }
        read.get("deidentify/jobs/:id") { _, context in
            APIResponse(try await status(try context.uuidParameter("id"), for: try context.caller()))
        }
        read.get("deidentify/jobs/:id/result") { _, context in try await result(try context.uuidParameter("id"), context) }
        return routes
    }

    // MARK: - Answers

    /// What an upload did, and where to follow the job.
    struct Accepted: Encodable, Sendable {
        var id: String
        var status: String
        var level: String
        var lines: Int
        var accepted: Int
        var rejected: Int
        var errors: [DeidentifyLineError]
        var errorsTruncated: Bool
        var statusUrl: String
        var resultUrl: String
    }

    /// A 422 for an upload without one good row: the error (naming the first bad line's field)
    /// and the line errors.
    struct Rejected: Encodable, Sendable {
        var error: Detail
        var lines: Int
        var accepted: Int
        var rejected: Int
        var errors: [DeidentifyLineError]
        var errorsTruncated: Bool

        struct Detail: Encodable, Sendable {
            var code: String
            var message: String
            var field: String
            var rule: String
        }
    }

    /// A job's state and counts.
    struct Status: Encodable, Sendable {
        var id: String
        var status: String
        var level: String
        var purpose: String
        var requestedBy: String
        var lines: Int64
        var rowsIn: Int64
        var rowsRejected: Int64
        var rowsDone: Int64
        var blocks: Int
        var blocksDone: Int
        var groups: Int?
        var suppressedGroups: Int?
        var error: String?
        var createdAt: Date
        var startedAt: Date?
        var completedAt: Date?
        var expiresAt: Date?
        var resultUrl: String?
    }

    static func path(_ id: UUID) -> String { "/api/hipaa/deidentify/jobs/\(id.uuidString.lowercased())" }

    // MARK: - Upload

    private func submit(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let caller = try context.caller()
        let contentType = request.headers[.contentType]?.lowercased().split(separator: ";").first?.trimmingCharacters(in: .whitespaces) ?? ""
        guard contentType == "application/x-ndjson" else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "the body must be application/x-ndjson")
        }
        let keyring = try await keys.current()
        let id = UUID()
        var splitter = LineSplitter(maxLength: Self.maxLineBytes)
        var settings: DeidentifySettings?
        var block: [UInt8] = []
        var blockRows = 0
        var seq = 0
        var accepted = 0
        var rejected = 0
        var errors: [DeidentifyLineError] = []
        var lines: [LineSplitter.Line] = []
        let database = self.database

        func reject(_ error: DeidentifyLineError) {
            rejected += 1
            if errors.count < Self.maxListedErrors { errors.append(error) }
        }
        func flush() async throws {
            guard blockRows > 0 else { return }
            let (bytes, rows, number) = (block, blockRows, seq)
            try await database.withConnection { db in
                try await DeidentifyBlocks.store(bytes, rows: rows, job: id, stage: "input", seq: number, keyring: keyring, on: db)
            }
            seq += 1
            block.removeAll(keepingCapacity: true)
            blockRows = 0
        }
        func take() async throws {
            for line in lines {
                guard let bytes = line.bytes else {
                    if settings == nil {
                        throw APIError(.badRequest, code: "invalid_upload", message: "the settings line is longer than \(Self.maxLineBytes) bytes",
                                       field: "settings", rule: "length")
                    }
                    reject(DeidentifyLineError(line: line.number, field: "line", rule: "length", message: "line \(line.number) is longer than \(Self.maxLineBytes) bytes"))
                    continue
                }
                if bytes.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
                guard let current = settings else {
                    let read = try Self.settings(bytes)
                    if read.level == .pseudonymized { try await pseudonymKey() }
                    settings = read
                    try await create(id, read, caller: caller.actor)
                    continue
                }
                guard accepted < Self.maxRows else {
                    reject(DeidentifyLineError(line: line.number, field: "line", rule: "limit", message: "line \(line.number): a job takes at most \(Self.maxRows) rows"))
                    continue
                }
                switch DeidentifyBlocks.row(bytes[...], columns: current.columns) {
                case .failure(var error):
                    error.line = line.number
                    error.message = "line \(line.number): \(error.message)"
                    reject(error)
                case .success:
                    block += bytes
                    block.append(UInt8(ascii: "\n"))
                    blockRows += 1
                    accepted += 1
                    if blockRows >= DeidentifyBlocks.rowsPerBlock || block.count >= DeidentifyBlocks.bytesPerBlock { try await flush() }
                }
            }
            lines.removeAll(keepingCapacity: true)
        }

        do {
            for try await buffer in request.body {
                splitter.feed(buffer.readableBytesView) { lines.append($0) }
                try await take()
            }
            splitter.finish { lines.append($0) }
            try await take()
            try await flush()
        } catch {
            if settings != nil { _ = try? await database.execute("DELETE FROM health_deidentify_jobs WHERE id = \(id)") }
            throw error
        }
        guard let settings else {
            throw APIError(.badRequest, code: "invalid_upload", message: "the body is empty: the first line must be the settings (level, columns, purpose)",
                           field: "settings", rule: "required")
        }
        if accepted == 0 {
            _ = try? await database.execute("DELETE FROM health_deidentify_jobs WHERE id = \(id)")
            guard let first = errors.first else {
                throw APIError(.unprocessableContent, code: "invalid_upload", message: "the upload has no row after the settings", field: "rows", rule: "empty")
            }
            let answer = Rejected(error: .init(code: "invalid_rows", message: "no row could be used; the first bad one: \(first.message)", field: first.field,
                                               rule: first.rule),
                                  lines: splitter.lineNumber, accepted: 0, rejected: rejected, errors: errors, errorsTruncated: rejected > errors.count)
            return try APIResponse(.unprocessableContent, answer).encodedResponse()
        }
        try await database.execute("""
            UPDATE health_deidentify_jobs SET status = 'queued', lines = \(splitter.lineNumber), rows_in = \(accepted), rows_rejected = \(rejected),
                blocks = \(seq) WHERE id = \(id)
            """)
        let job = HealthDeidentifyJob(jobId: id, chunk: 0)
        do {
            try await publisher.publish(type: HealthDeidentifyJob.type, id: job.messageID, body: job, traceID: nil)
        } catch {
            _ = try? await database.execute("DELETE FROM health_deidentify_jobs WHERE id = \(id)")
            throw error
        }
        let path = Self.path(id)
        let answer = Accepted(id: id.uuidString.lowercased(), status: "queued", level: settings.level.rawValue, lines: splitter.lineNumber, accepted: accepted,
                              rejected: rejected, errors: errors, errorsTruncated: rejected > errors.count, statusUrl: path, resultUrl: path + "/result")
        return try APIResponse(.accepted, answer, headers: [.location: path]).encodedResponse()
    }

    /// The settings line: a JSON object of ``settingsFields``, read as the synchronous route
    /// reads its body, with `purpose` required.
    static func settings(_ bytes: [UInt8]) throws -> DeidentifySettings {
        var text = bytes[...]
        if text.starts(with: [0xEF, 0xBB, 0xBF]) { text = text.dropFirst(3) }
        guard case .object(let fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text)) else {
            throw APIError(.badRequest, code: "invalid_upload", message: "the first line must be the settings, a JSON object", field: "settings", rule: "json")
        }
        if let unknown = fields.keys.sorted().first(where: { !settingsFields.contains($0) }) {
            throw APIError(.badRequest, code: "invalid_request", message: "\(unknown) is not a field of the settings", field: unknown, rule: "unknown_field")
        }
        return try DeidentifySettings.parse(fields, purposeRequired: true)
    }

    /// Makes sure the `health-pseudonym` data key exists before a pseudonymized job is stored,
    /// rather than letting the worker find out: 503 otherwise.
    private func pseudonymKey() async throws {
        guard try await keys.current().versions(.healthPseudonym).isEmpty else { return }
        guard try await keys.reload().versions(.healthPseudonym).isEmpty else { return }
        throw APIError(.serviceUnavailable, code: "key_unavailable", message: "no health-pseudonym data key (mingusctl keys init)")
    }

    private func create(_ id: UUID, _ settings: DeidentifySettings, caller: String) async throws {
        let columns = String(decoding: try JSONEncoder().encode(settings.columns.mapValues(\.rawValue)), as: UTF8.self)
        try await database.execute("""
            INSERT INTO health_deidentify_jobs (id, level, columns, group_by, minimum_cell, reference_year, purpose, requested_by)
            VALUES (\(id), \(settings.level.rawValue), \(columns)::jsonb, \(settings.groupBy), \(settings.minimumCell), \(settings.referenceYear),
                    \(settings.purpose ?? ""), \(caller))
            """)
    }

    // MARK: - Status and result

    /// The job, if `caller` asked for it or is an admin.
    private func status(_ id: UUID, for caller: APIKeyIdentity) async throws -> Status {
        guard let row = try await database.query("""
            SELECT status, level, purpose, requested_by, lines, rows_in, rows_rejected, rows_done, blocks, blocks_done, groups, suppressed_groups, error,
                   created_at, started_at, completed_at, expires_at
            FROM health_deidentify_jobs WHERE id = \(id) AND status <> 'uploading'
            """).first, try row.decode(String.self, at: 3) == caller.actor || caller.roles.contains(.admin)
        else { throw APIError.notFound("no de-identification job \(id.uuidString.lowercased())") }
        let status = try row.decode(String.self, at: 0)
        return Status(id: id.uuidString.lowercased(), status: status, level: try row.decode(String.self, at: 1), purpose: try row.decode(String.self, at: 2),
                      requestedBy: try row.decode(String.self, at: 3), lines: try row.decode(Int64.self, at: 4), rowsIn: try row.decode(Int64.self, at: 5),
                      rowsRejected: try row.decode(Int64.self, at: 6), rowsDone: try row.decode(Int64.self, at: 7), blocks: try row.decode(Int.self, at: 8),
                      blocksDone: try row.decode(Int.self, at: 9), groups: try row.decode(Int?.self, at: 10), suppressedGroups: try row.decode(Int?.self, at: 11),
                      error: try row.decode(String?.self, at: 12), createdAt: try row.decode(Date.self, at: 13), startedAt: try row.decode(Date?.self, at: 14),
                      completedAt: try row.decode(Date?.self, at: 15), expiresAt: try row.decode(Date?.self, at: 16),
                      resultUrl: status == "completed" ? Self.path(id) + "/result" : nil)
    }

    /// The de-identified rows as JSON lines in upload order (one sealed block opened at a time);
    /// for `aggregated`, one line per group: `group`, `count` (absent when suppressed), `suppressed`.
    private func result(_ id: UUID, _ context: APIRequestContext) async throws -> Response {
        let caller = try context.caller()
        let job = try await status(id, for: caller)
        switch job.status {
        case "completed": break
        case "expired": throw APIError(.gone, code: "job_expired", message: "this job's result has expired and was deleted")
        default: throw APIError(.conflict, code: "job_not_completed", message: "the job is \(job.status); the result is there once it is completed")
        }
        try await audit.append(AuditEvent(actor: caller.actor, action: "hipaa.deidentify.download", resource: "hipaa/deidentify/jobs/\(job.id)",
                                          outcome: .success, origin: context.origin,
                                          details: ["level": job.level, "rows": "\(job.rowsDone)", "why": job.purpose, "requested_by": job.requestedBy]))
        let database = self.database
        let keys = self.keys
        let aggregated = job.level == DeidentificationLevel.aggregated.rawValue
        var minimum: Int64 = 0
        if aggregated {
            minimum = try await database.query("SELECT minimum_cell FROM health_deidentify_jobs WHERE id = \(id)")[0].decode(Int64.self, at: 0)
        }
        let threshold = minimum
        let body = ResponseBody { writer in
            if aggregated {
                var after = ""
                while true {
                    let rows = try await database.query("""
                        SELECT group_key, count FROM health_deidentify_cells WHERE job_id = \(id) AND group_key > \(after) ORDER BY group_key LIMIT 1000
                        """)
                    guard !rows.isEmpty else { break }
                    var out = ""
                    for row in rows {
                        let key = try row.decode(String.self, at: 0), count = try row.decode(Int64.self, at: 1)
                        out += count < threshold ? "{\"group\":\(key),\"suppressed\":true}\n" : "{\"count\":\(count),\"group\":\(key),\"suppressed\":false}\n"
                        after = key
                    }
                    try await writer.write(ByteBuffer(string: out))
                }
            } else {
                for seq in 0..<job.blocks {
                    guard let row = try await database.query("""
                        SELECT key_version, sealed FROM health_deidentify_blocks WHERE job_id = \(id) AND stage = 'output' AND seq = \(seq)
                        """).first else { throw APIError(.gone, code: "job_expired", message: "a block of the result is gone") }
                    let plain = try await DeidentifyBlocks.open(version: try row.decode(Int.self, at: 0), sealed: try row.decode([UInt8].self, at: 1),
                                                                job: id, stage: "output", seq: seq, keys: keys)
                    try await writer.write(ByteBuffer(bytes: plain))
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
    }
}
