/// A SQL statement and its bind parameters, built by string interpolation.
///
/// Interpolated values become parameters (`$1`, `$2`, …) sent separately from the SQL text, in
/// text format; they are never spliced into the SQL:
///
///     let query: PostgresQuery = "SELECT * FROM \(identifier: table) WHERE id = \(id) AND note = \(note)"
///
/// `description` shows the SQL only, never the bind values.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible,
    CustomDebugStringConvertible, CustomReflectable
{
    /// The SQL text, with `$n` placeholders.
    public private(set) var sql: String

    /// The bind values in text format (nil is SQL NULL); internal so they cannot leak into logs.
    private(set) var binds: [String?]

    /// Creates a query from SQL with `$n` placeholders and its binds; the SQL must be trusted text.
    public init(unsafeSQL sql: String, binds: [(any PostgresEncodable)?] = []) {
        self.sql = sql
        self.binds = binds.map { $0?.postgresText }
    }

    /// Creates a query with no parameters from a literal.
    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    /// Creates a query from an interpolated literal.
    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    /// The number of bind parameters.
    public var bindCount: Int { binds.count }

    /// The SQL text only.
    public var description: String { sql }

    /// The SQL text and how many binds there are, never their values.
    public var debugDescription: String { "PostgresQuery(\(sql.debugDescription), binds: \(binds.count))" }

    /// Shows the SQL and the bind count, so `dump` cannot print bind values either.
    public var customMirror: Mirror {
        Mirror(self, children: ["sql": sql, "bindCount": binds.count])
    }

    /// Double-quotes an identifier (table, column, database name), doubling embedded quotes.
    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingAll("\"", with: "\"\"") + "\""
    }

    /// Builds a `PostgresQuery` from an interpolated string literal.
    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [String?] = []

        /// Reserves room for the literal text.
        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        /// Appends literal SQL text.
        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Appends a `$n` placeholder bound to `value` (nil binds SQL NULL).
        public mutating func appendInterpolation(_ value: (any PostgresEncodable)?) {
            binds.append(value?.postgresText)
            sql += "$\(binds.count)"
        }

        /// Appends trusted SQL text as is; never pass user input here.
        public mutating func appendInterpolation(unescaped fragment: String) {
            sql += fragment
        }

        /// Appends a double-quoted identifier.
        public mutating func appendInterpolation(identifier name: String) {
            sql += PostgresQuery.quoteIdentifier(name)
        }
    }
}

extension String {
    /// Every occurrence of `target` replaced (without needing Foundation).
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var result = ""
        result.reserveCapacity(count)
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
