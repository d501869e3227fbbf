public import Crypto
public import Foundation
import MingusCore
public import MingusPostgres

/// One audit event: who did what to which resource, with what outcome, from where (PCI DSS 10.2).
public struct AuditEvent: Sendable, Equatable {
    /// How an audited action ended.
    public enum Outcome: String, Sendable { case success, failure, denied }

    public var actor: String
    public var action: String
    public var resource: String
    public var outcome: Outcome
    public var origin: String
    /// Extra facts as a JSON object; never card data or secrets.
    public var details: [String: String]

    public init(actor: String, action: String, resource: String, outcome: Outcome, origin: String = "",
                details: [String: String] = [:]) {
        self.actor = actor
        self.action = action
        self.resource = resource
        self.outcome = outcome
        self.origin = origin
        self.details = details
    }
}

/// Appends to the tamper-evident audit trail (`Contracts/migrations/0003_audit.sql`).
///
/// Events go to one of ``shards`` streams per component, chosen by a stable hash of the resource,
/// so writers seldom wait on each other and never on one global lock; each stream is a hash chain.
public enum AuditTrail {
    /// Streams per component.
    public static let shards: UInt64 = 16

    /// Appends `event` inside the caller's transaction; returns its stream and sequence number.
    ///
    /// The stream is chosen by the writing database session (`component/<backend pid mod 16>`),
    /// so a transaction holds the lock of one stream head however many events it appends, and
    /// concurrent transactions (a worker's lanes, other processes) seldom meet on one and never
    /// deadlock over two.
    @discardableResult
    public static func append(_ event: AuditEvent, component: String, on connection: PostgresConnection) async throws -> (stream: String, seq: Int64) {
        let rows = try await connection.query("""
            SELECT stream, mingus_audit_append(stream, \(event.actor), \(event.action), \(event.resource),
                                               \(event.outcome.rawValue), \(event.origin), \(jsonObject(event.details))::jsonb)
            FROM (SELECT \(component)::text || '/' || (pg_backend_pid() % \(Int64(shards)))::text AS stream) AS writer
            """)
        return (try rows[0].decode(String.self, at: 0), try rows[0].decode(Int64.self, at: 1))
    }

    /// Appends `events`, in order, inside the caller's transaction with one statement: one
    /// stream (chosen as for a single event), its head locked and moved once. Returns the stream
    /// and the sequence number of the first event; nil when `events` is empty.
    @discardableResult
    public static func append(_ events: [AuditEvent], component: String, on connection: PostgresConnection) async throws -> (stream: String, firstSeq: Int64)? {
        guard !events.isEmpty else { return nil }
        let rows = try await connection.query("""
            SELECT stream, mingus_audit_append_all(stream, \(events.map(\.actor)), \(events.map(\.action)),
                                                   \(events.map(\.resource)), \(events.map(\.outcome.rawValue)),
                                                   \(events.map(\.origin)), \(events.map { jsonObject($0.details) })::jsonb[])
            FROM (SELECT \(component)::text || '/' || (pg_backend_pid() % \(Int64(shards)))::text AS stream) AS writer
            """)
        return (try rows[0].decode(String.self, at: 0), try rows[0].decode(Int64.self, at: 1))
    }

    /// `details` as a JSON object (keys sorted, so the same details always read the same).
    static func jsonObject(_ details: [String: String]) -> String {
        guard !details.isEmpty else { return "{}" }
        var text = "{"
        for (index, key) in details.keys.sorted().enumerated() {
            if index > 0 { text += "," }
            appendJSONString(key, to: &text)
            text += ":"
            appendJSONString(details[key]!, to: &text)
        }
        return text + "}"
    }

    private static func appendJSONString(_ value: String, to text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}

/// What ``AuditVerifier/verify(streamPrefix:)`` found.
public struct AuditVerification: Sendable, Equatable {
    /// The first entry that does not check out, with why.
    public struct Break: Sendable, Equatable, CustomStringConvertible {
        public var stream: String
        public var seq: Int64
        public var reason: String
        public var description: String { "stream \(stream) entry \(seq): \(reason)" }
    }

