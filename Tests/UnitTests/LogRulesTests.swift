import Foundation
import MingusCore
@testable import MingusLogs
import Testing
import TestSupport

@Suite("Log security rules")
struct LogRulesTests {
    static let shipped = try! LogRules.load(path: TestEnvironment.repositoryRoot.appendingPathComponent("Deploy/log-rules.yaml").path)

    static func matching(_ template: String) -> [String] {
        shipped.rules.filter { $0.matches(template: template) }.map(\.name)
    }

    @Test("the shipped rules match OpenSSH's failure templates and privilege changes, and not the ordinary ones", arguments: [
        ("Failed password for <*> from <*> port <*> ssh2", ["auth_failures"]),
        ("Failed password for invalid user <*> from <*> port <*> ssh2", ["auth_failures"]),
        ("Invalid user <*> from <*>", ["auth_failures"]),
        ("pam_unix(sshd:auth): authentication failure; logname= uid=<*> euid=<*> tty=ssh ruser= rhost=<*> user=<*>", ["auth_failures"]),
        ("sudo: <*> : TTY=pts/<*> ; PWD=/home/<*> ; USER=root ; COMMAND=/usr/bin/<*>", ["privilege_change"]),
        ("usermod: change user '<*>' shell", ["privilege_change"]),
        ("Accepted password for <*> from <*> port <*> ssh2", []),
        ("pam_unix(sshd:session): session opened for user <*> by (uid=<*>)", []),
        ("Received disconnect from <*>: <*>: Bye Bye [preauth]", []),
        ("GET /api/users/<*> 200 <*> ms", []),
    ])
    func shippedRules(template: String, expected: [String]) {
        #expect(Self.matching(template) == expected)
    }

    @Test("the source is the address a line names, IPv4 or IPv6, after from or rhost=", arguments: [
        ("Failed password for root from 173.234.31.186 port 38926 ssh2", "173.234.31.186"),
        ("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=112.95.230.3  user=root", "112.95.230.3"),
        ("Invalid user admin from 2001:db8::7", "2001:db8::7"),
        ("login failed for user bob", ""),
    ])
    func sources(line: String, source: String) throws {
        let rule = try #require(Self.shipped.rules.first { $0.name == "auth_failures" })
        #expect(rule.source(of: line) == source)
    }

    @Test("every mistake names its line and setting", arguments: [
        ("rules:\n  - name: a\n    match: '('\n    threshold: 1\n", 3, "rules[0].match: not a regular expression: ("),
        ("rules:\n  - name: a\n    match: x\n    threshold: 2.5\n", 4, "rules[0].threshold: expected a whole number of lines"),
        ("rules:\n  - name: a\n    match: x\n    threshold: 1\n    window: 10s\n", 5, "rules[0].window: expected a window from 1m to 24h"),
        ("rules:\n  - name: a\n    match: x\n    threshold: 1\n    severity: loud\n", 5, "rules[0].severity: expected one of: critical, high, medium, low, info"),
        ("rules:\n  - name: a\n    match: x\n    threshold: 1\n  - name: a\n    match: y\n    threshold: 1\n", 5, "rules[1].name: rule 'a' is defined twice"),
        ("rules:\n  - name: a\n    match: x\n    treshold: 1\n", 4, "rules[0]: unknown setting 'treshold'"),
        ("rules:\n  - name: a\n    threshold: 1\n", 2, "rules[0]: match is required"),
        ("rules:\n  - name: a b\n    match: x\n    threshold: 1\n", 2, "rules[0].name: use letters, digits, _ and - only"),
    ])
    func mistakes(yaml: String, line: Int, message: String) {
        #expect {
            _ = try LogRules(yaml: yaml, file: "rules.yaml")
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("rules.yaml:\(line): ") && text.contains(message)
        }
    }

    @Test("a rule's window counts whole minutes")
    func windowMinutes() throws {
        let rules = try LogRules(yaml: "rules:\n  - {name: a, match: x, threshold: 1, window: 90s}\n  - {name: b, match: x, threshold: 1}\n")
        #expect(rules.rules.map(\.windowMinutes) == [2, 1])
    }
}
