public import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A plain HTTP request over loopback for tests: status, headers and body text.
public func httpRequest(
    _ url: String, method: String = "GET", headers: [String: String] = [:], body: Data? = nil
) async throws -> (status: Int, headers: [AnyHashable: Any], body: String) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    request.httpBody = body
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession.shared.data(for: request)
    let http = response as? HTTPURLResponse
    return (http?.statusCode ?? 0, http?.allHeaderFields ?? [:], String(decoding: data, as: UTF8.self))
}

/// The port a process logged as `mingus.http.port` on a JSON log line containing `message`.
public func loggedPort(_ process: WorkerProcess, message: String) async throws -> Int? {
    var port: Int?
    _ = try await eventually {
        port = process.output.split(separator: "\n").lazy.compactMap { line -> Int? in
            guard line.contains(message),
                  let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let text = object["mingus.http.port"] as? String else { return nil }
            return Int(text)
        }.first
        return port != nil
    }
    return port
}

/// The port a test peer printed as its `listening <port>` line, waiting up to 30 s for it.
public func listeningPort(_ process: WorkerProcess) async throws -> Int? {
    var port: Int?
    _ = try await eventually {
        port = process.output.split(separator: "\n").first { $0.hasPrefix("listening ") }.flatMap { Int($0.dropFirst(10)) }
        return port != nil
    }
    return port
}