    public var streams = 0
    public var events = 0
    /// Checkpoints signed by a trusted key, all verified.
    public var checkpoints = 0
    /// Checkpoints signed by keys not given to the verifier (not trusted, not checked).
    public var untrustedCheckpoints = 0
    /// Streams whose oldest entries were archived away: their chain starts after an entry a
    /// trusted checkpoint names.
    public var rebasedStreams = 0
    /// nil when everything checks out.
    public var firstBreak: Break?

    public var isIntact: Bool { firstBreak == nil }
}

/// Recomputes the audit trail's hash chains and checks the stream heads and every signed
/// checkpoint, independently of the database's own functions.
///
/// A stream whose oldest entries a retention sweep archived starts after its base (audit_stream_bases):
/// the entry a trusted checkpoint names with its hash, so the base cannot be moved or invented
/// without the checkpoint key. Checkpoint lines below a base name archived entries and are not
/// compared; the one at the base is.
public struct AuditVerifier: Sendable {
    private let database: PostgresClient
    private let trustedKeys: [String: Curve25519.Signing.PublicKey]

    /// Checkpoints signed by one of `publicKeys` are verified; others are counted as untrusted.
    public init(database: PostgresClient, publicKeys: [Curve25519.Signing.PublicKey]) {
        self.database = database
        self.trustedKeys = Dictionary(publicKeys.map { (AuditSigner.keyID($0), $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The canonical text of an event, built by the verifier's own copy of the expression.
    static let canonical = """
        convert_to(jsonb_build_array(stream, seq, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            actor, action, resource, outcome, origin, details)::text, 'UTF8')
        """

    /// Checks every stream whose name starts with `streamPrefix` (all of them when nil).
    ///
    /// Reads one snapshot (a repeatable-read transaction): writers of a live trail move stream
    /// heads between the verifier's statements, which read separately would look like a chain cut
    /// short.
    public func verify(streamPrefix: String? = nil) async throws -> AuditVerification {
        try await database.withTransaction(isolation: .repeatableRead) { db in
            try await verify(streamPrefix: streamPrefix, on: db)
        }
    }

    private func verify(streamPrefix: String?, on db: PostgresConnection) async throws -> AuditVerification {
        let pattern = (streamPrefix.map { $0.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") } ?? "") + "%"
        var result = AuditVerification()
        var heads: [String: (seq: Int64, hash: [UInt8])] = [:]
        var current: (stream: String, seq: Int64, hash: [UInt8])?
        var after = (stream: "", seq: Int64(0))
        let zero = [UInt8](repeating: 0, count: 32)

        func broken(_ stream: String, _ seq: Int64, _ reason: String) -> AuditVerification {
            var result = result
            result.firstBreak = .init(stream: stream, seq: seq, reason: reason)
            return result
        }

        // Where rebased chains start, each vouched for by a trusted, valid checkpoint.
        var bases: [String: (seq: Int64, hash: [UInt8])] = [:]
        for row in try await db.query("""
            SELECT b.stream, b.base_seq, b.base_hash, b.checkpoint_id, c.heads, c.key_id, c.signature
            FROM audit_stream_bases b LEFT JOIN audit_checkpoints c ON c.id = b.checkpoint_id
            WHERE b.stream LIKE \(pattern) ORDER BY b.stream
            """) {
            let stream = try row.decode(String.self, at: 0)
            let seq = try row.decode(Int64.self, at: 1)
            let hash = try row.decode([UInt8].self, at: 2)
            let checkpoint = try row.decode(Int64.self, at: 3)
            guard let text = try row.decode(String?.self, at: 4), let keyID = try row.decode(String?.self, at: 5),
                  let signature = try row.decode([UInt8]?.self, at: 6) else {
                return broken(stream, seq, "the chain starts after entry \(seq) on checkpoint \(checkpoint), which does not exist")
            }
            guard let publicKey = trustedKeys[keyID] else {
                return broken(stream, seq, "the chain starts after entry \(seq) on checkpoint \(checkpoint), signed by key \(keyID) the verifier was not given")
            }
            guard publicKey.isValidSignature(signature, for: Array(text.utf8)),
                  text.split(separator: "\n").contains(Substring("\(stream) \(seq) \(Hex.encode(hash))")) else {
                return broken(stream, seq, "the chain starts after entry \(seq), which checkpoint \(checkpoint) does not vouch for (base moved or forged)")
            }
            bases[stream] = (seq, hash)
        }
        result.rebasedStreams = bases.count

        while true {
            let rows = try await db.query("""
                SELECT stream, seq, prev_hash, hash, \(unescaped: Self.canonical) FROM audit_events
                WHERE stream LIKE \(pattern) AND (stream, seq) > (\(after.stream), \(after.seq))
                  AND seq > COALESCE((SELECT b.base_seq FROM audit_stream_bases b WHERE b.stream = audit_events.stream), 0)
                ORDER BY stream, seq LIMIT 5000
                """)
            for row in rows {
                let stream = try row.decode(String.self, at: 0)
                let seq = try row.decode(Int64.self, at: 1)
                let previous = try row.decode([UInt8].self, at: 2)
                let hash = try row.decode([UInt8].self, at: 3)
                let text = try row.decode([UInt8].self, at: 4)
                if current?.stream != stream {
                    if let current { heads[current.stream] = (current.seq, current.hash) }
                    let base = bases[stream] ?? (0, zero)
                    current = (stream, base.seq, base.hash)
                    result.streams += 1
                }
                guard let chain = current else { continue }
                guard seq == chain.seq + 1 else {
                    return broken(stream, chain.seq + 1, seq > chain.seq + 1
                        ? "missing: the next entry present is \(seq)" : "out of order: found \(seq) after \(chain.seq)")
                }
                guard previous == chain.hash else {
                    return broken(stream, seq, "does not link to the entry before it (deleted, inserted or swapped entries)")
                }
                guard Array(SHA256.hash(data: previous + text)) == hash else {
                    return broken(stream, seq, "its content does not match its hash (edited)")
                }
                current = (stream, seq, hash)
                result.events += 1
                after = (stream, seq)
            }
            if rows.count < 5000 { break }
        }
        if let current { heads[current.stream] = (current.seq, current.hash) }

        // The recorded heads: a chain cut short still links, but its head says where it ended.
        for row in try await db.query("SELECT stream, head_seq, head_hash FROM audit_streams WHERE stream LIKE \(pattern) ORDER BY stream") {
            let stream = try row.decode(String.self, at: 0)
            let seq = try row.decode(Int64.self, at: 1)
            let hash = try row.decode([UInt8].self, at: 2)
            let last = heads[stream] ?? bases[stream] ?? (0, zero)
            if last.seq != seq || last.hash != hash {
                return broken(stream, last.seq + 1, "the stream's head is entry \(seq) but the chain ends at \(last.seq) (truncated or rewritten)")
            }
        }

        // Signed checkpoints: each names a head that must still be in its chain.
        for row in try await db.query("SELECT id, heads, key_id, signature FROM audit_checkpoints ORDER BY id") {
            let id = try row.decode(Int64.self, at: 0)
            let text = try row.decode(String.self, at: 1)
            let signature = try row.decode([UInt8].self, at: 3)
            guard let publicKey = trustedKeys[try row.decode(String.self, at: 2)] else {
                result.untrustedCheckpoints += 1
                continue
            }
            result.checkpoints += 1
            guard publicKey.isValidSignature(signature, for: Array(text.utf8)) else {
                return broken("checkpoint", id, "signature does not verify with key \(AuditSigner.keyID(publicKey)) (checkpoint forged or altered)")
            }
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                guard fields.count == 3, let seq = Int64(fields[1]) else { continue }
                let stream = String(fields[0])
                guard streamPrefix.map({ stream.hasPrefix($0) }) ?? true else { continue }
                let end = heads[stream]?.seq ?? bases[stream]?.seq ?? 0
                if let base = bases[stream], seq <= base.seq {
                    // Archived; only the entry at the base is still known, by its hash.
                    guard seq < base.seq || Hex.encode(base.hash) == fields[2] else {
                        return broken(stream, seq, "checkpoint \(id) signed a different entry here (chain rewritten)")
                    }
                    continue
                }
                guard seq <= end else {
                    return broken(stream, end + 1, "missing: checkpoint \(id) signed the chain up to entry \(seq), it now ends at \(end) (truncated)")
                }
                let found = try await db.query("SELECT hash FROM audit_events WHERE stream = \(stream) AND seq = \(seq)")
                let hash = try found.first.map { try $0.decode([UInt8].self, at: 0) }
                guard let hash, Hex.encode(hash) == fields[2] else {
                    return broken(stream, seq, "checkpoint \(id) signed a different entry here (chain rewritten)")
                }
            }
        }
        return result
    }
}

/// Signs checkpoints of the audit trail's stream heads with an Ed25519 key kept outside the database.
public struct AuditSigner: Sendable {
    private let key: Curve25519.Signing.PrivateKey

    public init(key: Curve25519.Signing.PrivateKey) {
        self.key = key
    }

    /// Reads a key file written by ``createKey(at:)`` (base64 of the raw 32-byte key).
    public init(contentsOf url: URL) throws {
        let text = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Data(base64Encoded: text) else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: url.path])
        }
        key = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
    }

    /// Writes a new key to `url` (mode 0600) and its public key to `url.pub`; refuses to overwrite.
    @discardableResult
    public static func createKey(at url: URL) throws -> AuditSigner {
        let manager = FileManager.default
        guard !manager.fileExists(atPath: url.path) else {
            throw CocoaError(.fileWriteFileExists, userInfo: [NSFilePathErrorKey: url.path])
        }
        try manager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                                    attributes: [.posixPermissions: 0o700])
        let key = Curve25519.Signing.PrivateKey()
        guard manager.createFile(atPath: url.path, contents: Data(key.rawRepresentation.base64EncodedString().utf8),
                                 attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        try Data(key.publicKey.rawRepresentation.base64EncodedString().utf8)
            .write(to: url.appendingPathExtension("pub"))
        return AuditSigner(key: key)
    }

    /// Reads a public key file (`.pub`, base64 of the raw 32 bytes).
    public static func publicKey(contentsOf url: URL) throws -> Curve25519.Signing.PublicKey {
        let text = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let raw = Data(base64Encoded: text) else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: url.path])
        }
        return try Curve25519.Signing.PublicKey(rawRepresentation: raw)
    }

