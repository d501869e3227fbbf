// mingus-retention-worker: retention sweeps (archive, verify, delete) and policy re-dating, from
// the `mingus.retention` queue, with the daily sweep on the runtime's scheduler. Configuration:
// MINGUS_* variables (see the README).
import MingusCore
import MingusRetention
import MingusRuntime

await MingusProcess.run { try await WorkerRuntime.run(.retention) }
