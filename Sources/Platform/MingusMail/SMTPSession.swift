import NIOCore
import Synchronization

/// Sends many messages over one SMTP connection: EHLO, STARTTLS and AUTH once, then
/// `MAIL FROM`, `RCPT TO` and `DATA` per message, `RSET` after a refused one, and a new
/// connection when the server has closed the old one. One message at a time.
///
/// A 4yz reply is worth retrying and a 5yz is not (``SMTPReplyError/isPermanent``). A
/// connection that ends after the end of a message's data was written, before the server's
/// reply, leaves the outcome unknown (``SMTPReplyError/outcomeUnknown``): the server may hold the
/// message. A connection found closed before anything of a message was sent is opened again
/// and the message sent on the new one.
public actor SMTPSession {
    /// The server this session talks to.
    public nonisolated let settings: SMTPServerSettings
    private var connection: SMTPConnection?
    private var busy = false
    /// Connections opened so far (1 while the server keeps the first one open).
    public private(set) var connectionsOpened = 0
    /// Messages the server accepted over this session.
    public private(set) var messagesAccepted = 0

    public init(settings: SMTPServerSettings) {
        self.settings = settings
    }

    /// Sends `mail` and returns the server's reply to the end of its data.
    ///
    /// `beforeData` runs after the server accepted `DATA` and before any of the message is
    /// written: the last moment at which giving up leaves the server without the message (an
    /// error it throws closes the connection, which makes the server discard the transaction).
    /// Throws ``SMTPReplyError`` for a refusal or a lost connection; other errors (refused
    /// connections, TLS failures) come from opening the connection.
    public func send(_ mail: OutgoingMail, beforeData: (@Sendable () async throws -> Void)? = nil) async throws -> SMTPReply {
        precondition(!busy, "an SMTPSession sends one message at a time")
        busy = true
        defer { busy = false }
        let reused = connection?.isActive == true
        do {
            return try await transact(mail, beforeData: beforeData)
        } catch let failure as NotStarted where reused {
            // The server closed an idle connection (or timed it out): nothing of this message
            // reached it, so it goes again on a new connection, once.
            _ = failure
            return try await transact(mail, beforeData: beforeData)
        } catch let failure as NotStarted {
            throw failure.error
        }
    }

    /// Ends the connection politely (QUIT).
    public func close() async {
        let open = connection
        connection = nil
        await open?.quit()
    }

    /// A connection problem before `MAIL FROM` was answered.
    private struct NotStarted: Error {
        var error: any Error
    }

    private func transact(_ mail: OutgoingMail, beforeData: (@Sendable () async throws -> Void)?) async throws -> SMTPReply {
        let connection: SMTPConnection
        if let open = self.connection, open.isActive {
            connection = open
        } else {
            self.connection?.close()
            self.connection = nil
            connection = try await SMTPConnection.open(settings)
            self.connection = connection
            connectionsOpened += 1
        }
        var stage = Stage.mail
        do {
            do {
                try await connection.expect(250, after: "MAIL FROM:<\(mail.from)>")
            } catch let error as SMTPReplyError where !error.fromServer || error.code == 421 {
                drop(connection)
                throw NotStarted(error: error)
            }
            stage = .envelope
            for recipient in mail.recipients {
                try await connection.expect([250, 251], after: "RCPT TO:<\(recipient)>")
            }
            try await connection.expect(354, after: "DATA")
            stage = .data
            if let beforeData {
                do {
                    try await beforeData()
                } catch {
                    drop(connection)
                    throw error
                }
            }
            stage = .written
            let reply = try await connection.expect(250, after: Self.dotStuffed(mail.data) + "\r\n.", shown: "(message)")
            messagesAccepted += 1
            return reply
        } catch let error as SMTPReplyError where error.fromServer {
            // Refused: the connection can carry the next message after RSET.
            if connection.isActive, (try? await connection.expect(250, after: "RSET")) == nil { drop(connection) }
            throw error
        } catch var error as SMTPReplyError {
            drop(connection)
            error.outcomeUnknown = stage == .written
            throw error
        } catch let error as NotStarted {
            throw error
        } catch {
            drop(connection)
            if stage == .written {
                throw SMTPReplyError(code: 421, text: "\(error)", command: "(message)", outcomeUnknown: true, fromServer: false)
            }
            throw error
        }
    }

    private enum Stage { case mail, envelope, data, written }

    private func drop(_ dropped: SMTPConnection) {
        dropped.close()
        if connection === dropped { connection = nil }
    }

    /// The message with CRLF line ends kept and every line starting with `.` given another.
    static func dotStuffed(_ data: String) -> String {
        guard data.contains("\n.") || data.hasPrefix(".") else { return data }
        return data.split(separator: "\r\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(".") ? "." + $0 : String($0) }.joined(separator: "\r\n")
    }
}

/// A fixed number of ``SMTPSession``s to one server, so that several messages are in flight at
/// once, each over a connection that stays open between messages.
public final class SMTPSessionPool: Sendable {
    /// The server every session talks to.
    public let settings: SMTPServerSettings
    /// How many sessions (and so connections, and messages in flight) there are at most.
    public let size: Int
    private let sessions: [SMTPSession]
    private let state: Mutex<State>

    private struct State {
        var idle: [SMTPSession]
        var waiters: [CheckedContinuation<SMTPSession, Never>] = []
    }

    public init(settings: SMTPServerSettings, size: Int) {
        precondition(size >= 1, "an SMTP session pool needs at least one session")
        self.settings = settings
        self.size = size
        sessions = (0..<size).map { _ in SMTPSession(settings: settings) }
        state = Mutex(State(idle: sessions))
    }

    /// Sends `mail` over the first session free (waiting, in order, while all are busy); see
    /// ``SMTPSession/send(_:beforeData:)``.
    public func send(_ mail: OutgoingMail, beforeData: (@Sendable () async throws -> Void)? = nil) async throws -> SMTPReply {
        let session = await lease()
        defer { release(session) }
        return try await session.send(mail, beforeData: beforeData)
    }

    /// Connections opened by all sessions so far.
    public func connectionsOpened() async -> Int {
        var total = 0
        for session in sessions { total += await session.connectionsOpened }
        return total
    }

    /// Closes every session's connection (QUIT); a later send opens a new one.
    public func close() async {
        for session in sessions { await session.close() }
    }

    private func lease() async -> SMTPSession {
        await withCheckedContinuation { continuation in
            let session: SMTPSession? = state.withLock { state in
                if let session = state.idle.popLast() { return session }
                state.waiters.append(continuation)
                return nil
            }
            if let session { continuation.resume(returning: session) }
        }
    }

    private func release(_ session: SMTPSession) {
        let waiter: CheckedContinuation<SMTPSession, Never>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.idle.append(session)
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: session)
    }
}
