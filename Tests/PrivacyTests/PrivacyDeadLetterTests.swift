import Foundation
import Logging
import MingusAMQP
import MingusCore
import MingusPostgres
import MingusRuntime
import Testing
import TestSupport

@Suite("GDPR jobs that can never succeed are dead-lettered with the reason")
struct PrivacyDeadLetterTests {
    @Test("a body failing its schema, and an export for a subject whose identity is not verified")
    func deadLetters() async throws {
        try await PrivacyCluster.with { privacy in
            let url = try #require(privacy.cluster.environment["MINGUS_AMQP_URL"])
            let broker = try await AMQPConnection.connect(try AMQPConfiguration(url: url), logger: Logger(label: "test"))
            let filed = try await privacy.request("POST", "/api/gdpr/requests", ["subject_id": "user-x", "type": "access"])
            let id = try #require(filed.body["id"] as? String)
            let bad = JobEnvelope(type: "privacy.export", source: "/tests", body: Array(#"{"request_id":"not-a-uuid"}"#.utf8))
            let unverified = JobEnvelope(type: "privacy.export", source: "/tests", body: Array(#"{"request_id":"\#(id)"}"#.utf8))
            try await broker.publish(bad.message(), exchange: MingusTopology.jobsExchange, routingKey: "privacy.export")
            try await broker.publish(unverified.message(), exchange: MingusTopology.jobsExchange, routingKey: "privacy.export")
            try #require(try await eventually { try await broker.queueInfo("mingus.privacy.dead").messageCount == 2 }, "\(privacy.cluster.output)")
            var reasons: [String: (String?, String?)] = [:]
            while let letter = try await broker.get(queue: "mingus.privacy.dead") {
                reasons[letter.properties.messageID ?? ""] = (letter.properties.headers[JobEnvelope.reasonHeader]?.stringValue,
                                                              letter.properties.headers[JobEnvelope.errorHeader]?.stringValue)
                try letter.ack()
            }
            #expect(reasons[bad.id]?.0 == "schema", "\(reasons)")
            #expect(reasons[unverified.id]?.0 == "permanent", "\(reasons)")
            #expect(reasons[unverified.id]?.1?.contains("identity is not verified") == true, "\(reasons)")
            // Nothing left the database for it.
            #expect(try await privacy.cluster.database.query("SELECT count(*) FROM privacy_exports")[0].decode(Int64.self, at: 0) == 0)
            await broker.close()
        }
    }
}
