public import Logging
import Synchronization

/// One PostgreSQL session over libpq, with its own dedicated thread on which every blocking
/// libpq call runs; async methods wait for that thread without blocking the caller's.
///
/// Calls from several tasks are safe but run one after another; a transaction or a `copyFrom`
/// spans several calls, so give a connection to one task at a time (as `PostgresClient` does).
public final class PostgresConnection: Sendable {
    private let thread: BlockingThread
    private let session: LibPQSession
    private let state: Mutex<State>

    private struct State {
        var isClosed = false
        var status = LibPQSession.Status(isBroken: false, transaction: .idle)
        /// A statement to run just before the next call, on the same trip to the thread
        /// (``deferUntilNextCall(_:)``).
        var deferred: String?
    }

    /// The size of each `PQputCopyData` call during `copyFrom`.
    private static let copyChunkSize = 64 * 1024

    private init(thread: BlockingThread, session: LibPQSession) {
        self.thread = thread
        self.session = session
        self.state = Mutex(State())
    }

    deinit {
        // Forgotten without close(): still release the server session and the thread.
        let session = self.session
        thread.submit { session.finish() }
        thread.shutdown()
    }

    /// Opens a connection (`PQconnectdbParams`, on the new connection's own thread) with the
    /// session time zone set to UTC.
    public static func connect(
        configuration: PostgresConfiguration,
        logger: Logger = Logger(label: "mingus.postgres")
    ) async throws -> PostgresConnection {
        let thread = BlockingThread(name: "mingus-postgres")
        do {
            let session = try await thread.run { try LibPQSession.open(configuration, logger: logger) }
            return PostgresConnection(thread: thread, session: session)
        } catch {
            thread.shutdown()
            throw error
        }
    }

    /// Runs one statement and returns its rows.
    public func query(_ query: PostgresQuery) async throws -> PostgresRows {
        let sql = query.sql
        let binds = query.binds
        return try await perform { try $0.query(sql, binds: binds) }
    }

    /// Runs one statement and returns how many rows it affected.
    @discardableResult
    public func execute(_ query: PostgresQuery) async throws -> Int {
        try await self.query(query).affectedRows
    }

    /// Runs trusted SQL that may hold several statements, with the simple query protocol.
    ///
    /// Only for migrations and similar fixed scripts: it takes no parameters, so never build
    /// `sql` from untrusted input.
    public func executeScript(_ sql: String) async throws {
        _ = try await perform { try $0.script(sql) }
    }

    /// Bulk-loads rows with `COPY table (columns) FROM STDIN` in text format and returns how
    /// many rows were stored.
    ///
    /// `table` and each column are quoted as single identifiers (no `schema.table`; the search
    /// path applies). Each row must have one value per column; nil is NULL. Rows are encoded in
    /// the calling task and sent in chunks of about 64 KiB. If anything fails, the whole COPY
    /// is rolled back by the server.
    @discardableResult
    public nonisolated(nonsending) func copyFrom(
        table: String,
        columns: [String],
        rows: some Sequence<[(any PostgresEncodable)?]>
    ) async throws -> Int {
        var index = 0
        return try await copyFrom(table: table, columns: columns, rows: rows) { row, writer throws(PostgresError) in
            guard row.count == columns.count else {
                throw PostgresError(kind: .encoding, message: "copyFrom row \(index) has \(row.count) values for \(columns.count) columns")
            }
            index += 1
            for value in row {
                if let value { writer.text(value.postgresText) } else { writer.null() }
            }
        }
    }

    /// Bulk-loads `rows` like ``copyFrom(table:columns:rows:)``, each row written by `write` as
    /// its fields in column order (no arrays of boxed values: the logs worker's hot path).
    @discardableResult
    public nonisolated(nonsending) func copyFrom<Row>(
        table: String,
        columns: [String],
        rows: some Sequence<Row>,
        write: (Row, inout CopyRowWriter) throws(PostgresError) -> Void
    ) async throws -> Int {
        let columnList = columns.map(PostgresQuery.quoteIdentifier).joined(separator: ", ")
        let sql = "COPY \(PostgresQuery.quoteIdentifier(table)) (\(columnList)) FROM STDIN"
        try await perform { try $0.beginCopy(sql) }
        do {
            var writer = CopyRowWriter(capacity: Self.copyChunkSize + 4096)
            for row in rows {
                writer.startRow()
                try write(row, &writer)
                guard writer.fields == columns.count else {
                    throw PostgresError(kind: .encoding, message: "copyFrom wrote \(writer.fields) values for \(columns.count) columns")
                }
                writer.endRow()
                if writer.buffer.count >= Self.copyChunkSize {
                    try Task.checkCancellation()
                    let data = writer.buffer
                    writer.buffer.removeAll(keepingCapacity: true)
                    try await perform { try $0.putCopyData(data) }
                }
            }
            if !writer.buffer.isEmpty {
                let data = writer.buffer
                try await perform { try $0.putCopyData(data) }
            }
        } catch {
            // Ends the COPY so the connection is usable again; the server discards what it got.
            _ = try? await perform { try $0.endCopy(abortMessage: "COPY aborted by the client") }
            throw error
        }
        return try await perform { try $0.endCopy() }
    }

