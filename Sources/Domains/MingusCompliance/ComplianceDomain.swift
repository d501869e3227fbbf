import Hummingbird
import MingusHTTP
public import MingusCore
public import MingusRuntime
public import MingusSecurity

extension Role {
    /// Reads compliance status, reports, controls and the data inventory.
    public static let complianceRead = Role("compliance:read")
    /// Records manual assessments of PCI DSS requirements and asks for a run of the checks.
    public static let complianceWrite = Role("compliance:write")
}

/// Where the compliance domain's jobs go.
public enum ComplianceDomain {
    /// `mingus.compliance` (routing `compliance.#`): consumed by the security worker, which runs
    /// the checks (see ``MingusRuntime/WorkerDefinition/runningComplianceChecks()``).
    public static let queues = WorkerQueues(name: "compliance")
}

extension DomainDescription {
    /// Compliance reporting: PCI DSS status from evidence, the compliance score, security controls
    /// and the data inventory, under `/api/financial`.
    public static let compliance = DomainDescription(
        name: "compliance", roles: [.complianceRead, .complianceWrite], queues: [ComplianceDomain.queues],
        dataInventory: DataTable.compliance
    ) { router, gateway in
        router.addRoutes(ComplianceRoutes(gateway).collection(), atPath: "/api/financial")
    }
}
