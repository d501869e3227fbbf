import Foundation
import HTTPTypes
public import Hummingbird
public import MingusHTTP
public import MingusRuntime
import MingusPostgres
import MingusSecurity
import NIOCore
import Synchronization

/// `/api/financial…`: PCI DSS requirements (list, summary, manual assessment), the compliance
/// status and report (JSON, HTML, PDF), the security controls, the compliance dashboard's JSON,
/// and a request to run the automated checks now.
///
/// Every read is served by ``ComplianceReadModel`` from stored results; only
/// `POST /compliance/checks` makes the checks run (a `compliance.check` job, 202).
public struct ComplianceRoutes: Sendable {
    let database: PostgresClient
    let publisher: JobPublisher
    let model: ComplianceReadModel
    let answers = AnswerCache()

    public init(_ gateway: GatewayServices) {
        database = gateway.database
        publisher = gateway.publisher
        model = ComplianceReadModel(database: gateway.database)
    }

    static let bodyLimit = 64 * 1024

    public func collection() -> RouteCollection<APIRequestContext> {
        let routes = RouteCollection(context: APIRequestContext.self)
        let read = routes.group(requiring: .complianceRead)
        read.get("pci/requirements") { _, _ in try await json("requirements") { try await model.requirements() } }
        read.get("pci/compliance") { _, _ in try await json("pci") { try await model.pciCompliance() } }
        read.get("compliance/status") { _, _ in try await json("status") { try await model.status() } }
        read.get("compliance/report") { request, _ in try await report(request) }
        read.get("security/controls") { _, _ in try await json("controls") { try await model.controls() } }
        read.get("dashboard/compliance-score") { _, _ in try await json("score") { try await model.score() } }
        read.get("dashboard/pci-dss") { _, _ in try await json("pci-dashboard") { try await model.pciDashboard() } }
        read.get("dashboard/security-controls") { _, _ in try await json("controls") { try await model.controls() } }
        let write = routes.group(requiring: .complianceWrite)
        write.put("pci/requirements/:id") { request, context in
            APIResponse(try await assess(request, id: context.parameters.get("id") ?? "", caller: try context.caller(), origin: context.origin))
        }
        write.post("compliance/checks") { request, context in try await runChecks(request, caller: try context.caller()) }
        return routes
    }

    // MARK: - Answers

    /// The encoded answers of the read routes, each kept as long as the read model keeps what it
    /// read: a polled document is computed and encoded once a second, not once a request.
    final class AnswerCache: Sendable {
        struct Answer: Sendable {
            var bytes: [UInt8]
            var contentType: String
            var madeAt: ContinuousClock.Instant
        }

        let answers = Mutex<[String: Answer]>([:])
    }

    func cached(_ key: String, contentType: String, _ make: () async throws -> [UInt8]) async throws -> AnswerCache.Answer {
        let now = ContinuousClock.now
        if let answer = answers.answers.withLock({ $0[key] }), now - answer.madeAt < model.maxAge { return answer }
        let answer = AnswerCache.Answer(bytes: try await make(), contentType: contentType, madeAt: now)
        answers.answers.withLock { $0[key] = answer }
        return answer
    }

    func json(_ key: String, _ document: () async throws -> some Encodable & Sendable) async throws -> Response {
        let answer = try await cached(key, contentType: "application/json") { try APIResponse(try await document()).encodedBody() }
        return Response.json(.ok, bytes: answer.bytes)
    }

    // MARK: - Manual assessment

