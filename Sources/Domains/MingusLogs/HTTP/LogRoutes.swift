import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
public import MingusSecurity
import MingusCore
import NIOCore

extension Role {
    /// Sends log lines.
    public static let logsWrite = Role("logs:write")
    /// Reads lines, templates and anomalies.
    public static let logsRead = Role("logs:read")
}

extension DomainDescription {
    /// Log intake (every common shipper's format), search, templates and anomalies.
    public static let logs = DomainDescription(
        name: "logs", roles: [.logsWrite, .logsRead], queues: [WorkerQueues(name: "logs")], subjectData: [LogsProvider()], dataInventory: DataTable.logs
    ) { router, gateway in
        let routes = LogRoutes(gateway)
        router.addRoutes(routes.collection(), atPath: "/api/logs")
        router.addRoutes(routes.lokiCollection(), atPath: "/api/logs/loki/api/v1")
    }
}

/// `/api/logs` and `/api/logs/loki/api/v1/push` (Loki clients take `http://<gateway>/api/logs`
/// as their endpoint): lines in (answered once durably queued, never after
/// they are parsed further), and lines, templates and anomalies out.
public struct LogRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher

    /// The largest body taken, as sent (413 above).
    public static let maxBody = 8 << 20
    /// The largest body once gzip is undone (413 above).
    public static let maxInflated = 64 << 20
    /// Lines per `logs.batch` job.
    public static let linesPerJob = 2_000
    /// Unicode scalars kept of one message; the rest is cut.
    public static let maxMessage = 65_536

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        publisher = gateway.publisher
    }

    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let write = routes.group(requiring: .logsWrite)
        write.post { request, context in
            APIResponse(.accepted, try await take(request, format: nil, caller: try context.caller()))
        }
        let read = routes.group(requiring: .logsRead)
        read.get { request, _ in APIResponse(try await lines(request)) }
        read.get("templates") { request, _ in APIResponse(try await templates(request)) }
        read.get("anomalies") { request, _ in APIResponse(try await anomalies(request)) }
        return routes
    }

    /// `POST /api/logs/loki/api/v1/push` with Loki's JSON body; 204 like Loki.
    public func lokiCollection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        routes.group(requiring: .logsWrite).post("push") { request, context -> Response in
            _ = try await take(request, format: .loki, caller: try context.caller())
            return Response(status: .noContent)
        }
        return routes
    }

    // MARK: - Intake

    struct Accepted: Encodable, Sendable {
        var accepted: Int
        var malformed: Int
        var redacted: [String: Int]
        var jobs: Int
    }

    /// Reads, inflates, parses and redacts a body, then publishes its lines as `logs.batch` jobs
    /// and waits for the broker to confirm them all.
    func take(_ request: Request, format forced: LogFormat?, caller: APIKeyIdentity) async throws -> Accepted {
        let tooLarge = APIError(.contentTooLarge, code: "payload_too_large",
                                message: "the body is larger than \(Self.maxBody) bytes, or \(Self.maxInflated) once inflated")
        if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.maxBody { throw tooLarge }
        var body: [UInt8]
        do {
            body = Array(try await request.body.collect(upTo: Self.maxBody).readableBytesView)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
        switch request.headers[.contentEncoding]?.lowercased() {
        case nil, "identity": break
        case "gzip", "x-gzip":
            do {
                body = try Gzip.decompress(body, limit: Self.maxInflated)
            } catch is Gzip.TooLarge {
                throw tooLarge
            } catch {
                throw APIError(.badRequest, code: "invalid_encoding", message: "the body is not valid gzip")
            }
        default:
            throw APIError(.unsupportedMediaType, code: "unsupported_encoding", message: "Content-Encoding must be gzip or absent")
        }
        let contentType = request.headers[.contentType] ?? ""
        guard let format = forced ?? LogIntake.detect(contentType: contentType, body: body) else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type",
                           message: "send application/json (JSON lines or array, Loki push, OTLP logs), application/x-ndjson or text/plain")
        }
        if forced == .loki, !(contentType.lowercased().hasPrefix("application/json")) {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "Loki pushes are taken as application/json only")
        }
        let intake = LogIntake(defaultService: caller.name)
        var batch: LogIntake.Batch
        do {
            batch = try intake.parse(body, as: format)
        } catch let refusal as LogIntake.Refusal {
            throw APIError(.badRequest, code: "invalid_body", message: refusal.description)
        }
        for index in batch.records.indices where batch.records[index].message.unicodeScalars.count > Self.maxMessage {
            batch.records[index].message = String(String.UnicodeScalarView(batch.records[index].message.unicodeScalars.prefix(Self.maxMessage)))
        }
        for index in batch.records.indices where batch.records[index].service.count > 256 || batch.records[index].service.isEmpty {
            batch.records[index].service = batch.records[index].service.isEmpty ? caller.name : String(batch.records[index].service.prefix(256))
        }
        let id = UUID().uuidString.lowercased()
        let chunks = stride(from: 0, to: batch.records.count, by: Self.linesPerJob).map {
            Array(batch.records[$0..<min($0 + Self.linesPerJob, batch.records.count)])
        }
        let sources = batch.cardSources.isEmpty ? nil : batch.cardSources.sorted()
        let publisher = self.publisher
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, lines) in chunks.enumerated() {
                group.addTask {
                    let job = LogsBatchJob(lines: lines, receivedAt: intake.now, cardSources: n == 0 ? sources : nil)
                    try await publisher.publish(type: LogsBatchJob.type, id: "logs/\(id)/\(n)", encodedBody: job.json(), traceID: nil)
                }
            }
            try await group.waitForAll()
        }
        return Accepted(accepted: batch.records.count, malformed: batch.malformed,
                        redacted: Dictionary(uniqueKeysWithValues: batch.redactions.counts.map { ($0.kind, $0.count) }), jobs: chunks.count)
    }

    // MARK: - Lines

    struct Line: Encodable, Sendable {
        var at: Date
        var service: String
        var level: String
        var templateId: Int64
        var variables: [String]
        var message: String
        var raw: Bool
    }

    struct LinePage: Encodable, Sendable {
        var lines: [Line]
        @Nullable var nextCursor: String?
    }

    static func limit(_ request: Request) throws -> Int {
        try PageCursor.limit(request.uri.queryParameters, default: 100, max: 500)
    }

    static func time(_ request: Request, _ name: String) throws -> Date? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard let date = APITime.parse(text) else {
            throw APIError.invalidParameter(name, rule: "format", "\(name) is an RFC 3339 time such as 2026-11-26T12:00:00Z")
        }
        return date
    }

    /// Newest first; filters service, level, template, text (a case-insensitive substring) and
    /// `from`/`to`; keyset paging on (time, job, position).
    func lines(_ request: Request) async throws -> LinePage {
        let query = request.uri.queryParameters
        let limit = try Self.limit(request)
        let service = query.get("service")
        if let service, service.isEmpty || service.count > 256 {
            throw APIError.invalidParameter("service", rule: "length", "service is 1-256 characters")
        }
        let level = query.get("level")
        if let level, !["trace", "debug", "info", "warn", "error", "fatal", "unknown"].contains(level) {
            throw APIError.invalidParameter("level", rule: "enum", "level is one of trace, debug, info, warn, error, fatal, unknown")
        }
        var template: Int64?
        if let text = query.get("template") {
            guard let value = Int64(text), value > 0 else { throw APIError.invalidParameter("template", rule: "format", "template is a template id") }
            template = value
        }
        let text = query.get("text")
        if let text, text.isEmpty || text.count > 256 || text.contains("\u{0}") {
            throw APIError.invalidParameter("text", rule: "length", "text is 1-256 characters")
        }
        let from = try Self.time(request, "from") ?? Date(timeIntervalSince1970: 0)
        let to = try Self.time(request, "to") ?? Date.distantFuture
        var after: (at: Int64, job: String, seq: Int)?
        if let cursor = query.get("cursor") {
            let fields = try PageCursor.decode(cursor, fields: 3)
            guard let at = Int64(fields[0]), let seq = Int(fields[2]) else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            after = (at, fields[1], seq)
        }
        let rows = try await database.query("""
            SELECT l.at, l.service, l.level, l.template_id, l.variables, l.message, l.raw, l.job_id, l.seq,
                   (extract(epoch FROM l.at) * 1000000)::bigint
            FROM log_lines l
            WHERE l.at >= \(from) AND l.at < \(to)
              AND (\(service)::text IS NULL OR l.service = \(service))
              AND (\(level)::text IS NULL OR l.level = \(level))
              AND (\(template)::bigint IS NULL OR l.template_id = \(template)
                   OR l.template_id IN (SELECT id FROM log_templates WHERE merged_into = \(template)))
              AND (\(text)::text IS NULL OR strpos(lower(l.message), lower(\(text))) > 0)
              AND (\(after?.at)::bigint IS NULL
                   OR (l.at, l.job_id, l.seq) < (to_timestamp(\(after?.at)::bigint / 1e6), \(after?.job), \(after?.seq)))
            ORDER BY l.at DESC, l.job_id DESC, l.seq DESC LIMIT \(limit + 1)
            """)
        var lines: [Line] = []
        var last: (Int64, String, Int)?
        for row in rows.prefix(limit) {
            lines.append(Line(at: try row.decode(Date.self, at: 0), service: try row.decode(String.self, at: 1),
                              level: try row.decode(String.self, at: 2), templateId: try row.decode(Int64.self, at: 3),
                              variables: try row.decode([String].self, at: 4), message: try row.decode(String.self, at: 5),
                              raw: try row.decode(Bool.self, at: 6)))
            last = (try row.decode(Int64.self, at: 9), try row.decode(String.self, at: 7), try row.decode(Int.self, at: 8))
        }
        let next = rows.count > limit ? last.map { PageCursor.encode([String($0.0), $0.1, String($0.2)]) } : nil
        return LinePage(lines: lines, nextCursor: next)
    }

    // MARK: - Templates and anomalies

    struct Template: Encodable, Sendable {
        var id: Int64
        var template: String
        var count: Int64
        var firstSeen: Date
        var lastSeen: Date
        var example: String
        @Nullable var mergedInto: Int64?
    }

    struct TemplateList: Encodable, Sendable {
        var templates: [Template]
    }

    /// The most frequent templates first (`limit`, default 100).
    func templates(_ request: Request) async throws -> TemplateList {
        let limit = try Self.limit(request)
        return TemplateList(templates: try await database.query("""
            SELECT id, template, line_count, first_seen, last_seen, example, merged_into FROM log_templates
            ORDER BY line_count DESC, id LIMIT \(limit)
            """).map {
            Template(id: try $0.decode(Int64.self, at: 0), template: try $0.decode(String.self, at: 1), count: try $0.decode(Int64.self, at: 2),
                     firstSeen: try $0.decode(Date.self, at: 3), lastSeen: try $0.decode(Date.self, at: 4), example: try $0.decode(String.self, at: 5),
                     mergedInto: try $0.decode(Int64?.self, at: 6))
        })
    }

    struct Anomaly: Encodable, Sendable {
        var id: String
        var kind: String
        var service: String
        @Nullable var templateId: Int64?
        @Nullable var rule: String?
        @Nullable var source: String?
        var minute: Date
        var lines: Int64
        var summary: String
        var dedupKey: String
        var detectedAt: Date
    }

    struct AnomalyList: Encodable, Sendable {
        var anomalies: [Anomaly]
    }

    /// The newest first (`limit`, default 100), of one `kind` if given.
    func anomalies(_ request: Request) async throws -> AnomalyList {
        let limit = try Self.limit(request)
        let kind = request.uri.queryParameters.get("kind")
        let kinds = ["new_template", "error_burst", "card_number", "template_rate", "security_rule"]
        if let kind, !kinds.contains(kind) {
            throw APIError.invalidParameter("kind", rule: "enum", "kind is one of \(kinds.joined(separator: ", "))")
        }
        return AnomalyList(anomalies: try await database.query("""
            SELECT id, kind, service, template_id, minute, lines, summary, dedup_key, detected_at, rule, source FROM log_anomalies
            WHERE \(kind)::text IS NULL OR kind = \(kind)
            ORDER BY detected_at DESC, id DESC LIMIT \(limit)
            """).map {
            Anomaly(id: try $0.decode(UUID.self, at: 0).uuidString.lowercased(), kind: try $0.decode(String.self, at: 1),
                    service: try $0.decode(String.self, at: 2), templateId: try $0.decode(Int64?.self, at: 3),
                    rule: try $0.decode(String?.self, at: 9), source: try $0.decode(String?.self, at: 10),
                    minute: try $0.decode(Date.self, at: 4), lines: try $0.decode(Int64.self, at: 5), summary: try $0.decode(String.self, at: 6),
                    dedupKey: try $0.decode(String.self, at: 7), detectedAt: try $0.decode(Date.self, at: 8))
        })
    }
}