    /// Whether the connection is closed or libpq reports it unusable (`PQstatus != CONNECTION_OK`).
    public var isBroken: Bool {
        state.withLock { $0.isClosed || $0.status.isBroken }
    }

    /// Closes the connection (`PQfinish` on its thread) and stops the thread; later calls throw `.closed`.
    public func close() async {
        let wasOpen = state.withLock { state in
            defer { state.isClosed = true }
            return !state.isClosed
        }
        guard wasOpen else { return }
        let session = self.session
        _ = try? await thread.run { session.finish() }
        thread.shutdown()
    }

    // MARK: - Internal

    /// libpq's transaction status after the last call.
    var transactionState: LibPQSession.TransactionState {
        state.withLock { $0.status.transaction }
    }

    /// Notices, without a round trip, whether the server closed the connection while it was idle.
    /// Only for a connection nobody is using (the pool's idle ones): it reads the socket on the
    /// caller's thread, without blocking, instead of waking the connection's thread for it.
    func checkHealth() -> Bool {
        guard !state.withLock({ $0.isClosed }) else { return false }
        session.pollForClosure()
        let status = session.status
        state.withLock { $0.status = status }
        return !status.isBroken
    }

    /// Has trusted, parameterless `sql` (a `BEGIN`) run just before the next call, on the same
    /// trip to the connection's thread, so that a transaction's first statement costs one
    /// thread hop instead of two. If that statement fails, the next call fails with its error.
    func deferUntilNextCall(_ sql: String) {
        state.withLock { $0.deferred = sql }
    }

    /// Drops the deferred statement if it has not run; true when there was one.
    func dropDeferred() -> Bool {
        state.withLock { state in
            defer { state.deferred = nil }
            return state.deferred != nil
        }
    }

    /// Whether the server has closed the connection, seen without reading from it or changing
    /// its state (for tests that close a session from the server and must know when the
    /// client can notice).
    func serverHasClosed() async -> Bool {
        (try? await perform { $0.serverHasClosed() }) ?? true
    }

    /// Runs `operation` on the connection's thread, then records the connection's status.
    private func perform<T: Sendable>(_ operation: @escaping @Sendable (LibPQSession) throws -> T) async throws -> T {
        let (isClosed, deferred) = state.withLock { state in
            defer { state.deferred = nil }
            return (state.isClosed, state.deferred)
        }
        if isClosed { throw PostgresError.closed() }
        let session = self.session
        return try await thread.run {
            defer {
                let status = session.status
                self.state.withLock { $0.status = status }
            }
            if let deferred { try session.script(deferred) }
            return try operation(session)
        }
    }
}

/// COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
/// Writes the fields of COPY rows in PostgreSQL's text format: tab between fields, a newline
/// after each row, `\N` for NULL, and backslash, tab, newline and carriage return escaped.
public struct CopyRowWriter {
    var buffer: [UInt8] = []
    private(set) var fields = 0
    private static let backslash = UInt8(ascii: "\\")

    init(capacity: Int) {
        buffer.reserveCapacity(capacity)
    }

    mutating func startRow() { fields = 0 }

    mutating func endRow() { buffer.append(UInt8(ascii: "\n")) }

    private mutating func separate() {
        if fields > 0 { buffer.append(UInt8(ascii: "\t")) }
        fields += 1
    }

    public mutating func null() {
        separate()
        buffer.append(Self.backslash)
        buffer.append(UInt8(ascii: "N"))
    }

    /// A field's text, escaped; copied whole when it holds nothing to escape.
    public mutating func text(_ value: String) {
        separate()
        var value = value
        value.withUTF8 { bytes in
            if !bytes.contains(where: { $0 == Self.backslash || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
                buffer.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case Self.backslash: buffer.append(Self.backslash); buffer.append(Self.backslash)
                case 0x09: buffer.append(Self.backslash); buffer.append(UInt8(ascii: "t"))
                case 0x0A: buffer.append(Self.backslash); buffer.append(UInt8(ascii: "n"))
                case 0x0D: buffer.append(Self.backslash); buffer.append(UInt8(ascii: "r"))
                default: buffer.append(byte)
                }
            }
        }
    }

    /// A whole number, written without making a `String`.
    public mutating func integer(_ value: Int64) {
        separate()
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        let start = buffer.count
        repeat {
            buffer.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        buffer[start...].reverse()
    }

    public mutating func bool(_ value: Bool) {
        separate()
        buffer.append(value ? UInt8(ascii: "t") : UInt8(ascii: "f"))
    }
}
