import Crypto
import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
public import MingusPostgres
public import ServiceLifecycle

/// `Idempotency-Key` handling as Stripe documents it: per API key, kept 24 hours; the same key
/// with the same request answers the first response again; with another request, 422; while the
/// first is still being handled, 409.
public struct IdempotencyStore: Sendable {
    let database: PostgresClient

    public init(database: PostgresClient) {
        self.database = database
    }

    /// How long a request holds its key before a retry may take it over.
    static let lease = "30 seconds"

    /// What a request may do with its key.
    public enum Claim: Sendable {
        /// Go on with this resource id (new, or kept from an attempt that did not finish).
        case proceed(resourceID: String)
        /// The first request's answer.
        case replay(status: Int, body: [UInt8])
    }

    /// The key from the request headers: nil when absent, 400 when malformed.
    public static func key(from request: Request) throws -> String? {
        guard let name = HTTPField.Name("Idempotency-Key"), let key = request.headers[name] else { return nil }
        guard (1...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x20...0x7e).contains($0) }) else {
            throw APIError(.badRequest, code: "invalid_request", message: "Idempotency-Key must be 1-255 printable ASCII characters",
                           field: "Idempotency-Key", rule: "format")
        }
        return key
    }

    /// Takes `key` for a request whose method, path and body hash to `requestHash`.
    public func claim(apiKeyID: String, key: String, requestHash: [UInt8]) async throws -> Claim {
        try await database.withTransaction { db in
            let fresh = UUID().uuidString.lowercased()
            // A new key, or one whose 24 hours are over, starts afresh.
            let inserted = try await db.query("""
                INSERT INTO gateway_idempotency_keys (api_key_id, idempotency_key, request_hash, resource_id, locked_until)
                VALUES (\(apiKeyID), \(key), \(requestHash), \(fresh)::uuid, now() + \(Self.lease)::interval)
                ON CONFLICT (api_key_id, idempotency_key) DO UPDATE SET
                    request_hash = EXCLUDED.request_hash, resource_id = EXCLUDED.resource_id, response_status = NULL,
                    response_body = NULL, locked_until = EXCLUDED.locked_until, created_at = now(),
                    expires_at = now() + interval '24 hours'
                WHERE gateway_idempotency_keys.expires_at < now()
                RETURNING resource_id::text
                """)
            if let row = inserted.first { return .proceed(resourceID: try row.decode(String.self, at: 0)) }
            let row = try await db.query("""
                SELECT request_hash, resource_id::text, response_status, response_body, locked_until > now()
                FROM gateway_idempotency_keys WHERE api_key_id = \(apiKeyID) AND idempotency_key = \(key) FOR UPDATE
                """)[0]
            guard try row.decode([UInt8].self, at: 0) == requestHash else {
                throw APIError(.unprocessableContent, code: "idempotency_key_reuse",
                               message: "this Idempotency-Key was used with a different request", field: "Idempotency-Key", rule: "reuse")
            }
            if let status = try row.decode(Int?.self, at: 2) {
                return .replay(status: status, body: try row.decode([UInt8]?.self, at: 3) ?? [])
            }
            if try row.decode(Bool?.self, at: 4) == true {
                throw APIError(.conflict, code: "idempotency_key_in_use",
                               message: "a request with this Idempotency-Key is still being handled; retry later",
                               field: "Idempotency-Key", rule: "in_use")
            }
            try await db.execute("""
                UPDATE gateway_idempotency_keys SET locked_until = now() + \(Self.lease)::interval
                WHERE api_key_id = \(apiKeyID) AND idempotency_key = \(key)
                """)
            return .proceed(resourceID: try row.decode(String.self, at: 1))
        }
    }

    /// Stores the answer to replay, on the caller's transaction.
    public static func complete(apiKeyID: String, key: String, status: Int, body: [UInt8], on db: PostgresConnection) async throws {
        try await db.execute("""
            UPDATE gateway_idempotency_keys SET response_status = \(status), response_body = \(body), locked_until = NULL
            WHERE api_key_id = \(apiKeyID) AND idempotency_key = \(key)
            """)
    }

    /// Lets a retry take the key at once (the request failed before anything was accepted).
    public func release(apiKeyID: String, key: String) async {
        _ = try? await database.execute("""
            UPDATE gateway_idempotency_keys SET locked_until = NULL
            WHERE api_key_id = \(apiKeyID) AND idempotency_key = \(key) AND response_status IS NULL
            """)
    }

    /// Deletes keys past their 24 hours, `batch` rows per statement so that no statement holds
    /// many row locks for long; returns how many went. Gateways purging at once skip each
    /// other's rows.
    public static func purgeExpired(on database: PostgresClient, batch: Int = 5000) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await database.execute("""
                DELETE FROM gateway_idempotency_keys WHERE ctid IN (
                    SELECT ctid FROM gateway_idempotency_keys WHERE expires_at < now()
                    LIMIT \(batch) FOR UPDATE SKIP LOCKED)
                """)
            total += deleted
            if deleted < batch { return total }
        }
    }

    /// SHA-256 over method, path and body.
    public static func hash(_ request: Request, body: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: Array("\(request.method.rawValue) \(request.uri.path)\n".utf8) + body))
    }
}

/// Purges expired idempotency keys when the gateway starts and every `interval` after (ten
/// minutes by default); without it the table would keep every key ever sent.
public struct IdempotencyKeyPurger: Service {
    let database: PostgresClient
    let interval: Duration
    let logger: Logger

    public init(database: PostgresClient, interval: Duration = .seconds(600), logger: Logger) {
        self.database = database
        self.interval = interval
        self.logger = logger
    }


    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let purged = try await IdempotencyStore.purgeExpired(on: database)
                if purged > 0 {
                    logger.info("purged expired idempotency keys", metadata: ["mingus.idempotency.purged": "\(purged)"])
                }
            } catch {
                logger.warning("purging expired idempotency keys failed; will retry", metadata: ["mingus.error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
