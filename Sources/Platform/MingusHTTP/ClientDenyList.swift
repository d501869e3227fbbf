import Foundation
public import Hummingbird
public import Logging
public import MingusPostgres
public import ServiceLifecycle
import Synchronization

/// The client addresses the gateway refuses: `gateway_blocked_addresses` read again every
/// `interval` (one second by default), so a block written by any process reaches every gateway
/// process within about that long. Run it as one of the gateway's services.
///
/// A request's client address is its peer's address, or, when the peer is one of
/// `trustedProxies` (`MINGUS_TRUSTED_PROXIES`: addresses of the load balancers in front of the
/// gateway), the last address of `X-Forwarded-For` that is not a trusted proxy.
public final class ClientDenyList: Service, Sendable {
    private let database: PostgresClient
    private let interval: Duration
    private let logger: Logger
    public let trustedProxies: Set<String>
    private let blocked = Mutex<Set<String>>([])

    public init(database: PostgresClient, trustedProxies: Set<String> = [], interval: Duration = .seconds(1), logger: Logger) {
        self.database = database
        self.trustedProxies = trustedProxies
        self.interval = interval
        self.logger = logger
    }

    /// Reads `MINGUS_TRUSTED_PROXIES` (comma-separated addresses; none by default).
    public static func trustedProxies(environment: [String: String]) -> Set<String> {
        Set((environment["MINGUS_TRUSTED_PROXIES"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty })
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await refresh()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }

    /// Reads the current blocks.
    public func refresh() async throws {
        do {
            let rows = try await database.query("""
                SELECT host(address) FROM gateway_blocked_addresses WHERE expires_at IS NULL OR expires_at > now()
                """)
            let addresses = Set(try rows.map { try $0.decode(String.self, at: 0) })
            blocked.withLock { $0 = addresses }
        } catch {
            logger.debug("cannot read the blocked addresses; keeping the last list", metadata: ["mingus.error": "\(error)"])
            throw error
        }
    }

    /// Whether `address` is blocked now.
    public func isBlocked(_ address: String) -> Bool {
        blocked.withLock { $0.contains(address) }
    }

    /// The client address of a request from `peer` carrying `forwardedFor`.
    public func clientAddress(peer: String, forwardedFor: String?) -> String {
        guard trustedProxies.contains(peer), let forwardedFor else { return peer }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return hops.last { !trustedProxies.contains($0) } ?? peer
    }
}

/// Refuses requests from blocked client addresses with 403 and a JSON error body
/// (`address_blocked`), before authentication; the health routes stay open.
public struct ClientDenyMiddleware: RouterMiddleware {
    public typealias Context = APIRequestContext
    let list: ClientDenyList

    public init(list: ClientDenyList) {
        self.list = list
    }

    public func handle(_ request: Request, context: APIRequestContext,
                       next: (Request, APIRequestContext) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/api/") else { return try await next(request, context) }
        let client = list.clientAddress(peer: context.origin, forwardedFor: request.headers[.init("X-Forwarded-For")!])
        guard !list.isBlocked(client) else {
            throw APIError(.forbidden, code: "address_blocked", message: "requests from this address are blocked")
        }
        return try await next(request, context)
    }
}