    public var publicKey: Curve25519.Signing.PublicKey { key.publicKey }

    /// An Ed25519 signature of `bytes` (archive manifests are signed with the checkpoint key too).
    public func sign(_ bytes: [UInt8]) throws -> [UInt8] {
        Array(try key.signature(for: bytes))
    }

    /// A short name for a key: the first 16 hex digits of the SHA-256 of its public key.
    public static func keyID(_ key: Curve25519.Signing.PublicKey) -> String {
        String(Hex.encode(SHA256.hash(data: key.rawRepresentation)).prefix(16))
    }

    /// Signs the current head of every stream and stores the checkpoint; returns its id and how
    /// many streams it covers.
    public func checkpoint(_ database: PostgresClient) async throws -> (id: Int64, streams: Int) {
        try await database.withTransaction(isolation: .repeatableRead) { db in
            let heads = try await db.query("SELECT stream, head_seq, head_hash FROM audit_streams WHERE head_seq > 0 ORDER BY stream")
            let text = try heads.map {
                "\(try $0.decode(String.self, at: 0)) \(try $0.decode(Int64.self, at: 1)) \(Hex.encode(try $0.decode([UInt8].self, at: 2)))"
            }.joined(separator: "\n")
            let signature = Array(try key.signature(for: Array(text.utf8)))
            let id = try await db.query("""
                INSERT INTO audit_checkpoints (heads, key_id, signature) VALUES (\(text), \(Self.keyID(key.publicKey)), \(signature))
                RETURNING id
                """)[0].decode(Int64.self, at: 0)
            return (id, heads.count)
        }
    }
}


