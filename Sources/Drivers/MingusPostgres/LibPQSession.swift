import CLibPQ
import Foundation
import Logging

/// A libpq connection, confined to its owner's `BlockingThread`: every method blocks, and must
/// only be called from jobs on that one thread.
final class LibPQSession: @unchecked Sendable {
    // `@unchecked`: the mutable state is touched only from the owning thread, one job at a time.
    private var connection: OpaquePointer?
    private var isCopying = false
    private let logger: Logger
    /// Statements with parameters prepared on this session, by SQL text.
    private var preparedNames: [String: String] = [:]
    private var preparedCount = 0
    /// Statements prepared at most per session; beyond that, statements are parsed at every call.
    static let maximumPreparedStatements = 500

    private init(connection: OpaquePointer, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Whether the connection is usable, and where it is with respect to transactions.
    struct Status: Sendable {
        var isBroken: Bool
        var transaction: TransactionState
    }

    /// libpq's `PQtransactionStatus`.
    enum TransactionState: Sendable {
        case idle, active, inTransaction, failed, unknown
    }

    // MARK: - Lifecycle

    /// Connects with `PQconnectdbParams` and sets up the session (UTC, ISO dates, hex bytea).
    static func open(_ configuration: PostgresConfiguration, logger: Logger) throws -> LibPQSession {
        guard configuration.hasValidURLShape else {
            // The string itself is not repeated: it may hold a password.
            throw PostgresError(
                kind: .connection,
                message: "cannot connect to PostgreSQL: the URL is neither a postgresql:// URL nor key=value pairs"
            )
        }
        let parameters = configuration.connectionParameters
        let keywords = parameters.map { UnsafePointer(strdup($0.keyword)) } + [nil]
        let values = parameters.map { UnsafePointer(strdup($0.value)) } + [nil]
        defer {
            for pointer in keywords + values { free(UnsafeMutablePointer(mutating: pointer)) }
        }
        guard let connection = PQconnectdbParams(keywords, values, 1) else {
            throw PostgresError(kind: .connection, message: "cannot connect to PostgreSQL: libpq is out of memory")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let error = connectFailure(connection)
            PQfinish(connection)
            throw error
        }

        let session = LibPQSession(connection: connection, logger: logger)
        // The session outlives the callback: it calls PQfinish itself before it goes away.
        PQsetNoticeProcessor(connection, noticeProcessor, Unmanaged.passUnretained(session).toOpaque())
        do {
            try session.script("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, MDY'; SET bytea_output = 'hex'")
        } catch {
            session.finish()
            throw error
        }
        return session
    }

    /// Closes the connection (`PQfinish`); later calls throw `.closed`.
    func finish() {
        if let connection {
            PQfinish(connection)
            self.connection = nil
        }
    }

    deinit {
        finish()
    }

    /// The current connection and transaction status.
    var status: Status {
        guard let connection else { return Status(isBroken: true, transaction: .unknown) }
        let transaction: TransactionState =
            switch PQtransactionStatus(connection) {
            case PQTRANS_IDLE: .idle
            case PQTRANS_ACTIVE: .active
            case PQTRANS_INTRANS: .inTransaction
            case PQTRANS_INERROR: .failed
            default: .unknown
            }
        return Status(isBroken: PQstatus(connection) != CONNECTION_OK, transaction: transaction)
    }

    /// Reads whatever the server already sent, without blocking, so that a connection the
    /// server has closed while idle shows up as broken.
    func pollForClosure() {
        guard let connection else { return }
        // A server that ends a session first sends the reason (an ErrorResponse), then closes
        // the socket. One PQconsumeInput reads the message (PQisBusy parses it and hands it
        // to the notice processor); the next sees end-of-file and marks the connection bad.
        // Neither blocks; on a healthy idle connection both find nothing to read.
        for _ in 0..<3 {
            guard PQconsumeInput(connection) == 1, PQstatus(connection) == CONNECTION_OK else { return }
            _ = PQisBusy(connection)
        }
    }

    /// Whether the server has closed its end of the socket (end-of-file waits behind whatever
    /// it sent before), seen without reading anything.
    func serverHasClosed() -> Bool {
        guard let connection else { return true }
        let socket = PQsocket(connection)
        guard socket >= 0 else { return true }
        #if os(Linux)
        let hangUp = Int16(0x2000)  // POLLRDHUP: the peer shut down its writing side
        #else
        let hangUp = Int16(POLLHUP)
        #endif
        var descriptor = pollfd(fd: socket, events: hangUp, revents: 0)
        guard poll(&descriptor, 1, 0) == 1 else { return false }
        return descriptor.revents & (hangUp | Int16(POLLHUP) | Int16(POLLERR)) != 0
    }

    // MARK: - Statements

    /// Runs one statement with the extended protocol, binds in text format. A statement with
    /// parameters is prepared the first time this session sees its text (`PQprepare`), and run
    /// as that prepared statement from then on (`PQexecPrepared`): the server parses and
    /// analyzes it once per session, and plans it as PostgreSQL's `plan_cache_mode` decides
    /// (custom plans first, a generic one once it is no costlier).
    func query(_ sql: String, binds: [String?]) throws -> PostgresRows {
        let connection = try open()
        for (index, bind) in binds.enumerated() where bind?.utf8.contains(0) == true {
            throw PostgresError(
                kind: .encoding,
                message: "bind parameter $\(index + 1) contains a NUL character, which PostgreSQL text cannot hold"
            )
        }
        let copies = binds.map { $0.map { UnsafePointer(strdup($0)) } }
        defer {
            for pointer in copies { free(UnsafeMutablePointer(mutating: pointer ?? nil)) }
        }
        let values = copies.map { $0 ?? nil }
        guard let name = try preparedName(sql, parameters: binds.count, connection) else {
            return try consume(PQexecParams(connection, sql, Int32(binds.count), nil, values, nil, nil, 0), connection)
        }
        do {
            return try consume(PQexecPrepared(connection, name, Int32(binds.count), values, nil, nil, 0), connection)
        } catch let error as PostgresError where error.sqlState == "0A000" {
            // "cached plan must not change result type": a table changed under a `SELECT *` or
            // `RETURNING *`. The error stands (it may have aborted a transaction); the next
            // call prepares the statement again.
            preparedNames[sql] = nil
            _ = try? script("DEALLOCATE \(name)")
            throw error
        }
    }

    /// The name of `sql`'s prepared statement, preparing it first when needed; nil for a
    /// statement without parameters, or once the session holds its maximum.
    private func preparedName(_ sql: String, parameters: Int, _ connection: OpaquePointer) throws -> String? {
        guard parameters > 0 else { return nil }
        if let name = preparedNames[sql] { return name }
        guard preparedNames.count < Self.maximumPreparedStatements else { return nil }
        preparedCount += 1
        let name = "mingus_\(preparedCount)"
        guard let result = PQprepare(connection, name, sql, Int32(parameters), nil) else { throw lostConnection(connection) }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else { throw Self.error(from: result, connection) }
        preparedNames[sql] = name
        return name
    }

    /// Runs trusted, possibly multi-statement SQL with the simple protocol (`PQexec`).
    @discardableResult
    func script(_ sql: String) throws -> PostgresRows {
        let connection = try open()
        return try consume(PQexec(connection, sql), connection)
    }

    // MARK: - COPY FROM STDIN

    /// Starts a `COPY … FROM STDIN`.
    func beginCopy(_ sql: String) throws {
        let connection = try open()
        guard let result = PQexec(connection, sql) else { throw lostConnection(connection) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COPY_IN:
            isCopying = true
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            finishUnexpectedCopy(PQresultStatus(result), connection)
            throw PostgresError(kind: .server, message: "statement did not start a COPY FROM STDIN")
        default:
            throw Self.error(from: result, connection)
        }
    }

    /// Sends one chunk of COPY text data.
    func putCopyData(_ chunk: [UInt8]) throws {
        let connection = try open()
        let sent = chunk.withUnsafeBytes { bytes in
            PQputCopyData(connection, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        }
        guard sent == 1 else {
            // The server may already have rejected the data; its error is the useful one.
            isCopying = false
            throw collectResults(connection).error ?? lostConnection(connection)
        }
    }

    /// Ends the COPY (or aborts it, with `abortMessage`) and returns how many rows it stored.
    func endCopy(abortMessage: String? = nil) throws -> Int {
        let connection = try open()
        guard isCopying else { return 0 }
        isCopying = false
        guard PQputCopyEnd(connection, abortMessage) == 1 else {
            throw lostConnection(connection)
        }
        let outcome = collectResults(connection)
        if let error = outcome.error { throw error }
        guard let rows = outcome.rows else { throw lostConnection(connection) }
        return rows.affectedRows
    }

    // MARK: - Results

    private func open() throws -> OpaquePointer {
        guard let connection else { throw PostgresError.closed() }
        return connection
    }

    /// Turns a `PGresult` into rows or an error, clearing it either way.
    private func consume(_ result: OpaquePointer?, _ connection: OpaquePointer) throws -> PostgresRows {
        guard let result else { throw lostConnection(connection) }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        switch status {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return Self.rows(from: result)
        case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
            finishUnexpectedCopy(status, connection)
            throw PostgresError(kind: .server, message: "COPY with STDIN or STDOUT is only supported through copyFrom")
        default:
            throw Self.error(from: result, connection)
        }
    }

    /// Reads every pending result until libpq returns NULL: the first success's rows and the first error.
    private func collectResults(_ connection: OpaquePointer) -> (rows: PostgresRows?, error: PostgresError?) {
        var rows: PostgresRows?
        var error: PostgresError?
        while let result = PQgetResult(connection) {
            defer { PQclear(result) }
            let status = PQresultStatus(result)
            switch status {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                if rows == nil { rows = Self.rows(from: result) }
            case PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_COPY_BOTH:
                // libpq returns the same COPY result until the COPY is over; end it first.
                finishUnexpectedCopy(status, connection)
                return (rows, error)
            default:
                if error == nil { error = Self.error(from: result, connection) }
            }
        }
        return (rows, error)
    }

    /// Ends a COPY that the caller did not ask for, leaving the connection idle.
    private func finishUnexpectedCopy(_ status: ExecStatusType, _ connection: OpaquePointer) {
        if status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
            var buffer: UnsafeMutablePointer<CChar>?
            while PQgetCopyData(connection, &buffer, 0) >= 0 {
                PQfreemem(buffer)
                buffer = nil
            }
        }
        if status == PGRES_COPY_IN || status == PGRES_COPY_BOTH {
            _ = PQputCopyEnd(connection, "COPY FROM STDIN is only supported through copyFrom")
        }
        _ = collectResults(connection)
    }

    /// Copies every value out of a successful result.
    private static func rows(from result: OpaquePointer) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        var columns: [String] = []
        var typeOIDs: [UInt32] = []
        for column in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(column))))
            typeOIDs.append(UInt32(PQftype(result, Int32(column))))
        }
        var values: [String?] = []
        values.reserveCapacity(rowCount * columnCount)
        for row in 0..<Int32(rowCount) {
            for column in 0..<Int32(columnCount) {
                if PQgetisnull(result, row, column) == 1 {
                    values.append(nil)
                } else {
                    let bytes = UnsafeRawBufferPointer(
                        start: PQgetvalue(result, row, column),
                        count: Int(PQgetlength(result, row, column))
                    )
                    values.append(String(decoding: bytes, as: UTF8.self))
                }
            }
        }
        let storage = ResultStorage(columns: columns, typeOIDs: typeOIDs, rowCount: rowCount, values: values)
        return PostgresRows(
            storage: storage,
            affectedRows: Int(String(cString: PQcmdTuples(result))) ?? 0,
            commandTag: String(cString: PQcmdStatus(result))
        )
    }

    // MARK: - Errors

    /// The error a failed result describes: the server's diagnostic fields, or a lost connection.
    private static func error(from result: OpaquePointer, _ connection: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let sqlState = field("C")
        guard sqlState != nil || PQstatus(connection) == CONNECTION_OK else {
            return lostConnection(connection, message: String(cString: PQresultErrorMessage(result)))
        }
        var message = field("M") ?? String(cString: PQresultErrorMessage(result))
        if sqlState?.hasPrefix("22") == true {
            // Data exceptions quote the rejected input, which may be a bind value.
            message = PostgresError.redactingQuotedValues(message)
        }
        return PostgresError(
            kind: .server,
            message: message,
            sqlState: sqlState,
            detail: field("D"),
            hint: field("H"),
            constraint: field("n"),
            table: field("t"),
            column: field("c")
        )
    }

    private func lostConnection(_ connection: OpaquePointer) -> PostgresError {
        Self.lostConnection(connection, message: String(cString: PQerrorMessage(connection)))
    }

    private static func lostConnection(_ connection: OpaquePointer, message: String) -> PostgresError {
        let reason = PostgresError.oneLine(message)
        return PostgresError(
            kind: .connection,
            message: "PostgreSQL connection failed: \(reason.isEmpty ? "no response from the server" : reason)"
        )
    }

    /// `cannot connect to PostgreSQL at HOST:PORT: REASON`, on one line.
    private static func connectFailure(_ connection: OpaquePointer) -> PostgresError {
        var reason = PostgresError.oneLine(String(cString: PQerrorMessage(connection)))
        // libpq 14+ starts with `connection to server at "HOST" (ADDR), port PORT failed: `;
        // the host and port are given once, below.
        if reason.hasPrefix("connection to server"), let range = reason.range(of: " failed: ") {
            reason = String(reason[range.upperBound...])
        }
        let host = PQhost(connection).map { String(cString: $0) } ?? ""
        let port = PQport(connection).map { String(cString: $0) } ?? ""
        let target = host.isEmpty ? "" : port.isEmpty ? " at \(host)" : " at \(host):\(port)"
        return PostgresError(kind: .connection, message: "cannot connect to PostgreSQL\(target): \(reason)")
    }

    // MARK: - Notices

    fileprivate func logNotice(_ message: String) {
        logger.debug("postgres notice", metadata: ["mingus.db.notice": "\(PostgresError.oneLine(message))"])
    }
}

/// Sends server notices (e.g. `extension "x" already exists, skipping`) to the logger, not stderr.
private let noticeProcessor: PQnoticeProcessor = { context, message in
    guard let context, let message else { return }
    Unmanaged<LibPQSession>.fromOpaque(context).takeUnretainedValue().logNotice(String(cString: message))
}
