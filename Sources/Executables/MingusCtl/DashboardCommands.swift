import ArgumentParser
import Foundation
import MingusCore
import MingusDashboard
import MingusGateway
import MingusSecurity

extension Mingusctl {
    /// `mingusctl dashboard user …`: the people who sign in to the web dashboard.
    struct Dashboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manage the web dashboard's users (password, TOTP, recovery codes).", subcommands: [User.self])

        struct User: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Create, list, disable, enable, unlock dashboard users, reset their second factor or password.",
                subcommands: [Create.self, List.self, Disable.self, Enable.self, Unlock.self, ResetMFA.self, SetPassword.self])
        }
    }
}

/// Reads a password from standard input (one line), or makes one and says so.
private func passwordFromInput(_ fromStandardInput: Bool) throws -> (password: String, generated: Bool) {
    if fromStandardInput {
        guard let line = readLine(strippingNewline: true), line.count >= PasswordHash.minimumLength else {
            throw ValidationError("the password read from standard input must have at least \(PasswordHash.minimumLength) characters")
        }
        return (line, false)
    }
    var generator = SystemRandomNumberGenerator()
    let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
    return (String((0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }), true)
}

private func printEnrollment(_ enrollment: DashboardEnrollment) {
    print("TOTP secret (base32): \(enrollment.totpSecret)")
    print("TOTP URI: \(enrollment.provisioningURI)")
    print("recovery codes (each works once):")
    for code in enrollment.recoveryCodes { print("  \(code)") }
}

private func keyring(_ connection: ConnectionOptions) async throws -> Keyring {
    let configuration = try connection.configuration()
    let kek = try KeyEncryptingKey(contentsOf: URL(fileURLWithPath: configuration.financialKeyPath))
    return try await connection.withDatabase { db, _ in
        let keyring = try await Keyring.load(kek: kek, database: db)
        guard !keyring.versions(.dashboardTOTP).isEmpty else {
            throw ValidationError("there is no dashboard-totp data key yet: run `mingusctl keys init` first")
        }
        return keyring
    }
}

extension Mingusctl.Dashboard.User {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user; prints the TOTP secret (base32 and otpauth:// URI) and the recovery codes once.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The username (lower case: letters, digits, '.', '_', '-').") var name: String
        @Option(help: "A role, such as compliance:read or admin (repeatable; an unknown one lists them all).") var role: [String]
        @Flag(help: "Read the password from standard input (one line, 12 characters or more) instead of generating one.")
        var passwordStdin = false

        func validate() throws {
            if role.isEmpty { throw ValidationError("give at least one --role") }
            let known = Set(GatewayApplication.roles)
            for name in role where !known.contains(Role(name)) {
                throw ValidationError("unknown role '\(name)' (\(known.sorted().map(\.rawValue).joined(separator: ", ")))")
            }
        }

        func run() async throws {
            let (password, generated) = try passwordFromInput(passwordStdin)
            let keys = try await keyring(connection)
            let roles = Set(role.map(Role.init(rawValue:)))
            let (user, enrollment) = try await connection.withDatabase { db, _ in
                let created = try await DashboardUsers(database: db).create(username: name, roles: roles, password: password, keyring: keys,
                                                                            createdBy: OperatorAudit.actor)
                try await OperatorAudit.record("dashboard.user.create", resource: "dashboard/users/\(name)",
                                               details: ["roles": roles.map(\.rawValue).sorted().joined(separator: ",")], on: db)
                return created
            }
            print("created dashboard user \(user.username) with \(roles.map(\.rawValue).sorted().joined(separator: ", "))")
            if generated { print("password: \(password)") }
            printEnrollment(enrollment)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users, their roles and state (never secrets).")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            try await connection.withDatabase { db, _ in
                let now = Date()
                for user in try await DashboardUsers(database: db).list() {
                    var state = user.disabledAt.map { "disabled \($0.formatted(.iso8601))" } ?? "active"
                    if let locked = user.lockedUntil, locked > now { state += ", locked until \(locked.formatted(.iso8601))" }
                    let last = user.lastSignInAt.map { $0.formatted(.iso8601) } ?? "never"
                    print("\(user.username)  \(user.roles.map(\.rawValue).sorted().joined(separator: ","))  \(state)  failed attempts \(user.failedAttempts)  last sign-in \(last)")
                }
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user and end their sessions.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The username.") var name: String

        func run() async throws {
            let done = try await connection.withDatabase { db, _ in
                let done = try await DashboardUsers(database: db).disable(name)
                if done { try await OperatorAudit.record("dashboard.user.disable", resource: "dashboard/users/\(name)", on: db) }
                return done
            }
            guard done else { throw ValidationError("no enabled dashboard user named '\(name)'") }
            print("disabled \(name); their sessions have ended")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user again.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The username.") var name: String

        func run() async throws {
            let done = try await connection.withDatabase { db, _ in
                let done = try await DashboardUsers(database: db).enable(name)
                if done { try await OperatorAudit.record("dashboard.user.enable", resource: "dashboard/users/\(name)", on: db) }
                return done
            }
            guard done else { throw ValidationError("no disabled dashboard user named '\(name)'") }
            print("enabled \(name)")
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a lockout after too many failed sign-ins (once the person is identified).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The username.") var name: String

        func run() async throws {
            let done = try await connection.withDatabase { db, _ in
                let done = try await DashboardUsers(database: db).unlock(name)
                if done { try await OperatorAudit.record("dashboard.user.unlock", resource: "dashboard/users/\(name)", on: db) }
                return done
            }
            guard done else { throw ValidationError("no dashboard user named '\(name)'") }
            print("unlocked \(name)")
        }
    }

    struct ResetMFA: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-mfa",
            abstract: "Give a user a new TOTP secret and recovery codes (the old ones stop working) and end their sessions.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The username.") var name: String

        func run() async throws {
            let keys = try await keyring(connection)
            let enrollment = try await connection.withDatabase { db, _ in
                let enrollment = try await DashboardUsers(database: db).resetMFA(name, keyring: keys)
                if enrollment != nil { try await OperatorAudit.record("dashboard.user.reset_mfa", resource: "dashboard/users/\(name)", on: db) }
                return enrollment
            }
            guard let enrollment else { throw ValidationError("no dashboard user named '\(name)'") }
            print("reset the second factor of \(name); their sessions have ended")
            printEnrollment(enrollment)
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password", abstract: "Set a new password (read from standard input, or generated and printed once).")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The username.") var name: String
        @Flag(help: "Read the password from standard input (one line, 12 characters or more) instead of generating one.")
        var passwordStdin = false

        func run() async throws {
            let (password, generated) = try passwordFromInput(passwordStdin)
            let done = try await connection.withDatabase { db, _ in
                let done = try await DashboardUsers(database: db).setPassword(name, password: password)
                if done { try await OperatorAudit.record("dashboard.user.set_password", resource: "dashboard/users/\(name)", on: db) }
                return done
            }
            guard done else { throw ValidationError("no dashboard user named '\(name)'") }
            print("set a new password for \(name)")
            if generated { print("password: \(password)") }
        }
    }
}
