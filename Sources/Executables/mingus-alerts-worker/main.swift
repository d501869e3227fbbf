// mingus-alerts-worker: alert intake, routing, grouping and delivery to nine channels, from the
// `mingus.alerts` queue and one delivery queue per channel. Configuration: MINGUS_* variables and
// the routing file named by MINGUS_ALERTING_CONFIG (see the README).
import MingusAlerts
import MingusCore
import MingusRuntime

await MingusProcess.run { try await WorkerRuntime.run(.alerts) }
