import Foundation
import Hummingbird
import MingusPayments
import MingusPostgres
import MingusRuntime

/// `POST /api/financial/records/store` and `GET /api/financial/records/user/{user_id}`.
///
/// A record's content is sealed with the `transit` key and published as a
/// `payments.record.store` job; the payments worker stores it sealed under the `records` key with
/// the retention date and compliance standard of its type's policy. Reading opens it here.
struct RecordRoutes: Sendable {
    let database: PostgresClient
    let keys: KeyringCache
    let publisher: JobPublisher

    static let bodyLimit = 64 * 1024
    static let fields: Set<String> = ["user_id", "record_type", "classification", "content"]

    func addRoutes(to group: RouterGroup<GatewayContext>) {
        group.post("store") { request, context -> Response in
            let identity = try context.require(.recordsWrite)
            return try await store(request, identity: identity)
        }
        group.get("user/:user_id") { request, context -> Response in
            _ = try context.require(.recordsRead)
            // The router gives the path segment as sent: `user%3Aalice` is `user:alice`.
            return try await list(user: context.parameters.get("user_id")?.removingPercentEncoding ?? "", query: request.uri.queryParameters)
        }
    }

    static func validUserID(_ text: String) -> Bool {
        isIdentifier(text, length: 1...128, extra: "._:@-")
    }

    private func store(_ request: Request, identity: APIKeyIdentity) async throws -> Response {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.fields)
        let userID = try body.string("user_id")
        let typeName = try body.string("record_type")
        let classificationName = try body.string("classification")
        let content = try body.object("content")
        guard Self.validUserID(userID) else {
            throw invalidField("user_id", rule: "format", "user_id must be 1-128 of A-Z, a-z, 0-9, '.', '_', ':', '@' and '-'")
        }
        guard let recordType = RecordType(rawValue: typeName) else {
            throw invalidField("record_type", rule: "enum",
                               "record_type must be one of \(RecordType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let classification = DataClassification(rawValue: classificationName) else {
            throw invalidField("classification", rule: "enum",
                               "classification must be one of \(DataClassification.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let recordID = UUID().uuidString.lowercased()
        let plaintext = try JSONSerialization.data(withJSONObject: content.mapValues(\.foundationValue), options: [.sortedKeys])
        let sealed = try await keys.current().seal(Array(plaintext), purpose: .transit, context: RecordJob.transitContext(recordID))
        let job = RecordJob(recordId: recordID, userId: userID, recordType: recordType, classification: classification,
                            content: sealed.encoded, requestedBy: identity.actor, requestedAt: Date())
        try await publisher.publish(type: RecordJob.type, id: recordID, body: job, traceID: nil)
        return try jsonResponse(.accepted, ["record_id": recordID, "status": "accepted"])
    }

    private func list(user: String, query: Parameters) async throws -> Response {
        guard Self.validUserID(user) else {
            throw APIError(.badRequest, code: "invalid_parameter", message: "user_id has a character or length not allowed",
                           field: "user_id", rule: "format")
        }
        var limit = 100
        if let text = query.get("limit") {
            guard let number = Int(text), (1...500).contains(number) else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "limit must be 1-500", field: "limit", rule: "range")
            }
            limit = number
        }
        var after: (micros: Int64, id: String)?
        if let cursor = query.get("cursor") {
            guard let decoded = Data(base64Encoded: cursor).map({ String(decoding: $0, as: UTF8.self) }),
                  case let parts = decoded.split(separator: "|"), parts.count == 2, let micros = Int64(parts[0]),
                  UUID(uuidString: String(parts[1])) != nil else {
                throw APIError(.badRequest, code: "invalid_parameter", message: "cursor is not one this API gave", field: "cursor", rule: "format")
            }
            after = (micros, String(parts[1]))
        }
        let rows = try await database.query("""
            SELECT record_id::text, record_type, classification, compliance_standard, retention_until, content_ciphertext,
                   content_key_version, created_at, (extract(epoch FROM created_at) * 1000000)::bigint
            FROM financial_records
            WHERE user_id = \(user)
              AND (\(after?.micros)::bigint IS NULL
                   OR ((extract(epoch FROM created_at) * 1000000)::bigint, record_id) > (\(after?.micros)::bigint, \(after?.id)::uuid))
            ORDER BY created_at, record_id
            LIMIT \(limit + 1)
            """)
        var records: [[String: Any]] = []
        var last: (Int64, String)?
        for row in rows.prefix(limit) {
            let id = try row.decode(String.self, at: 0)
            let version = try row.decode(Int.self, at: 6)
            let plaintext = try await keys.current(having: version, of: .records).open(SealedValue(version: version, combined: try row.decode([UInt8].self, at: 5)),
                                          purpose: .records, context: RecordJob.storageContext(id))
            records.append([
                "record_id": id, "user_id": user, "record_type": try row.decode(String.self, at: 1),
                "classification": try row.decode(String.self, at: 2), "compliance_standard": try row.decode(String.self, at: 3),
                "retention_until": timestamp(try row.decode(Date.self, at: 4)),
                "content": try JSONSerialization.jsonObject(with: Data(plaintext)),
                "key_version": version, "created_at": timestamp(try row.decode(Date.self, at: 7)),
            ])
            last = (try row.decode(Int64.self, at: 8), id)
        }
        let next: Any = rows.count > limit ? last.map { Data("\($0.0)|\($0.1)".utf8).base64EncodedString() } ?? NSNull() : NSNull()
        return try jsonResponse(.ok, ["records": records, "next_cursor": next])
    }
}
