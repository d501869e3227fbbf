import Foundation
import Hummingbird
import Logging
import MingusCore
import MingusHTTP
public import MingusRuntime
public import MingusSecurity

extension KeyPurpose {
    /// Export archives (ZIP files of a subject's data) at rest until they are downloaded.
    public static let privacyExport = KeyPurpose("privacy-export")
    /// Signs the expiring download links of export archives (HMAC-SHA256).
    public static let privacyLink = KeyPurpose("privacy-link")
}

extension Role {
    /// Records consents, publishes policies, files and works data-subject requests.
    public static let privacyWrite = Role("privacy:write")
    /// Reads consents, policies, requests, exports, records of processing and the dashboard.
    public static let privacyRead = Role("privacy:read")
}

extension DomainDescription {
    /// GDPR: consent and cookie consent, policies, data-subject requests (export, erasure),
    /// records of processing and the privacy dashboard, under `/api/gdpr`; HIPAA: health records,
    /// break-glass access, the accounting of disclosures, de-identification and violations,
    /// under `/api/hipaa`.
    public static let privacy = DomainDescription(
        name: "privacy", roles: [.privacyWrite, .privacyRead, .hipaaWrite, .hipaaRead, .hipaaBilling, .hipaaClinical, .hipaaAudit],
        keyPurposes: [.privacyExport, .privacyLink, .healthPseudonym],
        queues: [WorkerQueues(name: "privacy")],
        subjectData: [ConsentsProvider(), CookieConsentsProvider(), RequestsProvider(), RestrictionsProvider(), AuditProvider(), HealthRecordsProvider()],
        dataInventory: DataTable.privacy
    ) { router, gateway in
        router.addRoutes(ConsentRoutes(gateway).collection(), atPath: "/api/gdpr")
        router.addRoutes(RequestRoutes(gateway).collection(), atPath: "/api/gdpr")
        router.addRoutes(HealthRoutes(gateway, policy: healthFieldPolicy(gateway)).collection(), atPath: "/api/hipaa")
        router.addRoutes(DeidentifyJobRoutes(gateway).collection(), atPath: "/api/hipaa")
    }

    /// The field access profiles of `MINGUS_HIPAA_FIELD_ACCESS`; an invalid setting is logged and
    /// no profile sees any field (closed, not open).
    static func healthFieldPolicy(_ gateway: GatewayServices) -> FieldAccessPolicy {
        do {
            return try FieldAccessPolicy.fromEnvironment()
        } catch {
            gateway.logger.error("health record fields are withheld from every profile", metadata: ["mingus.error": "\(error)"])
            return FieldAccessPolicy(fields: [:])
        }
    }
}
