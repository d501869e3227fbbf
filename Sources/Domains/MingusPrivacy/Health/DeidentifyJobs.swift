public import Foundation
import HTTPTypes
import Logging
import MingusCore
public import MingusHTTP
import MingusPostgres
public import MingusRuntime
public import MingusSecurity

/// `privacy.hipaa.deidentify`: one chunk of a de-identification job
/// (`POST /api/hipaa/deidentify/jobs`, `Contracts/schemas/privacy.hipaa.deidentify.v1.json`).
/// The message id of chunk `n` is `deidentify/<job>/<n>`.
public struct HealthDeidentifyJob: Codable, Sendable, Equatable {
    public static let type = "privacy.hipaa.deidentify"

    public var jobId: UUID
    public var chunk: Int

    public init(jobId: UUID, chunk: Int) {
        self.jobId = jobId
        self.chunk = chunk
    }

    /// Every chunk has an id of its own, so the inbox never takes the next chunk for a repeat.
    public var messageID: String { "deidentify/\(jobId.uuidString.lowercased())/\(chunk)" }
}

/// What a de-identification job was asked: the level, the columns' kinds and, for
/// `aggregated`, the grouping. The synchronous route and the job read it the same way.
public struct DeidentifySettings: Sendable, Equatable {
    public var level: DeidentificationLevel
    public var columns: [String: IdentifierKind]
    public var groupBy: [String]
    public var minimumCell: Int
    public var referenceYear: Int
    /// Why the data is de-identified (one of ``HealthAccess/purposes``); nil on the synchronous route.
    public var purpose: String?

