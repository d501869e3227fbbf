import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MingusBreach
import MingusCore
import MingusPostgres
import MingusRuntime
import MingusSecurity
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Breach notification runs end to end against the local SMTP server (aiosmtpd, STARTTLS and
/// AUTH, one compact log line per message): a streamed upload of `recipients` people, then a
/// run from `POST …/notifications` to the run completed, with the gateway's and the breach
/// worker's peak RSS sampled every 100 ms through both.
enum NotifyBenchmarks {
    struct Figures {
        var recipients: Int
        var uploadSeconds: Double
        var runSeconds: Double
        var accepted: Int
        var sessions: Int
        var rateLimit: Int
        var gatewayPeakRSS: Int
        var workerPeakRSS: Int
        var workerIdleRSS: Int
    }

    static func run(recipients: Int, sessions: Int, rateLimit: Int) async throws -> Figures {
        let certificates = FileManager.default.temporaryDirectory.appendingPathComponent("mingus-bench-smtp-\(UUID().uuidString.prefix(8))")
        let smtp = try WorkerProcess("python", arguments: [TestEnvironment.fixturesDirectory.appendingPathComponent("smtp_server.py").path],
                                     environment: ["SMTP_MODE": "starttls", "SMTP_CERT_DIR": certificates.path, "SMTP_LOG": "compact",
                                                   "SMTP_USER": "breach@mingus.test", "SMTP_PASSWORD": "bench-smtp-password"],
                                     bin: TestEnvironment.pythonBin)
        defer { smtp.signal(SIGTERM) }
        guard let port = try await listeningPort(smtp) else { throw WorkerProcessError(message: "the SMTP server did not start: \(smtp.output)") }
        let cluster = try await Cluster.start(environment: [
            "MINGUS_BREACH_SMTP": "127.0.0.1:\(port)", "MINGUS_BREACH_SMTP_CA_FILE": certificates.appendingPathComponent("ca.pem").path,
            "MINGUS_BREACH_SMTP_USERNAME": "breach@mingus.test", "MINGUS_BREACH_SMTP_PASSWORD": "bench-smtp-password",
            "MINGUS_BREACH_MAIL_FROM": "privacy@mingus.test", "MINGUS_BREACH_SMTP_SESSIONS": "\(sessions)",
            "MINGUS_BREACH_NOTIFY_RATE": "\(rateLimit)",
        ], privateBroker: true)
        do {
            for purpose in DomainDescription.breach.keyPurposes { try await Keyring.rotate(purpose, kek: cluster.kek, database: cluster.database) }
            let worker = try cluster.startWorker("mingus-breach-worker")
            let key = try await cluster.key([.breachWrite, .breachRead]).key
            let headers = ["Authorization": "Bearer \(key)", "Content-Type": "application/json"]
            var report = BreachBenchmarks.report(0)
            report["persons_affected"] = recipients
            report["records_affected"] = recipients
            report["persons_by_jurisdiction"] = [:] as [String: Int]
            let reported = try await httpRequest(cluster.base + "/api/financial/breach/report", method: "POST", headers: headers,
                                                 body: try JSONSerialization.data(withJSONObject: report))
            let breachID = try (JSONSerialization.jsonObject(with: Data(reported.body.utf8)) as? [String: Any])?["id"] as? String ?? ""
            guard reported.status == 202, let breach = UUID(uuidString: breachID) else {
                throw WorkerProcessError(message: "report answered \(reported.status): \(reported.body)")
            }
            _ = try await eventually(timeout: .seconds(60)) {
                try await !cluster.database.query("SELECT 1 FROM breaches WHERE id = \(breach) AND assessed_at IS NOT NULL").isEmpty
            }
            let idle = RuntimeBenchmarks.rss(worker.pid)
            let sampler = RSSSampler(pids: [cluster.gateway.pid, worker.pid])
            let sampling = Task { await sampler.sample() }

            // The upload is written to a file first and streamed from it by the HTTP client.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("mingus-bench-recipients-\(UUID().uuidString.prefix(8)).ndjson")
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
            let handle = try FileHandle(forWritingTo: file)
            var chunk = ""
            for index in 0..<recipients {
                chunk += #"{"id":"p-\#(index)","name":"Person \#(index)","email":"person\#(index)@example.org","jurisdiction":"\#(index % 3 == 0 ? "DE" : "US-TX")"}"# + "\n"
                if chunk.utf8.count > 1 << 20 { try handle.write(contentsOf: Data(chunk.utf8)); chunk = "" }
            }
            try handle.write(contentsOf: Data(chunk.utf8))
            try handle.close()
            defer { try? FileManager.default.removeItem(at: file) }
            var request = URLRequest(url: URL(string: cluster.base + "/api/financial/breach/\(breachID)/recipients")!)
            request.httpMethod = "POST"
            request.timeoutInterval = 3600
            request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
            request.setValue("application/x-ndjson", forHTTPHeaderField: "Content-Type")
            let uploadStart = Date()
            let (uploadBody, uploadResponse) = try await URLSession.shared.upload(for: request, fromFile: file)
            let uploadSeconds = Date().timeIntervalSince(uploadStart)
            guard (uploadResponse as? HTTPURLResponse)?.statusCode == 200 else {
                throw WorkerProcessError(message: "upload answered \(String(decoding: uploadBody, as: UTF8.self).prefix(500))")
            }

            let runStart = Date()
            let letter: [String: Any] = [
                "what_is_being_done": "We closed the bucket.", "what_you_can_do": "Watch your statements.",
                "likely_consequences": "Card fraud.", "contact": ["phone": "+1 800 555 0100", "email": "privacy@mingus.test"],
            ]
            let started = try await httpRequest(cluster.base + "/api/financial/breach/\(breachID)/notifications", method: "POST",
                                                headers: headers, body: try JSONSerialization.data(withJSONObject: letter))
            guard started.status == 202 else { throw WorkerProcessError(message: "run answered \(started.status): \(started.body)") }
            let done = try await eventually(timeout: .seconds(7200)) {
                try await !cluster.database.query("""
                    SELECT 1 FROM breach_notification_runs WHERE breach_id = \(breach) AND status = 'completed'
                    """).isEmpty
            }
            guard done else { throw WorkerProcessError(message: "the run did not complete: \(cluster.output.suffix(3000))") }
            let runSeconds = Date().timeIntervalSince(runStart)
            sampling.cancel()
            let peaks = await sampler.peaks
            let accepted = smtp.output.split(separator: "\n").count { $0.contains("\"accepted\": true") }
            try await cluster.stopCleanly()
            return Figures(recipients: recipients, uploadSeconds: uploadSeconds, runSeconds: runSeconds, accepted: accepted,
                           sessions: sessions, rateLimit: rateLimit, gatewayPeakRSS: peaks[cluster.gateway.pid] ?? 0,
                           workerPeakRSS: peaks[worker.pid] ?? 0, workerIdleRSS: idle)
        } catch {
            _ = try? await cluster.stop()
            throw error
        }
    }
}

/// The peak RSS of some processes, sampled every 100 ms until cancelled.
actor RSSSampler {
    let pids: [pid_t]
    private(set) var peaks: [pid_t: Int] = [:]

    init(pids: [pid_t]) {
        self.pids = pids
    }

    func sample() async {
        while !Task.isCancelled {
            for pid in pids { peaks[pid] = max(peaks[pid] ?? 0, RuntimeBenchmarks.rss(pid)) }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
