import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MingusDashboard
import MingusPostgres
import MingusSecurity
import Testing

@Suite("Dashboard sign-in")
struct SignInTests {
    @Test("without a session the page redirects to the form; a sign-in sets a strict cookie; the page shows; logout needs the CSRF token; all audited")
    func signInAndOut() async throws {
        try await DashboardHarness.with { harness in
            let account = try await harness.createUser()
            try await harness.application().test(.live) { client async throws in
                let anonymous = try await client.get("/dashboard/")
                #expect(anonymous.status == .seeOther)
                #expect(anonymous.headers[.location] == "/dashboard/login")

                let formPage = try await client.get("/dashboard/login")
                #expect(formPage.status == .ok)
                #expect(formPage.headers[.contentType] == "text/html; charset=utf-8")
                let csp = try #require(formPage.headers[.contentSecurityPolicy])
                #expect(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"))
                #expect(String(buffer: formPage.body).contains(#"name="code""#))

                let signedIn = try await client.signIn(account.username, account.password, harness.code(account))
                #expect(signedIn.status == .seeOther)
                #expect(signedIn.headers[.location] == "/dashboard/")
                let cookie = try #require(signedIn.headers[.setCookie])
                #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/dashboard"))
                #expect(!cookie.contains("Secure"), "plain HTTP here; Secure when the gateway serves TLS")
                let token = try #require(sessionToken(signedIn))
                let stored = try await harness.database.query("SELECT count(*) FROM dashboard_sessions WHERE token_hash = \(Array(token.utf8))")
                #expect(try stored[0].decode(Int64.self, at: 0) == 0, "the token itself is never stored")

                let page = try await client.get("/dashboard/", cookie: token)
                #expect(page.status == .ok)
                let html = String(buffer: page.body)
                for panel in ["payments", "breaches", "alerts", "activity"] { #expect(html.contains(#"id="panel-\#(panel)""#)) }
                #expect(html.contains(account.username))
                #expect(!html.contains("<script"))
                let csrf = try #require(csrfToken(html))

                // Logout without the token, or from another origin, is refused and the session lives on.
                var headers = formHeaders
                headers[.cookie] = "\(DashboardRoutes.cookieName)=\(token)"
                let noToken = try await client.execute(uri: "/dashboard/logout", method: .post, headers: headers, body: form([:]))
                #expect(noToken.status == .forbidden)
                var foreign = headers
                foreign[.origin] = "https://evil.example"
                let crossSite = try await client.execute(uri: "/dashboard/logout", method: .post, headers: foreign, body: form(["csrf_token": csrf]))
                #expect(crossSite.status == .forbidden)
                #expect(try await client.get("/dashboard/", cookie: token).status == .ok)

                let loggedOut = try await client.execute(uri: "/dashboard/logout", method: .post, headers: headers, body: form(["csrf_token": csrf]))
                #expect(loggedOut.status == .seeOther)
                #expect(loggedOut.headers[.location] == "/dashboard/login")
                #expect(loggedOut.headers[.setCookie]?.contains("Max-Age=0") == true)
                #expect(try await client.get("/dashboard/", cookie: token).status == .seeOther)
            }
            let logins = try await harness.auditEvents("dashboard.login")
            #expect(logins.count == 1 && logins[0].actor == "dashboard:\(account.username)" && logins[0].outcome == "success")
            #expect(try await harness.auditEvents("dashboard.csrf").map(\.outcome) == ["denied", "denied"])
            #expect(try await harness.auditEvents("dashboard.logout").map(\.actor) == ["dashboard:\(account.username)"])
        }
    }

    @Test("a sign-in POST from another site is refused (Origin, Sec-Fetch-Site); missing fields are 400")
    func crossSiteSignIn() async throws {
        try await DashboardHarness.with { harness in
            let account = try await harness.createUser()
            try await harness.application().test(.live) { client async throws in
                let evil = try await client.signIn(account.username, account.password, harness.code(account), headers: [.origin: "https://evil.example"])
                #expect(evil.status == .forbidden)
                #expect(sessionToken(evil) == nil)
                let fetched = try await client.signIn(account.username, account.password, harness.code(account),
                                                      headers: [HTTPField.Name("Sec-Fetch-Site")!: "cross-site"])
                #expect(fetched.status == .forbidden)
                let missing = try await client.execute(uri: "/dashboard/login", method: .post, headers: formHeaders,
                                                       body: form(["username": account.username, "password": account.password]))
                #expect(missing.status == .badRequest)
                // The test client sends `Host: localhost`; a browser's Origin names the host it asked.
                let same = try await client.signIn(account.username, account.password, harness.code(account),
                                                   headers: [.origin: "http://localhost", HTTPField.Name("Sec-Fetch-Site")!: "same-origin"])
                #expect(same.status == .seeOther)
            }
        }
    }

    @Test("a wrong password or code fails; a TOTP step works once; a recovery code works once")
    func secondFactor() async throws {
        try await DashboardHarness.with { harness in
            let account = try await harness.createUser()
            try await harness.application().test(.live) { client async throws in
                #expect(try await client.signIn(account.username, "wrong password!!", harness.code(account)).status == .unauthorized)
                let wrong = harness.code(account) == "000000" ? "111111" : "000000"
                #expect(try await client.signIn(account.username, account.password, wrong).status == .unauthorized)
                #expect(try await client.signIn("nobody-here", account.password, harness.code(account)).status == .unauthorized)
                let code = harness.code(account)
                #expect(try await client.signIn(account.username, account.password, code).status == .seeOther)
                #expect(try await client.signIn(account.username, account.password, code).status == .unauthorized, "a used step is refused")
                harness.clock.advance(30)
                #expect(try await client.signIn(account.username, account.password, harness.code(account)).status == .seeOther)
                // An older step than the last one used is refused too.
                let previous = TOTP(secret: account.secret).code(at: harness.clock.now.addingTimeInterval(-30))
                #expect(try await client.signIn(account.username, account.password, previous).status == .unauthorized)

                let recovery = account.recoveryCodes[3]
                #expect(try await client.signIn(account.username, account.password, recovery).status == .seeOther)
                #expect(try await client.signIn(account.username, account.password, recovery).status == .unauthorized)
                #expect(try await client.signIn(account.username, account.password, recovery.uppercased().replacingOccurrences(of: "-", with: "")).status == .unauthorized)
                #expect(try await client.signIn(account.username, account.password, account.recoveryCodes[4].uppercased()).status == .seeOther)
            }
            let outcomes = try await harness.auditEvents("dashboard.login").map(\.outcome)
            #expect(outcomes.filter { $0 == "success" }.count == 4)
            #expect(outcomes.filter { $0 == "failure" }.count == 7)
        }
    }

    @Test("ten failures lock the account for 30 minutes, even with the right credentials; then it opens again")
    func lockout() async throws {
        try await DashboardHarness.with { harness in
            let account = try await harness.createUser()
            try await harness.application().test(.live) { client async throws in
                for _ in 0..<9 { #expect(try await client.signIn(account.username, "not the password", harness.code(account)).status == .unauthorized) }
                #expect(try await harness.auditEvents("dashboard.lockout").isEmpty)
                #expect(try await client.signIn(account.username, "not the password", harness.code(account)).status == .unauthorized)
                #expect(try await harness.auditEvents("dashboard.lockout").count == 1)
                let user = try #require(try await DashboardUsers(database: harness.database).find(account.username))
                #expect(user.lockedUntil.map { abs($0.timeIntervalSince(harness.clock.now) - 1800) < 1 } == true)

                #expect(try await client.signIn(account.username, account.password, harness.code(account)).status == .unauthorized)
                harness.clock.advance(29 * 60)
                #expect(try await client.signIn(account.username, account.password, harness.code(account)).status == .unauthorized)
                harness.clock.advance(61)
                #expect(try await client.signIn(account.username, account.password, harness.code(account)).status == .seeOther)
                let after = try #require(try await DashboardUsers(database: harness.database).find(account.username))
                #expect(after.failedAttempts == 0 && after.lockedUntil == nil)
            }
            let denied = try await harness.auditEvents("dashboard.login").filter { $0.outcome == "denied" }
            #expect(denied.count == 2 && denied.allSatisfy { $0.details.contains("locked") })
        }
    }

    @Test("an operator's unlock lifts a lockout; a disabled user cannot sign in and their sessions end")
    func unlockAndDisable() async throws {
        try await DashboardHarness.with { harness in
            let account = try await harness.createUser()
            let users = DashboardUsers(database: harness.database)
            try await harness.application().test(.live) { client async throws in
                for _ in 0..<10 { _ = try await client.signIn(account.username, "not the password", harness.code(account)) }
                #expect(try await client.signIn(account.username, account.password, harness.code(account)).status == .unauthorized)
                #expect(try await users.unlock(account.username))
                harness.clock.advance(30)
                let signedIn = try await client.signIn(account.username, account.password, harness.code(account))
                #expect(signedIn.status == .seeOther)
                let token = try #require(sessionToken(signedIn))
                #expect(try await users.disable(account.username, at: harness.clock.now))
                #expect(try await client.get("/dashboard/", cookie: token).status == .seeOther)
                harness.clock.advance(30)
                #expect(try await client.signIn(account.username, account.password, harness.code(account)).status == .unauthorized)
            }
        }
    }

    @Test("a session ends after 15 idle minutes, and after 12 hours however active")
    func expiry() async throws {
        try await DashboardHarness.with { harness in
            let account = try await harness.createUser()
            try await harness.application().test(.live) { client async throws in
                let idle = try #require(sessionToken(try await client.signIn(account.username, account.password, harness.code(account))))
                harness.clock.advance(14 * 60)
                #expect(try await client.get("/dashboard/login", cookie: idle).headers[.location] == "/dashboard/", "still signed in")
                harness.clock.advance(14 * 60)
                #expect(try await client.get("/dashboard/login", cookie: idle).headers[.location] == "/dashboard/", "the last request counts")
                harness.clock.advance(15 * 60 + 1)
                #expect(try await client.get("/dashboard/", cookie: idle).status == .seeOther)
                #expect(try await client.get("/dashboard/login", cookie: idle).status == .ok)

                harness.clock.advance(30)
                let busy = try #require(sessionToken(try await client.signIn(account.username, account.password, harness.code(account))))
                for _ in 0..<71 {
                    harness.clock.advance(10 * 60)
                    #expect(try await client.get("/dashboard/login", cookie: busy).headers[.location] == "/dashboard/")
                }
                harness.clock.advance(10 * 60 + 1)
                #expect(try await client.get("/dashboard/", cookie: busy).status == .seeOther, "12 hours after sign-in")
            }
            let expired = try await harness.auditEvents("dashboard.session.expired")
            #expect(expired.map(\.details) == [#"{"reason": "idle"}"#, #"{"reason": "absolute"}"#])
        }
    }

    @Test("the page needs compliance:read; the JSON endpoints need an API key with compliance:read")
    func roles() async throws {
        try await DashboardHarness.with { harness in
            let reader = try await harness.createUser()
            let other = try await harness.createUser(roles: [Role("payments:read")])
            let keys = APIKeyStore(database: harness.database)
            let allowed = try await keys.create(name: "dash-reader", roles: [Role("compliance:read")]).key
            let admin = try await keys.create(name: "dash-admin", roles: [.admin]).key
            let denied = try await keys.create(name: "dash-payments", roles: [Role("payments:read")]).key
            try await harness.application().test(.live) { client async throws in
                let token = try #require(sessionToken(try await client.signIn(other.username, other.password, harness.code(other))))
                #expect(try await client.get("/dashboard/", cookie: token).status == .forbidden)
                let readerToken = try #require(sessionToken(try await client.signIn(reader.username, reader.password, harness.code(reader))))
                #expect(try await client.get("/dashboard/", cookie: readerToken).status == .ok)
                for path in ["payment-processing", "data-breaches", "alerts", "recent-activities"] {
                    let uri = "/api/financial/dashboard/\(path)"
                    #expect(try await client.get(uri).status == .unauthorized)
                    #expect(try await client.get(uri, cookie: readerToken).status == .unauthorized, "a dashboard cookie is no API key")
                    #expect(try await client.get(uri, headers: [.authorization: "Bearer \(denied)"]).status == .forbidden)
                    #expect(try await client.get(uri, headers: [.authorization: "Bearer \(allowed)"]).status == .ok)
                    #expect(try await client.get(uri, headers: [.authorization: "Bearer \(admin)"]).status == .ok)
                }
            }
            #expect(try await harness.auditEvents("dashboard.view").map(\.outcome) == ["denied"])
        }
    }
}
