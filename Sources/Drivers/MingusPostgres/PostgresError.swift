/// An error from PostgreSQL, from libpq, or from decoding a result.
///
/// Errors never carry bind values: the client never adds them, and for data exceptions
/// (SQLSTATE class 22), where the server quotes the rejected input, the quoted part of the
/// message is redacted. `detail` is passed through as the server sent it and can contain row
/// values (for example `Key (id)=(42) already exists.`); `description` leaves it out.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, broadly.
    public enum Kind: Sendable, Hashable {
        /// The connection could not be established or was lost.
        case connection
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// A value could not be encoded for sending (for example a NUL character in text).
        case encoding
        /// A result value could not be decoded into the requested Swift type.
        case decoding
        /// The connection or client was already closed.
        case closed
    }

    /// What went wrong, broadly.
    public var kind: Kind
    /// The five-character SQLSTATE code, when the server sent one.
    public var sqlState: String?
    /// The primary message, on one line.
    public var message: String
    /// The server's detail message, if any; may contain row values, so do not log it.
    public var detail: String?
    /// The server's hint, if any.
    public var hint: String?
    /// The violated constraint's name, for integrity errors.
    public var constraint: String?
    /// The table involved, when the server names one.
    public var table: String?
    /// The column involved, when the server names one.
    public var column: String?

    /// Creates an error; `message` is collapsed onto one line.
    public init(
        kind: Kind,
        message: String,
        sqlState: String? = nil,
        detail: String? = nil,
        hint: String? = nil,
        constraint: String? = nil,
        table: String? = nil,
        column: String? = nil
    ) {
        self.kind = kind
        self.message = Self.oneLine(message)
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.column = column
    }

    /// One line, e.g. `postgres error 23505 (unique_violation): duplicate key value violates unique constraint "t_pkey"`.
    public var description: String {
        switch kind {
        case .server:
            guard let sqlState else { return "postgres error: \(message)" }
            if let name = Self.conditionNames[sqlState] {
                return "postgres error \(sqlState) (\(name)): \(message)"
            }
            return "postgres error \(sqlState): \(message)"
        case .connection, .encoding, .decoding, .closed:
            if let sqlState {
                return "\(message) (SQLSTATE \(sqlState))"
            }
            return message
        }
    }

    /// The transaction was rolled back because of a concurrent update (SQLSTATE 40001); retrying may succeed.
    public var isSerializationFailure: Bool { sqlState == "40001" }

    /// The transaction was chosen as a deadlock victim (SQLSTATE 40P01); retrying may succeed.
    public var isDeadlock: Bool { sqlState == "40P01" }

    /// The connection is gone or unusable: a libpq connection error, SQLSTATE class 08, or a server shutdown.
    public var isConnectionFailure: Bool {
        if kind == .connection { return true }
        guard let sqlState else { return false }
        return sqlState.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(sqlState)
    }

    // MARK: - Internal construction

    /// The connection or client was closed before the operation.
    static func closed(_ message: String = "the PostgreSQL connection is closed") -> PostgresError {
        PostgresError(kind: .closed, message: message)
    }

    /// Collapses newlines, tabs and repeated spaces (libpq's messages span lines) into single spaces.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// Replaces double-quoted parts of a message (the rejected input in class 22 errors) with `"…"`.
    static func redactingQuotedValues(_ message: String) -> String {
        var result = ""
        var inQuotes = false
        for character in message {
            if character == "\"" {
                result.append(inQuotes ? "…\"" : "\"")
                inQuotes.toggle()
            } else if !inQuotes {
                result.append(character)
            }
        }
        if inQuotes { result.append("…") }
        return result
    }

    /// Names of the conditions this project is most likely to meet, from PostgreSQL's errcodes table.
    static let conditionNames: [String: String] = [
        "08000": "connection_exception",
        "08001": "sqlclient_unable_to_establish_sqlconnection",
        "08003": "connection_does_not_exist",
        "08004": "sqlserver_rejected_establishment_of_sqlconnection",
        "08006": "connection_failure",
        "08P01": "protocol_violation",
        "0A000": "feature_not_supported",
        "21000": "cardinality_violation",
        "22001": "string_data_right_truncation",
        "22003": "numeric_value_out_of_range",
        "22007": "invalid_datetime_format",
        "22008": "datetime_field_overflow",
        "22012": "division_by_zero",
        "22021": "character_not_in_repertoire",
        "22P02": "invalid_text_representation",
        "23000": "integrity_constraint_violation",
        "23502": "not_null_violation",
        "23503": "foreign_key_violation",
        "23505": "unique_violation",
        "23514": "check_violation",
        "23P01": "exclusion_violation",
        "25001": "active_sql_transaction",
        "25006": "read_only_sql_transaction",
        "25P02": "in_failed_sql_transaction",
        "28000": "invalid_authorization_specification",
        "28P01": "invalid_password",
        "3D000": "invalid_catalog_name",
        "40001": "serialization_failure",
        "40P01": "deadlock_detected",
        "42501": "insufficient_privilege",
        "42601": "syntax_error",
        "42703": "undefined_column",
        "42704": "undefined_object",
        "42710": "duplicate_object",
        "42804": "datatype_mismatch",
        "42883": "undefined_function",
        "42P01": "undefined_table",
        "42P02": "undefined_parameter",
        "42P04": "duplicate_database",
        "42P07": "duplicate_table",
        "53000": "insufficient_resources",
        "53100": "disk_full",
        "53200": "out_of_memory",
        "53300": "too_many_connections",
        "55P03": "lock_not_available",
        "57014": "query_canceled",
        "57P01": "admin_shutdown",
        "57P02": "crash_shutdown",
        "57P03": "cannot_connect_now",
        "58000": "system_error",
        "XX000": "internal_error",
    ]
}
