public import Foundation
public import Hummingbird
import HTTPTypes
import Logging
import MingusCompliance
import MingusCore
import Mustache
public import MingusHTTP
public import MingusPostgres
public import MingusSecurity
public import MingusSecurityMonitoring
import NIOCore

/// The dashboard's HTML routes under `/dashboard` (session cookie, never API keys) and its JSON
/// endpoints under `/api/financial/dashboard` (API keys with `compliance:read`).
///
/// - `GET /dashboard/`: the page for a signed-in user holding `compliance:read`; without a
///   session, 303 to the sign-in form.
/// - `GET /dashboard/login`, `POST /dashboard/login` (form: `username`, `password`, `code`):
///   303 to the page with the session cookie, or 401 with the form again.
/// - `POST /dashboard/logout` (form: `csrf_token`): ends the session, 303 to the form.
///
/// Every POST must come from this origin: `Sec-Fetch-Site`, when sent, must be `same-origin`,
/// and `Origin`, when sent, must be this host's; the logout form also carries the session's
/// CSRF token. The cookie is HttpOnly, SameSite=Strict, Path=/dashboard, Secure under TLS.
public struct DashboardRoutes: Sendable {
    /// The session cookie's name.
    public static let cookieName = "mingus_dashboard"

    let database: PostgresClient
    let authenticator: DashboardAuthenticator
    let panels: [DashboardPanel]
    let cache: DashboardCache
    let queueInfo: IntegrationsStatus.QueueInspector

    /// `queueInfo` tells the status panel the broker's queue depths and consumers (the gateway's publisher).
    public init(database: PostgresClient, authenticator: DashboardAuthenticator, panels: [DashboardPanel] = DashboardPanel.standard,
                queueInfo: @escaping IntegrationsStatus.QueueInspector = { _ in nil }) {
        self.database = database
        self.authenticator = authenticator
        self.panels = panels
        self.queueInfo = queueInfo
        cache = DashboardCache(lifetime: authenticator.policy.figuresLifetime)
    }

    /// Adds the HTML routes at `/dashboard` and the JSON routes at `/api/financial/dashboard`.
    public func mount(on router: Router<APIRequestContext>) {
        router.get("/dashboard") { request, context in try await page(request, context) }
        router.get("/dashboard/login") { request, context in try await loginForm(request, context) }
        router.post("/dashboard/login") { request, context in try await login(request, context) }
        router.post("/dashboard/logout") { request, context in try await logout(request, context) }

        let api = router.group("/api/financial/dashboard", requiring: .complianceRead)
        api.get("/payment-processing") { request, _ in
            let text = request.uri.queryParameters.get("hours")
            let hours = text.map { Int($0) ?? 0 } ?? 24
            guard (1...720).contains(hours) else {
                throw APIError.invalidParameter("hours", rule: "range", "hours must be a whole number 1-720")
            }
            return APIResponse(try await cache.value("api:payment-processing:\(hours)") {
                try await DashboardData.paymentProcessing(input(), hours: hours)
            })
        }
        api.get("/overview") { _, _ in
            APIResponse(try await cache.value("api:overview") { try await DashboardData.overview(input()) })
        }
        api.get("/data-breaches") { _, _ in
            APIResponse(try await cache.value("api:data-breaches") { try await DashboardData.dataBreaches(input()) })
        }
        api.get("/alerts") { _, _ in
            APIResponse(try await cache.value("api:alerts") { try await DashboardData.alerts(input()) })
        }
        api.get("/recent-activities") { request, _ in
            let limit = try PageCursor.limit(request.uri.queryParameters, default: 20, max: 100)
            return APIResponse(try await cache.value("api:recent-activities:\(limit)") { try await DashboardData.recentActivities(input(), limit: limit) })
        }
    }

    private func input() -> DashboardInput {
        DashboardInput(database: database, now: authenticator.policy.clock(), queueInfo: queueInfo)
    }

    // MARK: - Pages

    private func page(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        guard let (session, _) = try await currentSession(request, context) else { return redirect("/dashboard/login") }
        guard session.user.has(.complianceRead) else {
            await authenticator.record(AuditEvent(actor: session.user.actor, action: "dashboard.view", resource: "dashboard",
                                                  outcome: .denied, origin: context.origin, details: ["role": Role.complianceRead.rawValue]))
            return html(.forbidden, DashboardPage.forbidden.render(["css": DashboardPage.stylesheet,
                                                                  "message": "Your account lacks the role compliance:read."]))
        }
        let now = authenticator.policy.clock()
        let input = DashboardInput(database: database, now: now, queueInfo: queueInfo)
        let visible = panels.filter { session.user.has($0.role) }
        let logger = authenticator.logger
        let cache = self.cache
        // The panels' queries run concurrently; one that fails shows as unavailable, the rest still render.
        let bodies = await withTaskGroup(of: (Int, String?).self) { group in
            for (index, panel) in visible.enumerated() {
                group.addTask {
                    do {
                        return (index, try await panel.render(input, cache: cache))
                    } catch {
                        logger.error("a dashboard panel failed", metadata: ["mingus.dashboard.panel": "\(panel.id)", "mingus.error": "\(String(reflecting: error))"])
                        return (index, nil)
                    }
                }
            }
            var bodies = [String?](repeating: nil, count: visible.count)
            for await (index, body) in group { bodies[index] = body }
            return bodies
        }
        let context: [String: Any] = [
            "css": DashboardPage.stylesheet, "username": session.user.username, "csrf": session.csrfToken,
            "expires": String(APITime.format(session.expiresAt).prefix(16)).replacingOccurrences(of: "T", with: " "),
            "generated": String(APITime.format(now).prefix(19)).replacingOccurrences(of: "T", with: " "),
            "panels": zip(visible, bodies).map { panel, body -> [String: Any] in
                ["id": panel.id, "title": panel.title, "body": body ?? "", "error": body == nil]
            },
        ]
        return html(.ok, DashboardPage.page.render(context))
    }

