/// The rows a statement returned, copied out of libpq, plus its command outcome.
public struct PostgresRows: RandomAccessCollection, Sendable {
    /// The column names, in result order.
    public var columns: [String] { storage.columns }

    /// Rows inserted, updated, deleted, copied or selected (libpq `PQcmdTuples`; 0 when not applicable).
    public let affectedRows: Int

    /// The command tag, e.g. `INSERT 0 1`, `UPDATE 3`, `COMMIT` or `ROLLBACK`.
    public let commandTag: String

    private let storage: ResultStorage

    init(storage: ResultStorage, affectedRows: Int, commandTag: String) {
        self.storage = storage
        self.affectedRows = affectedRows
        self.commandTag = commandTag
    }

    /// The first row's index: 0.
    public var startIndex: Int { 0 }

    /// One past the last row's index.
    public var endIndex: Int { storage.rowCount }

    /// The row at `position`.
    public subscript(position: Int) -> PostgresRow {
        precondition(indices.contains(position), "row index \(position) out of range 0..<\(storage.rowCount)")
        return PostgresRow(storage: storage, row: position)
    }
}

/// One result row; values are decoded from PostgreSQL's text format on demand.
public struct PostgresRow: Sendable {
    private let storage: ResultStorage
    private let row: Int

    init(storage: ResultStorage, row: Int) {
        self.storage = storage
        self.row = row
    }

    /// The column names, in result order.
    public var columns: [String] { storage.columns }

    /// Decodes the value at column `index`; NULL or an invalid value throws a `.decoding` error.
    public func decode<T: PostgresDecodable>(_ type: T.Type, at index: Int) throws -> T {
        guard let value = try decode(T?.self, at: index) else {
            throw decodingError("is NULL, cannot decode it as \(T.self)", column: index)
        }
        return value
    }

    /// Decodes the value at column `index`, NULL as nil; an invalid value throws a `.decoding` error.
    public func decode<T: PostgresDecodable>(_ type: T?.Type, at index: Int) throws -> T? {
        guard storage.columns.indices.contains(index) else {
            throw PostgresError(
                kind: .decoding,
                message: "no column at index \(index); the result has \(storage.columns.count) columns"
            )
        }
        guard let text = storage.value(row: row, column: index) else { return nil }
        guard let value = T(postgresText: text) else {
            throw decodingError("cannot be decoded as \(T.self)", column: index)
        }
        return value
    }

    /// Decodes the value in the column named `column`; NULL or an invalid value throws a `.decoding` error.
    public func decode<T: PostgresDecodable>(_ type: T.Type, column: String) throws -> T {
        try decode(type, at: columnIndex(column))
    }

    /// Decodes the value in the column named `column`, NULL as nil.
    public func decode<T: PostgresDecodable>(_ type: T?.Type, column: String) throws -> T? {
        try decode(type, at: columnIndex(column))
    }

    /// Whether the value at column `index` is NULL.
    public func isNull(at index: Int) -> Bool {
        storage.value(row: row, column: index) == nil
    }

    private func columnIndex(_ name: String) throws -> Int {
        guard let index = storage.columns.firstIndex(of: name) else {
            throw PostgresError(kind: .decoding, message: "no column named \"\(name)\" in the result")
        }
        return index
    }

    /// Names the column and both types, never the value.
    private func decodingError(_ problem: String, column index: Int) -> PostgresError {
        let type = storage.typeName(column: index)
        return PostgresError(
            kind: .decoding,
            message: "column \"\(storage.columns[index])\" (\(type)) \(problem)",
            column: storage.columns[index]
        )
    }
}

/// Every value of a result, copied out of the `PGresult` so it can be cleared at once.
final class ResultStorage: Sendable {
    let columns: [String]
    let typeOIDs: [UInt32]
    let rowCount: Int
    /// Row-major values; nil is NULL.
    private let values: [String?]

    init(columns: [String], typeOIDs: [UInt32], rowCount: Int, values: [String?]) {
        self.columns = columns
        self.typeOIDs = typeOIDs
        self.rowCount = rowCount
        self.values = values
    }

    static let empty = ResultStorage(columns: [], typeOIDs: [], rowCount: 0, values: [])

    func value(row: Int, column: Int) -> String? {
        guard columns.indices.contains(column) else { return nil }
        return values[row * columns.count + column]
    }

    func typeName(column: Int) -> String {
        let oid = typeOIDs[column]
        return Self.typeNames[oid].map { "type \($0)" } ?? "type oid \(oid)"
    }

    private static let typeNames: [UInt32: String] = [
        16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4",
        25: "text", 26: "oid", 114: "json", 700: "float4", 701: "float8", 1000: "bool[]",
        1001: "bytea[]", 1005: "int2[]", 1007: "int4[]", 1009: "text[]", 1016: "int8[]",
        1022: "float8[]", 1042: "bpchar", 1043: "varchar", 1082: "date", 1083: "time",
        1114: "timestamp", 1184: "timestamptz", 1186: "interval", 1700: "numeric",
        2950: "uuid", 2951: "uuid[]", 3802: "jsonb",
    ]
}
