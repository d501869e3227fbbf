public import Foundation
public import Logging
public import MingusPostgres
public import ServiceLifecycle

/// Records that a process is running: every `interval` it writes its kind, instance, readiness
/// and the time into `mingus_processes`; when it stops (last of its services, after the others
/// drained) it marks itself stopped. The status view (`GET /api/integrations/status`) reads it.
public final class ProcessHeartbeat: Service, Sendable {
    /// The process kind: `gateway` or a worker's name (`security`).
    public let kind: String
    /// `<host>/<pid>/<random>`: one row per run of a process.
    public let instance: String
    private let database: PostgresClient
    private let interval: Duration
    private let problems: @Sendable () async -> [String]
    private let logger: Logger
    private let startedAt = Date()

    public init(kind: String, database: PostgresClient, interval: Duration = .seconds(5), logger: Logger,
                problems: @escaping @Sendable () async -> [String]) {
        self.kind = kind
        let host = ProcessInfo.processInfo.hostName
        self.instance = "\(host)/\(ProcessInfo.processInfo.processIdentifier)/\(UUID().uuidString.prefix(8).lowercased())"
        self.database = database
        self.interval = interval
        self.problems = problems
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await beat()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
        do {
            try await database.execute("UPDATE mingus_processes SET stopped_at = now(), ready = false WHERE instance = \(instance)")
        } catch {
            logger.warning("cannot record that the process stopped", metadata: ["mingus.error": "\(error)"])
        }
    }

    func beat() async {
        let found = await problems()
        let host = ProcessInfo.processInfo.hostName
        let pid = Int(ProcessInfo.processInfo.processIdentifier)
        do {
            try await database.execute("""
                INSERT INTO mingus_processes (instance, kind, host, pid, started_at, last_seen_at, ready, problems)
                VALUES (\(instance), \(kind), \(host), \(pid), \(startedAt), now(), \(found.isEmpty), \(found))
                ON CONFLICT (instance) DO UPDATE SET last_seen_at = now(), ready = EXCLUDED.ready, problems = EXCLUDED.problems
                """)
        } catch {
            logger.debug("cannot record the process's heartbeat", metadata: ["mingus.error": "\(error)"])
        }
    }
}
