import Foundation
import Hummingbird
import MingusCore
import MingusHTTP
public import MingusRuntime
public import MingusSecurity

extension Role {
    /// Opens incidents by hand, changes their status, assignee and severity, decides on steps,
    /// lifts gateway blocks.
    public static let securityWrite = Role("security:write")
    /// Reads incidents, the security dashboard and the integrations' status.
    public static let securityRead = Role("security:read")
}

extension DomainDescription {
    /// Security monitoring: incidents and their playbooks under `/api/security`, and the status of
    /// every part of the system under `/api/integrations/status`.
    public static let securityMonitoring = DomainDescription(
        name: "security", roles: [.securityWrite, .securityRead], queues: [WorkerQueues(name: "security")],
        dataInventory: DataTable.securityMonitoring
    ) { router, gateway in
        router.addRoutes(IncidentRoutes(gateway).collection(), atPath: "/api/security")
        router.addRoutes(StatusRoutes(gateway).collection(), atPath: "/api/integrations")
    }
}
