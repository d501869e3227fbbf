import Hummingbird
import MingusHTTP
public import MingusRuntime
public import MingusSecurity

extension Role {
    /// Reads compliance status, reports, controls and the data inventory.
    public static let complianceRead = Role("compliance:read")
    /// Records manual assessments of PCI DSS requirements.
    public static let complianceWrite = Role("compliance:write")
}

extension DomainDescription {
    /// Compliance reporting: PCI DSS status from evidence, the compliance score, security controls
    /// and the data inventory, under `/api/financial`.
    public static let compliance = DomainDescription(
        name: "compliance", roles: [.complianceRead, .complianceWrite], queues: []
    ) { _, _ in
    }
}