    private func loginForm(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        if try await currentSession(request, context) != nil { return redirect("/dashboard/") }
        return html(.ok, DashboardPage.login.render(["css": DashboardPage.stylesheet]))
    }

    private func login(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        guard Self.isSameOrigin(request) else { return await refuseCrossOrigin(request, context, actor: "anonymous") }
        let form = try await Self.form(request)
        for field in ["username", "password", "code"] where (form[field] ?? "").isEmpty {
            return html(.badRequest, DashboardPage.login.render([
                "css": DashboardPage.stylesheet, "error": "Enter your username, password and code (\(field) is missing).",
                "username": form["username"] ?? "",
            ]))
        }
        let username = form["username"]!
        guard username.count <= 63, form["password"]!.count <= 1024, form["code"]!.count <= 32,
              !["username", "password", "code"].contains(where: { form[$0]!.contains("\u{0}") }) else {
            return html(.unprocessableContent, DashboardPage.login.render([
                "css": DashboardPage.stylesheet, "error": "The username, password or code is too long or has a character it cannot have.",
            ]))
        }
        switch try await authenticator.signIn(username: username, password: form["password"]!, code: form["code"]!, origin: context.origin) {
        case .signedIn(let token, _):
            var response = redirect("/dashboard/")
            response.headers[.setCookie] = cookie(token, maxAge: Int(authenticator.policy.absoluteLifetime.inSeconds))
            return response
        case .refused:
            return html(.unauthorized, DashboardPage.login.render([
                "css": DashboardPage.stylesheet, "error": "Wrong username, password or code, or the account is locked or disabled.",
                "username": username.lowercased(),
            ]))
        }
    }

    private func logout(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let form = try await Self.form(request)
        if let presented = form["csrf_token"], presented.count > 64 || !presented.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            return html(.unprocessableContent, DashboardPage.forbidden.render([
                "css": DashboardPage.stylesheet, "message": "The form's token is not one this site gives.",
            ]))
        }
        guard let (session, token) = try await currentSession(request, context) else {
            var response = redirect("/dashboard/login")
            response.headers[.setCookie] = cookie("", maxAge: 0)
            return response
        }
        guard Self.isSameOrigin(request), let presented = form["csrf_token"], Self.constantTimeEqual(presented, session.csrfToken) else {
            return await refuseCrossOrigin(request, context, actor: session.user.actor)
        }
        try await authenticator.signOut(token: token, user: session.user, origin: context.origin)
        var response = redirect("/dashboard/login")
        response.headers[.setCookie] = cookie("", maxAge: 0)
        return response
    }

    // MARK: - Helpers

    private func currentSession(_ request: Request, _ context: APIRequestContext) async throws -> (DashboardSession, String)? {
        guard let token = Self.cookie(named: Self.cookieName, in: request) else { return nil }
        return try await authenticator.session(token: token, origin: context.origin).map { ($0, token) }
    }

    private func refuseCrossOrigin(_ request: Request, _ context: APIRequestContext, actor: String) async -> Response {
        await authenticator.record(AuditEvent(actor: actor, action: "dashboard.csrf", resource: request.uri.path, outcome: .denied,
                                              origin: context.origin, details: ["origin": request.headers[.origin] ?? ""]))
        return html(.forbidden, DashboardPage.forbidden.render([
            "css": DashboardPage.stylesheet, "message": "This form must be sent from a dashboard page of this site.",
        ]))
    }

    private func cookie(_ value: String, maxAge: Int) -> String {
        "\(Self.cookieName)=\(value); Path=/dashboard; Max-Age=\(maxAge); HttpOnly; SameSite=Strict" + (authenticator.policy.secureCookie ? "; Secure" : "")
    }

    private func redirect(_ location: String) -> Response {
        var headers = Self.securityHeaders
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    private func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: DashboardPage.contentSecurityPolicy, .cacheControl: "no-store",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("X-Frame-Options")!: "DENY",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
    ]

    /// Whether a POST comes from a page of this site: `Sec-Fetch-Site: same-origin` when the
    /// browser sends it, and an `Origin` naming this host when one is sent. Clients that send
    /// neither are not browsers, so they cannot carry a victim's cookie.
    static func isSameOrigin(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin" { return false }
        if let origin = request.headers[.origin] {
            guard let host = request.head.authority else { return false }
            return origin == "http://\(host)" || origin == "https://\(host)"
        }
        return true
    }

    static func cookie(named name: String, in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    /// An `application/x-www-form-urlencoded` body (at most 16 KiB).
    static func form(_ request: Request) async throws -> [String: String] {
        let buffer = try await request.body.collect(upTo: 16 * 1024)
        var fields: [String: String] = [:]
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8), b = Array(rhs.utf8)
        return a.count == b.count && zip(a, b).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
    }
}
