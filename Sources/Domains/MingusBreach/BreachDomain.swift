import Foundation
import Hummingbird
import MingusCore
import MingusHTTP
public import MingusRuntime
public import MingusSecurity

extension KeyPurpose {
    /// The people a breach affected (names, e-mail addresses) at rest.
    public static let breachRecipients = KeyPurpose("breach-recipients")
    /// Keyed fingerprints (HMAC-SHA256) of the e-mail addresses of the people a breach affected,
    /// so that one address gets one letter per breach.
    public static let breachFingerprint = KeyPurpose("breach-fingerprint")
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
        name: "breach", roles: [.breachWrite, .breachRead], keyPurposes: [.breachRecipients, .breachFingerprint],
        queues: [WorkerQueues(name: "breach")], dataInventory: DataTable.breach
    ) { router, gateway in
        router.addRoutes(BreachRoutes(gateway).collection(), atPath: "/api/financial")
        router.addRoutes(NotificationRoutes(gateway).collection(), atPath: "/api/financial")
    }
}
