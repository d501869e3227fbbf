// mingus-logs-worker: log lines from the `mingus.logs` queue redacted, mined into templates,
// stored in day partitions and counted; anomalies become alerts. Configuration: MINGUS_*
// variables (see the README).
import MingusCore
import MingusLogs
import MingusRuntime

await MingusProcess.run { try await WorkerRuntime.run(.logs) }
