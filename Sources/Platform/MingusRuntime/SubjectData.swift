import Foundation
public import MingusPostgres
public import MingusSecurity

/// A value of an exported row.
public enum ExportValue: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case bool(Bool)
    /// JSON kept as it is (a `jsonb` column).
    case json(String)
    case null

    /// As a JSON value.
    public var jsonText: String {
        switch self {
        case .text(let text): return ExportValue.quote(text)
        case .integer(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .json(let text): return text
        case .null: return "null"
        }
    }

    /// As a CSV field (RFC 4180: quoted when it holds a comma, quote or line break).
    public var csvText: String {
        let text: String
        switch self {
        case .text(let value), .json(let value): text = value
        case .integer(let value): text = String(value)
        case .bool(let value): text = value ? "true" : "false"
        case .null: return ""
        }
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `text` as a JSON string literal.
    public static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// What a provider needs to read a subject's data.
public struct ProviderContext: Sendable {
    public var database: PostgresClient
    public var keys: KeyringCache

    public init(database: PostgresClient, keys: KeyringCache) {
        self.database = database
        self.keys = keys
    }
}

/// One domain's provider of a data subject's data (its `DomainDescription.subjectData`) for access and portability exports: a table
/// of the archive, read in pages with a keyset cursor so memory stays bounded however much a
/// subject has.
public protocol SubjectDataProvider: Sendable {
    /// The domain that owns the data (`payments`).
    var domain: String { get }
    /// The archive's table name (`payments`), also the CSV file's name.
    var table: String { get }
    /// What the table holds, for the archive's schema.
    var summary: String { get }
    /// Column names, in row order.
    var columns: [String] { get }
    /// Up to `limit` rows of `subject` after `cursor` (nil: from the first), and the cursor of the
    /// last row returned (nil when there is no more).
    func page(subject: String, after cursor: [String]?, limit: Int, context: ProviderContext) async throws -> (rows: [[ExportValue]], next: [String]?)
}

extension ExportValue {
    /// Column `index` of `row` as text, or null.
    public static func text(_ row: PostgresRow, _ index: Int) throws -> ExportValue {
        try row.decode(String?.self, at: index).map(ExportValue.text) ?? .null
    }

    /// Column `index` of `row` as a whole number, or null.
    public static func integer(_ row: PostgresRow, _ index: Int) throws -> ExportValue {
        try row.decode(Int64?.self, at: index).map(ExportValue.integer) ?? .null
    }

    /// A `to_char` format writing a UTC `timestamptz` as RFC 3339 (`… AT TIME ZONE 'UTC'` first).
    public static let timeFormat = "YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\""
}