/// An audit event as it is stored, for searches.
public struct StoredAuditEvent: Sendable, Equatable {
    public var stream: String
    public var seq: Int64
    public var occurredAt: Date
    /// `occurred_at` in microseconds since 1970, exactly as stored (for keyset cursors).
    public var occurredAtMicros: Int64
    public var event: AuditEvent
}

/// What to look for in the audit trail: every set field must match; newest first.
public struct AuditQuery: Sendable {
    public var actor: String?
    public var action: String?
    public var resource: String?
    /// Inclusive lower bound of `occurred_at`.
    public var from: Date?
    /// Exclusive upper bound of `occurred_at`.
    public var to: Date?
    /// Continue after this event (the last of the previous page): its time in microseconds,
    /// stream and sequence number.
    public var after: (micros: Int64, stream: String, seq: Int64)?
    public var limit: Int

    public init(actor: String? = nil, action: String? = nil, resource: String? = nil, from: Date? = nil, to: Date? = nil,
                after: (micros: Int64, stream: String, seq: Int64)? = nil, limit: Int = 100) {
        self.actor = actor
        self.action = action
        self.resource = resource
        self.from = from
        self.to = to
        self.after = after
        self.limit = limit
    }
}

extension AuditTrail {
    /// Events matching `query`, newest first, at most `query.limit`.
    public static func search(_ query: AuditQuery, on database: PostgresClient) async throws -> [StoredAuditEvent] {
        let after = query.after
        let afterTime = after.map { Date(timeIntervalSince1970: Double($0.micros) / 1_000_000) }
        let rows = try await database.query("""
            SELECT stream, seq, occurred_at, actor, action, resource, outcome, origin, details::text,
                   (extract(epoch FROM occurred_at) * 1000000)::bigint
            FROM audit_events
            WHERE (\(query.actor)::text IS NULL OR actor = \(query.actor))
              AND (\(query.action)::text IS NULL OR action = \(query.action))
              AND (\(query.resource)::text IS NULL OR resource = \(query.resource))
              AND (\(query.from)::timestamptz IS NULL OR occurred_at >= \(query.from))
              AND (\(query.to)::timestamptz IS NULL OR occurred_at < \(query.to))
              AND (\(afterTime)::timestamptz IS NULL OR (occurred_at, stream, seq) < (\(afterTime), \(after?.stream), \(after?.seq)))
            ORDER BY occurred_at DESC, stream DESC, seq DESC
            LIMIT \(query.limit)
            """)
        return try rows.map { row in
            let details = (try? JSONDecoder().decode([String: String].self, from: Data(try row.decode(String.self, at: 8).utf8))) ?? [:]
            return StoredAuditEvent(
                stream: try row.decode(String.self, at: 0), seq: try row.decode(Int64.self, at: 1),
                occurredAt: try row.decode(Date.self, at: 2), occurredAtMicros: try row.decode(Int64.self, at: 9),
                event: AuditEvent(
                    actor: try row.decode(String.self, at: 3), action: try row.decode(String.self, at: 4),
                    resource: try row.decode(String.self, at: 5),
                    outcome: AuditEvent.Outcome(rawValue: try row.decode(String.self, at: 6)) ?? .failure,
                    origin: try row.decode(String.self, at: 7), details: details))
        }
    }
}

extension AuditTrail {
    /// Seconds since the newest signed checkpoint; nil when there is none yet.
    public static func newestCheckpointAge(on database: PostgresClient) async throws -> Double? {
        try await database.query("SELECT extract(epoch FROM now() - max(created_at))::float8 FROM audit_checkpoints")[0].decode(Double?.self, at: 0)
    }
}
