import Hummingbird
import Foundation
import MingusCore
import MingusHTTP
public import MingusRuntime
public import MingusSecurity

extension KeyPurpose {
    /// Card numbers at rest.
    public static let pan = KeyPurpose("pan")
    /// Financial record contents at rest.
    public static let records = KeyPurpose("records")
    /// Card fields and record contents between the gateway and the payments worker.
    public static let transit = KeyPurpose("transit")
    /// The HMAC key of card fingerprints (finds the token of a card already vaulted).
    public static let fingerprint = KeyPurpose("fingerprint")
}

extension Role {
    /// Submits card payments.
    public static let paymentsWrite = Role("payments:write")
    /// Reads payments.
    public static let paymentsRead = Role("payments:read")
    /// Stores financial records.
    public static let recordsWrite = Role("records:write")
    /// Reads a user's financial records.
    public static let recordsRead = Role("records:read")
}

extension DomainDescription {
    /// Card payments, the token vault, financial records and merchant webhooks.
    public static let payments = DomainDescription(
        name: "payments", roles: [.paymentsWrite, .paymentsRead, .recordsWrite, .recordsRead],
        keyPurposes: [.pan, .records, .transit, .fingerprint], queues: [WorkerQueues(name: "payments")],
        subjectData: [PaymentsProvider(), FinancialRecordsProvider()], dataInventory: DataTable.payments
    ) { router, gateway in
        router.addRoutes(PaymentRoutes(gateway).collection(), atPath: "/api/financial/payment")
        router.addRoutes(RecordRoutes(gateway).collection(), atPath: "/api/financial/records")
    }
}

extension WorkerDefinition {
    /// `mingus-payments-worker`: queue `mingus.payments`, metrics on 9101. Reads the
    /// key-encrypting key (`MINGUS_FINANCIAL_KEY_PATH`) and the webhook signing secret
    /// (`MINGUS_WEBHOOK_SECRET` or the file named by `MINGUS_WEBHOOK_SECRET_FILE`).
    public static let payments = WorkerDefinition(name: "payments", defaultMetricsPort: 9101) { setup in
        let kek = try KeyEncryptingKey(contentsOf: URL(fileURLWithPath: setup.configuration.financialKeyPath))
        var secret = setup.environment["MINGUS_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        if secret == nil, let file = setup.environment["MINGUS_WEBHOOK_SECRET_FILE"], !file.isEmpty {
            secret = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let worker = PaymentsWorker(
            keys: KeyringCache(kek: kek, database: setup.sideDatabase), processor: SandboxProcessor(),
            maxAttempts: setup.configuration.maxAttempts, webhookSigner: try secret.map(WebhookSigner.init(secret:)))
        return WorkerParts(registry: try worker.registry(schema: setup.schema))
    }
}