    /// The settings of a request's fields: 400 `required`/`type`, 422 `enum`/`range`/`format`,
    /// each naming the field.
    static func parse(_ fields: [String: JSONValue], purposeRequired: Bool) throws -> DeidentifySettings {
        func value(_ name: String) -> JSONValue? {
            guard let value = fields[name], value != .null else { return nil }
            return value
        }
        func missing(_ name: String) -> APIError {
            APIError(.badRequest, code: "invalid_request", message: "\(name) is required", field: name, rule: "required")
        }
        func wrongType(_ name: String, _ type: String) -> APIError {
            APIError(.badRequest, code: "invalid_request", message: "\(name) must be a JSON \(type)", field: name, rule: "type")
        }
        guard let levelValue = value("level") else { throw missing("level") }
        guard case .string(let levelText) = levelValue else { throw wrongType("level", "string") }
        guard let level = DeidentificationLevel(rawValue: levelText) else {
            throw APIError.invalidField("level", rule: "enum", "level must be one of \(DeidentificationLevel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let columnsValue = value("columns") else { throw missing("columns") }
        guard case .object(let columnFields) = columnsValue else { throw wrongType("columns", "object") }
        var columns: [String: IdentifierKind] = [:]
        for (name, value) in columnFields {
            guard case .string(let text) = value, let kind = IdentifierKind(rawValue: text) else {
                throw APIError.invalidField("columns", rule: "enum", "each column's kind must be one of \(IdentifierKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            columns[name] = kind
        }
        var purpose: String?
        if purposeRequired {
            guard let purposeValue = value("purpose") else { throw missing("purpose") }
            guard case .string(let text) = purposeValue else { throw wrongType("purpose", "string") }
            guard HealthAccess.purposes.contains(text) else {
                throw APIError.invalidField("purpose", rule: "enum", "purpose must be one of \(HealthAccess.purposes.joined(separator: ", "))")
            }
            purpose = text
        }
        var referenceYear = Calendar(identifier: .gregorian).component(.year, from: Date())
        switch value("reference_date") {
        case nil: break
        case .string(let text)?:
            guard let date = APITime.parse(text) else {
                throw APIError.invalidField("reference_date", rule: "format", "reference_date must be an RFC 3339 date-time")
            }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            referenceYear = calendar.component(.year, from: date)
        default: throw wrongType("reference_date", "string")
        }
        var groupBy: [String] = []
        switch value("group_by") {
        case nil: break
        case .array(let values)?:
            groupBy = try values.map {
                guard case .string(let text) = $0 else {
                    throw APIError(.badRequest, code: "invalid_request", message: "group_by must be an array of strings", field: "group_by", rule: "type")
                }
                return text
            }
        default: throw APIError(.badRequest, code: "invalid_request", message: "group_by must be an array of strings", field: "group_by", rule: "type")
        }
        var minimum = 11
        switch value("minimum_cell") {
        case nil: break
        case let number?:
            let whole: Int64
            switch number {
            case .integer(let n): whole = n
            case .number(let n) where n == n.rounded() && abs(n) < 9e15: whole = Int64(n)
            default: throw wrongType("minimum_cell", "integer")
            }
            guard (2...1000).contains(whole) else { throw APIError.invalidField("minimum_cell", rule: "range", "minimum_cell must be from 2 to 1000") }
            minimum = Int(whole)
        }
        if level == .aggregated {
            guard !groupBy.isEmpty, groupBy.allSatisfy({ [.keep, .zip, .date, .birthDate, .age].contains(columns[$0]) }) else {
                throw APIError.invalidField("group_by", rule: "required", "group_by names one or more columns of kind keep, zip, date, birth_date or age")
            }
        }
        return DeidentifySettings(level: level, columns: columns, groupBy: groupBy, minimumCell: minimum, referenceYear: referenceYear, purpose: purpose)
    }
}

/// The sealed blocks of JSON lines a de-identification job keeps, input and output.
enum DeidentifyBlocks {
    /// Rows one block holds at most.
    static let rowsPerBlock = 1000
    /// Bytes one block holds at most (a block closes at whichever limit comes first).
    static let bytesPerBlock = 1 << 20
    /// Blocks one `privacy.hipaa.deidentify` chunk turns over, in one transaction, by default.
    static let blocksPerChunk = 5
    /// How long a completed job's result may be read.
    static let lifetime: TimeInterval = 7 * 86_400

    static func context(_ job: UUID, _ stage: String, _ seq: Int) -> String {
        "hipaa-deidentify/\(job.uuidString.lowercased())/\(stage)/\(seq)"
    }

    static func store(_ lines: [UInt8], rows: Int, job: UUID, stage: String, seq: Int, keyring: Keyring, on db: PostgresConnection) async throws {
        let sealed = try keyring.seal(lines, purpose: .privacyExport, context: context(job, stage, seq))
        try await db.execute("""
            INSERT INTO health_deidentify_blocks (job_id, stage, seq, rows, key_version, sealed)
            VALUES (\(job), \(stage), \(seq), \(rows), \(sealed.version), \(sealed.combined))
            """)
    }

    static func open(version: Int, sealed: [UInt8], job: UUID, stage: String, seq: Int, keys: KeyringCache) async throws -> [UInt8] {
        let value = SealedValue(version: version, combined: sealed)
        return try await keys.current(having: version, of: .privacyExport).open(value, purpose: .privacyExport, context: context(job, stage, seq))
    }

    /// The lines of a block (each ends with LF).
    static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// One row as a JSON line: keys sorted, the column names as given.
    static func line(_ row: [String: JSONValue]) throws -> [UInt8] {
        Array(try encoder.encode(row)) + [UInt8(ascii: "\n")]
    }

    /// An uploaded line as a row, or why it cannot be one (field and rule).
    static func row(_ bytes: ArraySlice<UInt8>, columns: [String: IdentifierKind]) -> Result<[String: JSONValue], DeidentifyLineError> {
        guard case .object(let row)? = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)) else {
            return .failure(DeidentifyLineError(line: 0, field: "line", rule: "json", message: "not a JSON object"))
        }
        if let unclassified = row.keys.sorted().first(where: { columns[$0] == nil }) {
            return .failure(DeidentifyLineError(line: 0, field: String(unclassified.prefix(64)), rule: "unclassified",
                                                message: "a column without its kind in columns"))
        }
        return .success(row)
    }
}

/// Why one line of an upload was refused: its number, the field and the rule (never the value).
public struct DeidentifyLineError: Error, Encodable, Sendable, Equatable {
    public var line: Int
    public var field: String
    public var rule: String
    public var message: String
}

/// Carries out `privacy.hipaa.deidentify` chunks: each, in the job's transaction, locks the job,
/// turns up to ``blocksPerChunk`` input blocks into output blocks (or counts
/// per group), deletes them, and hands on to the next chunk or completes the job with its one
/// audit event. Memory holds one block at a time; a chunk killed midway rolls back and is redone.
struct DeidentifyRunner: Sendable {
    let keys: KeyringCache
    /// Input blocks per chunk (`MINGUS_HIPAA_DEIDENTIFY_CHUNK_BLOCKS`, 1-100, default 5).
    let blocksPerChunk: Int

    func handle(_ job: HealthDeidentifyJob, _ context: JobContext) async throws {
        let db = context.database
        let id = job.jobId
        guard let row = try await db.query("""
            SELECT status, level, columns::text, group_by, minimum_cell, reference_year, purpose, requested_by, rows_in, rows_rejected
            FROM health_deidentify_jobs WHERE id = \(id) FOR UPDATE
            """).first else { throw PermanentJobError("de-identification job \(id) does not exist") }
        let status = try row.decode(String.self, at: 0)
        guard status == "queued" || status == "running" else {
            context.logger.info("de-identification job not to run", metadata: ["mingus.job": "\(id)", "mingus.status": "\(status)"])
            return
        }
        guard let level = DeidentificationLevel(rawValue: try row.decode(String.self, at: 1)) else {
            throw PermanentJobError("de-identification job \(id) has an unknown level")
        }
        let kinds = try JSONDecoder().decode([String: String].self, from: Data(try row.decode(String.self, at: 2).utf8))
        let columns = kinds.compactMapValues(IdentifierKind.init(rawValue:))
        let groupBy = try row.decode([String].self, at: 3)
        let minimum = try row.decode(Int.self, at: 4)
        let keyring = try await keys.current()
        let deidentifier = Deidentifier(columns: columns, referenceYear: try row.decode(Int.self, at: 5), keyring: level == .pseudonymized ? keyring : nil)

        let seqs = try await db.query("""
            SELECT seq FROM health_deidentify_blocks WHERE job_id = \(id) AND stage = 'input' ORDER BY seq LIMIT \(blocksPerChunk)
            """).map { try $0.decode(Int.self, at: 0) }
        var rowsDone = 0
        var counts: [String: Int64] = [:]
        for seq in seqs {
            guard let block = try await db.query("""
                SELECT key_version, sealed FROM health_deidentify_blocks WHERE job_id = \(id) AND stage = 'input' AND seq = \(seq)
                """).first else { continue }
            let plain = try await DeidentifyBlocks.open(version: try block.decode(Int.self, at: 0), sealed: try block.decode([UInt8].self, at: 1),
                                                        job: id, stage: "input", seq: seq, keys: keys)
            var out: [UInt8] = []
            var rows = 0
            for line in DeidentifyBlocks.lines(plain) {
                guard case .success(let input) = DeidentifyBlocks.row(line, columns: columns) else {
                    // Lines were checked on upload; one that no longer reads is a stored block gone wrong.
                    try await db.execute("""
                        UPDATE health_deidentify_jobs SET status = 'failed', error = \("input block \(seq) holds a line that is not a classified row"),
                            completed_at = now() WHERE id = \(id)
                        """)
                    context.logger.error("de-identification job failed", metadata: ["mingus.job": "\(id)", "mingus.block": "\(seq)"])
                    return
                }
                rows += 1
                if level == .aggregated {
                    let anonymous = deidentifier.anonymize(input)
                    var group: [String: JSONValue] = [:]
                    for column in groupBy { group[column] = anonymous[column] ?? .null }
                    counts[String(decoding: try DeidentifyBlocks.encoder.encode(group), as: UTF8.self), default: 0] += 1
                } else {
                    out += try DeidentifyBlocks.line(try deidentifier.apply(input, level: level))
                }
            }
            if level != .aggregated {
                try await DeidentifyBlocks.store(out, rows: rows, job: id, stage: "output", seq: seq, keyring: keyring, on: db)
            }
            try await db.execute("DELETE FROM health_deidentify_blocks WHERE job_id = \(id) AND stage = 'input' AND seq = \(seq)")
            rowsDone += rows
        }
        if !counts.isEmpty {
            let groups = Array(counts.keys)
            let values = groups.map { counts[$0]! }
            try await db.execute("""
                INSERT INTO health_deidentify_cells (job_id, group_key, count)
                SELECT \(id), g, n FROM unnest(\(groups)::text[], \(values)::bigint[]) AS t (g, n)
                ON CONFLICT (job_id, group_key) DO UPDATE SET count = health_deidentify_cells.count + EXCLUDED.count
                """)
        }
        try await db.execute("""
            UPDATE health_deidentify_jobs SET status = 'running', started_at = coalesce(started_at, now()),
                blocks_done = blocks_done + \(seqs.count), rows_done = rows_done + \(rowsDone) WHERE id = \(id)
            """)
        let remaining = try await db.query("""
            SELECT 1 FROM health_deidentify_blocks WHERE job_id = \(id) AND stage = 'input' LIMIT 1
            """)
        if !remaining.isEmpty {
            let next = HealthDeidentifyJob(jobId: id, chunk: job.chunk + 1)
            try await context.emit(type: HealthDeidentifyJob.type, next, id: next.messageID)
            return
        }
        let expires = Date().addingTimeInterval(DeidentifyBlocks.lifetime)
        let done = try await db.query("""
            UPDATE health_deidentify_jobs j SET status = 'completed', completed_at = now(), expires_at = \(expires),
                groups = CASE WHEN j.level = 'aggregated' THEN (SELECT count(*) FROM health_deidentify_cells c WHERE c.job_id = j.id) END,
                suppressed_groups = CASE WHEN j.level = 'aggregated'
                    THEN (SELECT count(*) FROM health_deidentify_cells c WHERE c.job_id = j.id AND c.count < \(minimum)) END
            WHERE id = \(id) RETURNING rows_done
            """)[0]
        let rowsTotal = try done.decode(Int64.self, at: 0)
        _ = try await AuditTrail.append(AuditEvent(actor: try row.decode(String.self, at: 7), action: "hipaa.deidentify", resource: "hipaa/deidentify",
                                                   outcome: .success,
                                                   details: ["level": level.rawValue, "rows": "\(rowsTotal)", "why": try row.decode(String.self, at: 6),
                                                             "job_id": id.uuidString.lowercased(), "rows_rejected": "\(try row.decode(Int64.self, at: 9))"]),
                                        component: "hipaa", on: db)
        context.logger.info("de-identification job completed", metadata: ["mingus.job": "\(id)", "mingus.rows": "\(rowsTotal)",
                                                                          "mingus.level": "\(level.rawValue)"])
    }
}
