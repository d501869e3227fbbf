import Crypto
import MingusCore
public import MingusRuntime
public import Foundation
import MingusPostgres
import MingusSecurity

/// The export's sealed chunks (`privacy_export_chunks`): the archive's bytes in pieces of
/// `chunkSize`, each sealed with the newest `privacy-export` key, its request and sequence
/// number authenticated.
enum ExportChunks {
    static func context(_ id: UUID, _ seq: Int) -> String { "privacy-export/\(id.uuidString.lowercased())/\(seq)" }
}

/// Collects archive bytes and stores them as sealed chunks, one insert per chunk.
final class SealedChunkSink: ByteSink {
    let id: UUID
    let database: PostgresClient
    let keyring: Keyring
    let chunkSize: Int
    private var buffer: [UInt8] = []
    private(set) var seq = 0
    private var hash = SHA256()

    init(id: UUID, database: PostgresClient, keyring: Keyring, chunkSize: Int = 1 << 20) {
        self.id = id
        self.database = database
        self.keyring = keyring
        self.chunkSize = chunkSize
        buffer.reserveCapacity(chunkSize)
    }

    func write(_ bytes: [UInt8]) async throws {
        hash.update(data: bytes)
        buffer += bytes
        while buffer.count >= chunkSize {
            let piece = Array(buffer[..<chunkSize])
            buffer.removeFirst(chunkSize)
            try await store(piece)
        }
    }

    private func store(_ piece: [UInt8]) async throws {
        let sealed = try keyring.seal(piece, purpose: .privacyExport, context: ExportChunks.context(id, seq))
        try await database.execute("""
            INSERT INTO privacy_export_chunks (request_id, seq, key_version, sealed) VALUES (\(id), \(seq), \(sealed.version), \(sealed.combined))
            """)
        seq += 1
    }

    /// Stores what is left; returns the number of chunks and the archive's SHA-256 (hex).
    func finish() async throws -> (chunks: Int, sha256: String) {
        if !buffer.isEmpty { try await store(buffer); buffer = [] }
        return (seq, Hex.encode(hash.finalize()))
    }
}

/// Builds a subject's archive: `README.txt`, `schema.json` (JSON Schema of `export.json`),
/// `export.json` (every provider's table as an array of objects) and `csv/<table>.csv`, streamed
/// page by page into sealed chunks. Memory holds one page of rows and one chunk.
public struct Exporter: Sendable {
    public var providers: [any SubjectDataProvider]
    public var pageSize: Int

    public init(providers: [any SubjectDataProvider] = SubjectDataRegistry.providers, pageSize: Int = 2000) {
        self.providers = providers
        self.pageSize = pageSize
    }

    /// What an export wrote.
    public struct Outcome: Sendable {
        public var bytes: Int64
        public var chunks: Int
        public var sha256: String
        public var counts: [String: Int64]
    }

    /// Writes the archive of `subject` for request `id`, replacing any chunks a previous
    /// (interrupted) run left.
    public func export(_ id: UUID, subject: String, context: ProviderContext) async throws -> Outcome {
        try await context.database.execute("DELETE FROM privacy_export_chunks WHERE request_id = \(id)")
        let sink = SealedChunkSink(id: id, database: context.database, keyring: try await context.keys.current())
        let archive = ZipWriter(sink: sink)
        let generated = Date()
        try await archive.begin("README.txt")
        try await archive.write(readme(subject: subject, generated: generated))
        try await archive.end()
        try await archive.begin("schema.json")
        try await archive.write(schema())
        try await archive.end()

        var counts: [String: Int64] = [:]
        try await archive.begin("export.json")
        try await archive.write("{\"format\":\"mingus-gdpr-export/1\",\"subject_id\":\(ExportValue.quote(subject)),\"request_id\":\"\(id.uuidString.lowercased())\",\"generated_at\":\"\(ISO8601DateFormatter().string(from: generated))\",\"tables\":{")
        for (index, provider) in providers.enumerated() {
            let keys = provider.columns.map(ExportValue.quote)
            try await archive.write("\(index == 0 ? "" : ",")\(ExportValue.quote(provider.table)):{\"domain\":\(ExportValue.quote(provider.domain)),\"rows\":[")
            var count: Int64 = 0
            try await pages(provider, subject: subject, context: context) { rows in
                var text = ""
                for row in rows {
                    text += count == 0 ? "{" : ",{"
                    for (offset, pair) in zip(keys, row).enumerated() {
                        if offset > 0 { text += "," }
                        text += pair.0 + ":" + pair.1.jsonText
                    }
                    text += "}"
                    count += 1
                }
                try await archive.write(text)
            }
            try await archive.write("]}")
            counts[provider.table] = count
        }
        try await archive.write("}}")
        try await archive.end()

        for provider in providers {
            try await archive.begin("csv/\(provider.table).csv")
            try await archive.write(provider.columns.joined(separator: ",") + "\r\n")
            try await pages(provider, subject: subject, context: context) { rows in
                var text = ""
                for row in rows { text += row.map(\.csvText).joined(separator: ",") + "\r\n" }
                try await archive.write(text)
            }
            try await archive.end()
        }
        let size = try await archive.finish()
        let (chunks, sha) = try await sink.finish()
        return Outcome(bytes: Int64(size), chunks: chunks, sha256: sha, counts: counts)
    }

    private func pages(_ provider: any SubjectDataProvider, subject: String, context: ProviderContext,
                       _ body: ([[ExportValue]]) async throws -> Void) async throws {
        var cursor: [String]?
        repeat {
            let page = try await provider.page(subject: subject, after: cursor, limit: pageSize, context: context)
            if !page.rows.isEmpty { try await body(page.rows) }
            cursor = page.next
        } while cursor != nil
    }

    func readme(subject: String, generated: Date) -> String {
        var text = """
            Your personal data held by Mingus (GDPR Art. 15 and 20)
            Subject: \(subject)
            Generated: \(ISO8601DateFormatter().string(from: generated))

            export.json   every table below, machine readable (its JSON Schema is schema.json)
            csv/*.csv     the same tables, one CSV file each (RFC 4180, header row first)

            Tables:

            """
        for provider in providers {
            text += "- \(provider.table) (\(provider.domain)): \(provider.summary)\n  columns: \(provider.columns.joined(separator: ", "))\n"
        }
        return text
    }

    /// The JSON Schema (2020-12) of `export.json`.
    func schema() -> String {
        let tables = providers.map { provider in
            let properties = provider.columns.map { "\(ExportValue.quote($0)):{}" }.joined(separator: ",")
            return """
                \(ExportValue.quote(provider.table)):{"type":"object","description":\(ExportValue.quote(provider.summary)),"required":["domain","rows"],\
                "properties":{"domain":{"const":\(ExportValue.quote(provider.domain))},"rows":{"type":"array","items":{"type":"object",\
                "additionalProperties":false,"properties":{\(properties)}}}}}
                """
        }.joined(separator: ",")
        return """
            {"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Mingus GDPR export v1","type":"object",\
            "required":["format","subject_id","request_id","generated_at","tables"],"properties":{"format":{"const":"mingus-gdpr-export/1"},\
            "subject_id":{"type":"string"},"request_id":{"type":"string","format":"uuid"},"generated_at":{"type":"string","format":"date-time"},\
            "tables":{"type":"object","properties":{\(tables)}}}}
            """
    }
}
