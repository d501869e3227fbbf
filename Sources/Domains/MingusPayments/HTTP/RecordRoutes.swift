import Foundation
public import Hummingbird
public import MingusHTTP
import MingusPostgres
public import MingusRuntime
import MingusSecurity

/// `POST /api/financial/records/store` and `GET /api/financial/records/user/{user_id}`.
///
/// A record's content is sealed with the `transit` key and published as a
/// `payments.record.store` job; the payments worker stores it sealed under the `records` key with
/// the retention date and compliance standard of its type's policy. Reading opens it here.
public struct RecordRoutes: Sendable {
    let database: PostgresClient
    let keys: KeyringCache
    let publisher: JobPublisher

    static let bodyLimit = 64 * 1024
    static let fields: Set<String> = ["user_id", "record_type", "classification", "content"]

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        keys = gateway.keys
        publisher = gateway.publisher
    }

    /// The routes, to mount at `/api/financial/records`.
    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        routes.group(requiring: .recordsWrite).post("store") { request, context in
            try await store(request, caller: try context.caller())
        }
        routes.group(requiring: .recordsRead).get("user/:user_id") { request, context in
            // The router gives the path segment as sent: `user%3Aalice` is `user:alice`.
            APIResponse(try await list(user: context.parameters.get("user_id")?.removingPercentEncoding ?? "", query: request.uri.queryParameters))
        }
        return routes
    }

    struct Accepted: Encodable, Sendable {
        var recordId: String
        var status = "accepted"
    }

    /// A record as `GET` answers it, its content opened.
    struct Record: Encodable, Sendable {
        var recordId: String
        var userId: String
        var recordType: String
        var classification: String
        var complianceStandard: String
        var retentionUntil: Date
        var content: JSONValue
        var keyVersion: Int
        var createdAt: Date
    }

    struct Page: Encodable, Sendable {
        var records: [Record]
        @Nullable var nextCursor: String?
    }

    static func validUserID(_ text: String) -> Bool {
        isIdentifier(text, length: 1...128, extra: "._:@-")
    }

    private func store(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<Accepted> {
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: Self.fields)
        let userID = try body.string("user_id")
        let typeName = try body.string("record_type")
        let classificationName = try body.string("classification")
        let content = try body.object("content")
        guard Self.validUserID(userID) else {
            throw APIError.invalidField("user_id", rule: "format", "user_id must be 1-128 of A-Z, a-z, 0-9, '.', '_', ':', '@' and '-'")
        }
        guard let recordType = RecordType(rawValue: typeName) else {
            throw APIError.invalidField("record_type", rule: "enum",
                                        "record_type must be one of \(RecordType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let classification = DataClassification(rawValue: classificationName) else {
            throw APIError.invalidField("classification", rule: "enum",
                                        "classification must be one of \(DataClassification.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let recordID = UUID().uuidString.lowercased()
        let plaintext = try JSONEncoder.mingus.encode(JSONValue.object(content))
        let sealed = try await keys.current().seal(Array(plaintext), purpose: .transit, context: RecordJob.transitContext(recordID))
        let job = RecordJob(recordId: recordID, userId: userID, recordType: recordType, classification: classification,
                            content: sealed.encoded, requestedBy: caller.actor, requestedAt: Date())
        try await publisher.publish(type: RecordJob.type, id: recordID, body: job, traceID: nil)
        return APIResponse(.accepted, Accepted(recordId: recordID))
    }

    private func list(user: String, query: Parameters) async throws -> Page {
        guard Self.validUserID(user) else {
            throw APIError.invalidParameter("user_id", rule: "format", "user_id has a character or length not allowed")
        }
        let limit = try PageCursor.limit(query, default: 100, max: 500)
        var after: (micros: Int64, id: String)?
        if let cursor = query.get("cursor") {
            let fields = try PageCursor.decode(cursor, fields: 2)
            guard let micros = Int64(fields[0]), UUID(uuidString: fields[1]) != nil else {
                throw APIError.invalidParameter("cursor", rule: "format", "cursor is not one this API gave")
            }
            after = (micros, fields[1])
        }
        let found = try await RecordStore.list(user: user, after: after, limit: limit + 1, on: database)
        var records: [Record] = []
        for stored in found.prefix(limit) {
            let plaintext = try await keys.current(having: stored.content.version, of: .records)
                .open(stored.content, purpose: .records, context: RecordJob.storageContext(stored.recordID))
            records.append(Record(
                recordId: stored.recordID, userId: user, recordType: stored.recordType, classification: stored.classification,
                complianceStandard: stored.complianceStandard, retentionUntil: stored.retentionUntil,
                content: try JSONDecoder().decode(JSONValue.self, from: Data(plaintext)), keyVersion: stored.content.version,
                createdAt: stored.createdAt))
        }
        let next = found.count > limit ? found.prefix(limit).last.map { PageCursor.encode(["\($0.createdAtMicros)", $0.recordID]) } : nil
        return Page(records: records, nextCursor: next)
    }
}
