// mingus-security-worker: detections into incidents and their playbooks, escalations, and
// DigitalOcean droplet monitoring, from the `mingus.security` queue; and the automated compliance
// checks, from the `mingus.compliance` queue. Configuration: MINGUS_* variables (see the README).
import MingusCompliance
import MingusCore
import MingusRuntime
import MingusSecurityMonitoring

await MingusProcess.run { try await WorkerRuntime.run(WorkerDefinition.securityMonitoring.runningComplianceChecks()) }
