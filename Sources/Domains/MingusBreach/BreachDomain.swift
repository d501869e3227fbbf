import Foundation
import Hummingbird
import MingusCore
import MingusHTTP
public import MingusRuntime
public import MingusSecurity

extension KeyPurpose {
    /// The people a breach affected (names, e-mail addresses) at rest.
    public static let breachRecipients = KeyPurpose("breach-recipients")
}

extension Role {
    /// Reports breaches, changes their status and facts, records evidence, notifies.
    public static let breachWrite = Role("breach:write")
    /// Reads breaches, their timelines, obligations and notifications.
    public static let breachRead = Role("breach:read")
}

extension DomainDescription {
    /// Data breaches: lifecycle, the regulatory deadline engine, reminders and notifications.
    public static let breach = DomainDescription(
        name: "breach", roles: [.breachWrite, .breachRead], keyPurposes: [.breachRecipients],
        queues: [WorkerQueues(name: "breach")]
    ) { router, gateway in
        router.addRoutes(BreachRoutes(gateway).collection(), atPath: "/api/financial")
    }
}
