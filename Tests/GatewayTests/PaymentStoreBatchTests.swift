import Foundation
@testable import MingusPayments
import MingusPostgres
import TestSupport
import Testing

/// The gateway's pending rows and the worker's decisions, written in batches side by side.
@Suite("Payment rows written in batches")
struct PaymentStoreBatchTests {
    @Test("pending batches and decision batches over the same payments, in any order, never deadlock; each payment ends decided")
    func noDeadlocks() async throws {
        try await TestEnvironment.withFreshDatabase { url in
            let database = PostgresClient(configuration: PostgresConfiguration(url: url, poolSize: 8))
            _ = try await Migrator(directory: TestEnvironment.migrationsDirectory, client: database).apply()
            let pan = try PAN("4242424242424242")
            let money = try Money(minorUnits: 100, currency: Currency("EUR"))
            var decidedIDs: [String] = []
            for round in 0..<10 {
                let ids = (0..<60).map { _ in UUID().uuidString.lowercased() }
                // Each lane takes most of the payments, in an order of its own.
                let lanes = (0..<8).map { _ in Array(ids.shuffled().prefix(45)) }
                for lane in stride(from: 1, to: 8, by: 2) { decidedIDs += lanes[lane] }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (lane, mine) in lanes.enumerated() {
                        group.addTask {
                            // One attempt only: a deadlock must surface here, not be retried away.
                            try await database.withTransaction(maxAttempts: 1) { db in
                                if lane % 2 == 0 {
                                    try await PaymentStore.insertPending(mine.map {
                                        PendingPayment(transactionID: $0, merchantID: "m-\(round)", money: money, pan: pan, metadata: nil,
                                                       callbackURL: nil, requestedBy: "apikey:test", requestedAt: Date())
                                    }, on: db)
                                } else {
                                    _ = try await PaymentStore.recordDecisions(mine.map {
                                        (PaymentDecision(status: "declined", pan: pan, declineCode: "do_not_honor", processor: "sandbox"),
                                         PaymentJob(transactionId: $0, merchantId: "m-\(round)", amount: 100, currency: "EUR", card: "",
                                                    requestedBy: "apikey:test", requestedAt: Date(), metadata: nil, callbackUrl: nil))
                                    }, on: db)
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let pendingLeft = try await database.query("""
                SELECT count(*)::int FROM payment_data WHERE status = 'pending' AND transaction_id = ANY(\(decidedIDs)::uuid[])
                """)[0].decode(Int.self, at: 0)
            #expect(pendingLeft == 0, "a decision is never undone by a pending row written after it")
            await database.shutdown()
        }
    }
}