    func assess(_ request: Request, id: String, caller: APIKeyIdentity, origin: String) async throws -> RequirementDocument {
        guard let requirement = PCIRequirements.requirement(id) else {
            throw APIError.notFound("PCI DSS requirement \(id) is not in the registry")
        }
        let body = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["status", "assessor", "notes", "evidence"])
        let statusText = try body.string("status")
        guard let status = RequirementStatus(rawValue: statusText) else {
            throw APIError.invalidField("status", rule: "enum", "status must be one of compliant, non_compliant, not_assessed, not_applicable")
        }
        guard let assessor = try body.text("assessor", max: 256) else {
            throw APIError(.badRequest, code: "invalid_request", message: "assessor is required", field: "assessor", rule: "required")
        }
        let notes = try body.text("notes", max: 4096, blank: true) ?? ""
        let evidence = try body.text("evidence", max: 4096, blank: true) ?? ""
        if requirement.isPrincipal && PCIRequirements.hasSubs(requirement.id) {
            throw APIError(.conflict, code: "derived_requirement",
                           message: "requirement \(id) takes its status from its sub-requirements; assess those", field: "id", rule: "derived")
        }
        let assessment = ManualAssessment(requirementID: requirement.id, status: status, assessor: assessor, notes: notes, evidence: evidence,
                                          recordedBy: caller.actor, assessedAt: Date())
        try await database.withTransaction { db in
            try await ComplianceStore.saveAssessment(assessment, on: db)
            _ = try await AuditTrail.append(AuditEvent(
                actor: caller.actor, action: "compliance.requirement.assess", resource: "compliance/pci/requirements/\(requirement.id)",
                outcome: .success, origin: origin, details: ["status": status.rawValue, "assessor": assessor]), component: "gateway", on: db)
            try await ComplianceStore.saveSnapshot(ComplianceComputation.score(try await ComplianceStore.evidence(on: db)), on: db)
        }
        model.invalidate()
        answers.answers.withLock { $0.removeAll() }
        let stored = try await model.evidence()
        guard let document = ComplianceComputation.requirements(stored).first(where: { $0.id == requirement.id }) else {
            throw APIError.notFound("PCI DSS requirement \(id) is not in the registry")
        }
        return document
    }

    // MARK: - Running the checks

    struct Accepted: Encodable, Sendable {
        var runId: String
        var status = "accepted"
        var checks: [String]
        var statusUrl = "/api/financial/compliance/status"
    }

    func runChecks(_ request: Request, caller: APIKeyIdentity) async throws -> APIResponse<Accepted> {
        // The body is optional: no body at all means every check.
        var checks: JSONValue?
        if request.headers[.contentType] == nil {
            var request = request
            guard try await request.collectBody(upTo: Self.bodyLimit).readableBytes == 0 else {
                throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "the body must be application/json")
            }
        } else {
            checks = try await JSONRequestBody.read(request, limit: Self.bodyLimit, allowed: ["checks"]).value("checks")
        }
        var names = ComplianceChecks.all.map(\.name)
        switch checks {
        case nil: break
        case .array(let values)?:
            names = []
            for value in values {
                guard case .string(let name) = value else {
                    throw APIError(.badRequest, code: "invalid_request", message: "checks must be an array of check names", field: "checks", rule: "type")
                }
                guard ComplianceChecks.check(name) != nil else {
                    throw APIError.invalidField("checks", rule: "enum", "there is no check named '\(name)'; checks are \(ComplianceChecks.all.map(\.name).joined(separator: ", "))")
                }
                if !names.contains(name) { names.append(name) }
            }
            guard !names.isEmpty else { throw APIError.invalidField("checks", rule: "length", "checks must name at least one check") }
        default:
            throw APIError(.badRequest, code: "invalid_request", message: "checks must be an array of check names", field: "checks", rule: "type")
        }
        let id = UUID()
        let text = id.uuidString.lowercased()
        try await publisher.publish(type: ComplianceCheckJob.type, id: "compliance/\(text)",
                                    body: ComplianceCheckJob(runId: id, checks: names, requestedBy: caller.actor), traceID: nil)
        return APIResponse(.accepted, Accepted(runId: text, checks: names))
    }

    // MARK: - Report

    enum ReportFormat: String { case json, html, pdf }

    static func format(_ request: Request) throws -> ReportFormat {
        if let text = request.uri.queryParameters.get("format") {
            guard let format = ReportFormat(rawValue: text) else {
                throw APIError.invalidParameter("format", rule: "enum", "format must be one of json, html, pdf")
            }
            return format
        }
        let accept = request.headers[.accept] ?? ""
        if accept.contains("application/pdf") { return .pdf }
        if accept.contains("text/html") { return .html }
        return .json
    }

    func report(_ request: Request) async throws -> Response {
        let format = try Self.format(request)
        let model = self.model
        let answer: AnswerCache.Answer = switch format {
        case .json: try await cached("report.json", contentType: "application/json") { try APIResponse(try await model.report()).encodedBody() }
        case .html: try await cached("report.html", contentType: "text/html; charset=utf-8") {
                Array(ComplianceReportRenderer.html(try await model.report()).utf8)
            }
        case .pdf: try await cached("report.pdf", contentType: "application/pdf") { ComplianceReportRenderer.pdf(try await model.report()) }
        }
        var headers: HTTPFields = [.contentType: answer.contentType]
        if format == .pdf {
            let day = String(APITime.format(Date()).prefix(10))
            headers[.contentDisposition] = "attachment; filename=\"compliance-report-\(day).pdf\""
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.bytes)))
    }
}
