// mingus-payments-worker: card payments, financial records, merchant webhooks and key rewraps
// from the `mingus.payments` queue. Configuration: MINGUS_* variables (see the README).
import MingusCore
import MingusPayments
import MingusRuntime

await MingusProcess.run { try await WorkerRuntime.run(.payments) }
