import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MingusDashboard
import MingusPostgres
import TestSupport
import Testing

@Suite("mingusctl dashboard user")
struct OperatorCommandTests {
    /// Runs `mingusctl dashboard user …` against the harness's database and key file.
    private func mingusctl(_ harness: DashboardHarness, _ arguments: String...) async throws -> (status: Int32?, output: String) {
        let process = try WorkerProcess("mingusctl", arguments: ["dashboard", "user"] + arguments,
                                        environment: ["MINGUS_DATABASE_URL": harness.databaseURL, "MINGUS_FINANCIAL_KEY_PATH": harness.keyPath.path])
        let status = try await process.wait(timeout: .seconds(60))
        return (status, process.output)
    }

    private func value(after label: String, in output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(label) }.map { String($0.dropFirst(label.count)) }
    }

    @Test("create prints a password, TOTP secret, URI and recovery codes that sign in; list, unlock, reset-mfa and disable work; each is audited with the operator")
    func lifecycle() async throws {
        try await DashboardHarness.with(clock: TestClock()) { harness in
            let created = try await mingusctl(harness, "create", "ana", "--role", "compliance:read")
            #expect(created.status == 0, "\(created.output)")
            let password = try #require(value(after: "password: ", in: created.output), "\(created.output)")
            let secret = try #require(value(after: "TOTP secret (base32): ", in: created.output).flatMap(Base32.decode))
            #expect(value(after: "TOTP URI: ", in: created.output)?.hasPrefix("otpauth://totp/Mingus:ana?secret=") == true)
            let codes = created.output.split(separator: "\n").filter { $0.hasPrefix("  ") }.map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(codes.count == 10)
            let stored = try await harness.database.query("SELECT password_hash, totp_secret FROM dashboard_users WHERE username = 'ana'")
            #expect(try stored[0].decode(String.self, at: 0).hasPrefix("scrypt$32768$8$3$"))
            #expect(!(try stored[0].decode([UInt8].self, at: 1)).elementsEqual(secret), "the TOTP secret is stored sealed")

            #expect(try await mingusctl(harness, "create", "ana", "--role", "compliance:read").status != 0, "names are unique")
            #expect(try await mingusctl(harness, "create", "bob", "--role", "no:such").status != 0, "roles are checked")

            try await harness.application().test(.live) { client async throws in
                let code = TOTP(secret: secret).code(at: harness.clock.now)
                #expect(try await client.signIn("ana", password, code).status == .seeOther)
                for _ in 0..<10 { _ = try await client.signIn("ana", "wrong password!", code) }
                let listed = try await mingusctl(harness, "list")
                #expect(listed.output.contains("ana  compliance:read  active, locked until"), "\(listed.output)")
                #expect(try await mingusctl(harness, "unlock", "ana").status == 0)
                #expect(try await client.signIn("ana", password, codes[0]).status == .seeOther)

                let reset = try await mingusctl(harness, "reset-mfa", "ana")
                #expect(reset.status == 0, "\(reset.output)")
                let newSecret = try #require(value(after: "TOTP secret (base32): ", in: reset.output).flatMap(Base32.decode))
                #expect(try await client.signIn("ana", password, codes[1]).status == .unauthorized, "old recovery codes stop working")
                harness.clock.advance(30)
                #expect(try await client.signIn("ana", password, TOTP(secret: newSecret).code(at: harness.clock.now)).status == .seeOther)

                #expect(try await mingusctl(harness, "disable", "ana").status == 0)
                harness.clock.advance(30)
                #expect(try await client.signIn("ana", password, TOTP(secret: newSecret).code(at: harness.clock.now)).status == .unauthorized)
            }
            for action in ["dashboard.user.create", "dashboard.user.unlock", "dashboard.user.reset_mfa", "dashboard.user.disable"] {
                let events = try await harness.auditEvents(action)
                #expect(events.count == 1 && events[0].actor.hasPrefix("operator:"), "\(action): \(events)")
            }
        }
    }
}
