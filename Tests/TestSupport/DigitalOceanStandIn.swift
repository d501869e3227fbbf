public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The DigitalOcean stand-in (`Tests/Fixtures/digitalocean_standin.py`), started for one test.
public struct DigitalOceanStandIn: Sendable {
    public let process: WorkerProcess
    /// `http://127.0.0.1:<port>`.
    public let base: String
    /// The one token it accepts.
    public static let token = "do-test-token-" + UUID().uuidString.lowercased()

    public static func start() async throws -> DigitalOceanStandIn {
        let process = try WorkerProcess("python", arguments: [TestEnvironment.fixturesDirectory.appendingPathComponent("digitalocean_standin.py").path],
                                        environment: ["DO_TOKEN": token], bin: TestEnvironment.pythonBin)
        guard let port = try await listeningPort(process) else {
            throw WorkerProcessError(message: "the DigitalOcean stand-in did not start: \(process.output)")
        }
        return DigitalOceanStandIn(process: process, base: "http://127.0.0.1:\(port)")
    }

    /// Sets droplets, scripted values, the page size or a number of 429 answers (see the fixture).
    public func control(_ settings: [String: Any]) async throws {
        let answer = try await httpRequest(base + "/_control", method: "POST", headers: ["Content-Type": "application/json"],
                                           body: try JSONSerialization.data(withJSONObject: settings))
        guard answer.status == 200 else { throw WorkerProcessError(message: "the stand-in refused a control request: \(answer.body)") }
    }

    /// Every departure from the documented contract it saw.
    public func violations() async throws -> [String] {
        let answer = try await httpRequest(base + "/_violations")
        return try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String] ?? ["unreadable: \(answer.body)"]
    }

    public func stop() async throws {
        process.signal(SIGTERM)
        _ = try await process.wait(timeout: .seconds(10))
    }
}
