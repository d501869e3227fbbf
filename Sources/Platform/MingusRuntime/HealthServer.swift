import Foundation
public import Hummingbird
public import Logging
public import MingusHTTP
public import MingusPostgres
import NIOCore
public import Prometheus
public import ServiceLifecycle
import UnixSignals

/// The HTTP server every worker runs for operators: `/healthz` (the process is alive),
/// `/readyz` (broker connected and database answering: 200, else 503 with what is down) and
/// `/metrics` (Prometheus text format). Over HTTPS only when given a certificate.
public struct HealthServer: Service {
    private let application: Application<RouterResponder<BasicRequestContext>>

    /// `port` 0 picks a free port; the chosen one is logged (`mingus.http.port`) and passed to
    /// `onListening`. With `certificate` the server answers HTTPS only (TLS 1.2 or later),
    /// presenting the certificate's current pair to each new connection.
    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, broker: BrokerLink,
        database: PostgresClient, certificate: ServerCertificate? = nil, logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) throws {
        let router = Router()
        addHealthRoutes(to: router, registry: registry) { await readinessProblems(broker: broker, database: database) }
        let scheme = certificate == nil ? "http" : "https"
        application = Application(
            router: router,
            server: try httpServerBuilder(certificate: certificate),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "mingus"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                logger.info("health and metrics server listening",
                            metadata: ["mingus.http.host": "\(host)", "mingus.http.port": "\(port)", "mingus.http.scheme": "\(scheme)"])
                onListening(port)
            },
            logger: logger)
    }

    public func run() async throws {
        try await application.run()
    }
}

/// Adds `/healthz` (alive), `/readyz` (200, or 503 listing what `problems` reports) and
/// `/metrics` (Prometheus text) to a router.
public func addHealthRoutes<Context: RequestContext>(
    to router: Router<Context>, registry: PrometheusCollectorRegistry, problems: @escaping @Sendable () async -> [String]
) {
    router.get("healthz") { _, _ in "ok\n" }
    router.get("readyz") { _, _ -> Response in
        let found = await problems()
        let text = found.isEmpty ? "ready\n" : found.joined(separator: "\n") + "\n"
        return Response(status: found.isEmpty ? .ok : .serviceUnavailable,
                        headers: [.contentType: "text/plain; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
    router.get("metrics") { _, _ -> Response in
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// What keeps a process from being ready: the broker not connected, the database not answering.
public func readinessProblems(broker: BrokerLink, database: PostgresClient) async -> [String] {
    var problems: [String] = []
    if await !broker.isConnected { problems.append("broker: not connected") }
    do {
        _ = try await database.query("SELECT 1")
    } catch {
        problems.append("database: \(error)")
    }
    return problems
}

/// Runs a process's services until SIGTERM or SIGINT (draining within `drainTimeout`), then
/// closes the broker connection and the database pool, whether the group ended well or not.
/// A process still stopping 15 s after the drain timeout exits (``ShutdownDeadline``); SIGHUP
/// never stops it (``HangupWatcher``).
public func runUntilStopped(
    _ services: [any Service], drainTimeout: Duration, broker: BrokerLink, database: PostgresClient, logger: Logger
) async throws {
    // Last in the list, so the first to hear of the shutdown (services stop in reverse order).
    let deadline = ShutdownDeadline(deadline: drainTimeout + .seconds(15), logger: logger)
    var configuration = ServiceGroupConfiguration(services: [HangupWatcher(logger: logger)] + services + [deadline],
                                                  gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = drainTimeout
    do {
        try await ServiceGroup(configuration: configuration).run()
    } catch {
        await broker.close()
        await database.shutdown()
        throw error
    }
    await broker.close()
    await database.shutdown()
}

/// Keeps SIGHUP from ending the process: its default action is to terminate, and operators send
/// it to ask for a reload. The services that reload something (the TLS certificate, the alerts
/// worker's routing file) watch SIGHUP themselves; every watcher hears every signal. This one only
/// says that it arrived, so a process with nothing to reload logs it and goes on.
struct HangupWatcher: Service {
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.info("SIGHUP received: reloading what this process reloads (TLS certificate, alert routing file)")
        }
    }
}
