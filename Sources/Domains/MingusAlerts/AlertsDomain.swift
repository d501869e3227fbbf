import Hummingbird
public import MingusCore
import MingusHTTP
public import MingusRuntime
import MingusSecurity

/// The channels an alert can be delivered on. Each has a delivery queue of its own
/// (``queues``), so a slow or failing provider delays only itself.
public enum AlertChannel: String, CaseIterable, Sendable, Codable {
    case email, sms, slack, discord, teams, webhook, pagerduty, opsgenie, telegram

    /// The routing key of this channel's delivery jobs.
    public var routingKey: String { "alert-delivery.\(rawValue)" }

    /// The channel's delivery queue, `mingus.alerts.<channel>`, dead-lettering into the alerts
    /// worker's dead-letter queue.
    public var queues: WorkerQueues {
        WorkerQueues(name: "alerts.\(rawValue)", routingPattern: routingKey, deadLetterTo: "alerts")
    }
}

extension DomainDescription {
    /// Alert intake, routing, grouping, silences and delivery to nine channels.
    public static let alerts = DomainDescription(
        name: "alerts", roles: [.alertsWrite, .alertsRead],
        queues: [WorkerQueues(name: "alerts")] + AlertChannel.allCases.map(\.queues), subjectData: [AlertsProvider()],
        dataInventory: DataTable.alerts
    ) { router, gateway in
        router.addRoutes(AlertRoutes(gateway).collection(), atPath: "/api/alerts")
    }
}

extension WorkerDefinition {
    /// `mingus-alerts-worker`: queue `mingus.alerts` and one delivery queue per channel
    /// (`MINGUS_ALERTS_CHANNEL_CONCURRENCY` deliveries at once each, default 4), metrics on 9103.
    /// The routing file (`MINGUS_ALERTING_CONFIG`) must be valid to start; SIGHUP reloads it,
    /// keeping the running configuration when the new one is invalid.
    public static let alerts = WorkerDefinition(name: "alerts", defaultMetricsPort: 9103, sideConnections: 8) { setup in
        let path = setup.environment["MINGUS_ALERTING_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? "Deploy/alerting.example.yaml"
        let store = AlertingConfigurationStore(try AlertingConfiguration.load(path: path))
        let text = setup.environment["MINGUS_ALERTS_CHANNEL_CONCURRENCY"] ?? ""
        guard let channelConcurrency = text.isEmpty ? 4 : Int(text), (1...64).contains(channelConcurrency) else {
            throw ConfigurationError(variable: "MINGUS_ALERTS_CHANNEL_CONCURRENCY", message: "must be a whole number 1-64, got '\(text)'")
        }
        let worker = AlertsWorker(configuration: store, sideChannel: setup.sideDatabase, maxAttempts: setup.configuration.maxAttempts)
        return WorkerParts(
            registry: worker.registry(schema: try setup.schema(AlertJob.type)),
            extraQueues: AlertChannel.allCases.map { .init($0.queues, concurrency: channelConcurrency) },
            services: [ConfigurationReloader(store: store, path: path, logger: setup.logger)])
    }
}
