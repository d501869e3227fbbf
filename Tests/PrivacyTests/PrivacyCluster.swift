import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MingusPayments
import MingusPostgres
import MingusPrivacy
import MingusSecurity
import Testing
import TestSupport

/// A gateway, a privacy worker (and a payments worker when asked) on a database and a broker
/// virtual host of their own, with an API key holding every role the tests use.
struct PrivacyCluster {
    let cluster: Cluster
    let key: String

    static func with(payments: Bool = false, environment: [String: String] = [:], _ body: (PrivacyCluster) async throws -> Void) async throws {
        let cluster = try await Cluster.start(environment: environment, privateBroker: true, keyPurposes: [.privacyExport, .privacyLink, .healthPseudonym])
        let privacy: PrivacyCluster
        do {
            var workers = [try cluster.startWorker("mingus-privacy-worker")]
            if payments { workers.append(try cluster.startWorker("mingus-payments-worker")) }
            // Consuming, the workers handle SIGTERM: a test that ends at once still stops them cleanly.
            for worker in workers {
                guard try await eventually(timeout: .seconds(60), { worker.output.contains(#""msg":"consuming""#) }) else {
                    throw WorkerProcessError(message: "\(worker.executable) did not start consuming: \(worker.output.suffix(2000))")
                }
            }
            let key = try await cluster.key([.privacyWrite, .privacyRead, .paymentsWrite, .paymentsRead, .recordsWrite, .recordsRead]).key
            privacy = PrivacyCluster(cluster: cluster, key: key)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
        do {
            try await body(privacy)
        } catch {
            try? await privacy.stop()
            throw error
        }
        try await privacy.stop()
    }

    /// Stops every process; each must exit 0 but those the test killed.
    func stop() async throws {
        try await cluster.stopCleanly()
    }

    @discardableResult
    func request(_ method: String, _ path: String, _ body: Any? = nil) async throws -> (status: Int, body: [String: Any], raw: String) {
        let answer = try await httpRequest(
            cluster.base + path, method: method, headers: ["Authorization": "Bearer \(key)", "Content-Type": "application/json"],
            body: try body.map { try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys) })
        return (answer.status, (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]) ?? [:], answer.body)
    }

    /// Bytes of a GET (the archive download).
    func download(_ path: String) async throws -> (status: Int, bytes: [UInt8]) {
        var request = URLRequest(url: URL(string: cluster.base + path)!)
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, Array(data))
    }

    /// Publishes the first privacy policy version (not a material change).
    func publishPolicy(kind: String = "privacy", material: Bool = false) async throws -> Int {
        let draft = try await request("POST", "/api/gdpr/policies", ["kind": kind, "title": "Policy", "body": "How we use your data.", "material": material])
        try #require(draft.status == 201, "\(draft.raw)")
        let version = try #require(draft.body["version"] as? Int)
        let published = try await request("POST", "/api/gdpr/policies/\(kind)/\(version)/publish")
        try #require(published.status == 200, "\(published.raw)")
        return version
    }

    /// Files a request and verifies the identity; returns its id.
    func fileAndVerify(_ subject: String, type: String, details: String? = nil) async throws -> String {
        var fields: [String: Any] = ["subject_id": subject, "type": type]
        if let details { fields["details"] = details }
        let filed = try await request("POST", "/api/gdpr/requests", fields)
        try #require(filed.status == 201, "\(filed.raw)")
        let id = try #require(filed.body["id"] as? String)
        let verified = try await request("POST", "/api/gdpr/requests/\(id)/verify", ["method": "account_login"])
        try #require(verified.status == 200, "\(verified.raw)")
        return id
    }

    /// Waits until a request is completed; returns it.
    func completed(_ id: String) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        let done = try await eventually(timeout: .seconds(60)) {
            last = try await request("GET", "/api/gdpr/requests/\(id)").body
            return last["status"] as? String == "completed"
        }
        try #require(done, "not completed: \(last)\n\(cluster.output)")
        return last
    }

    /// Downloads a request's archive once and returns its files.
    func archive(_ id: String) async throws -> [String: [UInt8]] {
        let info = try await request("GET", "/api/gdpr/requests/\(id)/export")
        try #require(info.status == 200, "\(info.raw)")
        let url = try #require(info.body["download_url"] as? String, "\(info.body)")
        let got = try await download(url)
        try #require(got.status == 200)
        // Once only.
        #expect(try await download(url).status == 410)
        // An independent reader (Python's zipfile) opens it and checks every entry's CRC-32.
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.uniqueName("export") + ".zip")
        try Data(got.bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let python = Process()
        python.executableURL = TestEnvironment.pythonBin.appendingPathComponent("python3")
        python.arguments = ["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); sys.exit(0 if z.testzip() is None else 1)", file.path]
        try python.run()
        python.waitUntilExit()
        #expect(python.terminationStatus == 0, "Python's zipfile refused the archive")
        return try StoredZip.entries(got.bytes)
    }
}

/// Reads a ZIP of stored (uncompressed) entries, as the exporter writes, through its central
/// directory; checks each entry's CRC-32 size fields against the data.
enum StoredZip {
    struct Malformed: Error {}

    static func le16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
    static func le32(_ b: [UInt8], _ i: Int) -> Int { le16(b, i) | le16(b, i + 2) << 16 }

    static func entries(_ bytes: [UInt8]) throws -> [String: [UInt8]] {
        guard bytes.count >= 22, let end = stride(from: bytes.count - 22, through: 0, by: -1).first(where: { le32(bytes, $0) == 0x0605_4B50 }) else {
            throw Malformed()
        }
        let count = le16(bytes, end + 10)
        var at = le32(bytes, end + 16)
        var files: [String: [UInt8]] = [:]
        for _ in 0..<count {
            guard le32(bytes, at) == 0x0201_4B50 else { throw Malformed() }
            let size = le32(bytes, at + 24), nameLength = le16(bytes, at + 28), extra = le16(bytes, at + 30), comment = le16(bytes, at + 32)
            let offset = le32(bytes, at + 42)
            let name = String(decoding: bytes[(at + 46)..<(at + 46 + nameLength)], as: UTF8.self)
            let data = offset + 30 + le16(bytes, offset + 26) + le16(bytes, offset + 28)
            files[name] = Array(bytes[data..<(data + size)])
            at += 46 + nameLength + extra + comment
        }
        return files
    }
}
