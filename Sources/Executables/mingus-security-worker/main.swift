// mingus-security-worker: detections into incidents and their playbooks, escalations, and
// DigitalOcean droplet monitoring, from the `mingus.security` queue. Configuration: MINGUS_*
// variables (see the README).
import MingusCore
import MingusRuntime
import MingusSecurityMonitoring

await MingusProcess.run { try await WorkerRuntime.run(.securityMonitoring) }
