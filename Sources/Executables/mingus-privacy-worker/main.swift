// mingus-privacy-worker: GDPR data-subject request deadlines (reminders), export archives and
// erasures, from the `mingus.privacy` queue. Configuration: MINGUS_* variables (see the README).
import MingusCore
import MingusPrivacy
import MingusRuntime

await MingusProcess.run { try await WorkerRuntime.run(.privacy) }
