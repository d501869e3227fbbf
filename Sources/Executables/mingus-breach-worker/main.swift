// mingus-breach-worker: breach assessment against the notification rules, deadline reminders
// and notification runs, from the `mingus.breach` queue. Configuration: MINGUS_* variables (see
// the README).
import MingusBreach
import MingusCore
import MingusRuntime

await MingusProcess.run { try await WorkerRuntime.run(.breach) }
