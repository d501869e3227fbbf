import Foundation
import MingusPostgres
import MingusSecurity

#if canImport(Glibc)
import Glibc
#endif

/// Who runs `mingusctl`, and the audit event each command that changes something appends (PCI DSS
/// 10.2.1.2 actions by administrative accounts, 10.2.1.5 changes to credentials).
enum OperatorAudit {
    /// `operator:USER@HOST`: the person behind `sudo` when there is one, else the effective user.
    static let actor: String = {
        let environment = ProcessInfo.processInfo.environment
        var user = environment["SUDO_USER"].flatMap { $0.isEmpty ? nil : $0 }
        if user == nil, let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
            user = String(cString: name)
        }
        var host = [CChar](repeating: 0, count: 256)
        let hostName = gethostname(&host, host.count) == 0 ? String(cString: host) : "unknown-host"
        return "operator:\(user ?? environment["USER"] ?? "unknown")@\(hostName)"
    }()

    /// Appends one event (component `mingusctl`) naming the operator and what changed.
    static func record(_ action: String, resource: String, details: [String: String] = [:], on database: PostgresClient) async throws {
        do {
            _ = try await database.withConnection { connection in
                try await AuditTrail.append(AuditEvent(actor: actor, action: action, resource: resource, outcome: .success, details: details),
                                            component: "mingusctl", on: connection)
            }
        } catch {
            throw OperatorAuditError(action: action, underlying: error)
        }
    }
}

/// A change was made but its audit event could not be written.
struct OperatorAuditError: Error, CustomStringConvertible {
    var action: String
    var underlying: any Error
    var description: String { "\(action) was done, but its audit event could not be written: \(underlying)" }
}
