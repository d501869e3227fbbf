public import AsyncHTTPClient
public import Foundation
import Logging
import MingusCore
import MingusHTTP
import NIOCore
import NIOHTTP1
import Synchronization

/// A droplet as `GET /v2/droplets` lists it (the fields the monitoring uses).
public struct Droplet: Sendable, Equatable {
    public var id: Int64
    public var name: String
    /// `new`, `active`, `off` or `archive`.
    public var status: String
    public var region: String?
    public var tags: [String]
}

/// One point of a Prometheus-style matrix result.
public struct MetricPoint: Sendable, Equatable {
    public var at: Date
    public var value: Double
}

/// A series of a matrix result: its labels and points.
public struct MetricSeries: Sendable {
    public var labels: [String: String]
    public var points: [MetricPoint]
}

/// An answer of the DigitalOcean API that is not a success.
public struct DigitalOceanError: Error, CustomStringConvertible {
    public var status: Int
    public var path: String
    public var message: String
    public var description: String { "DigitalOcean \(path): \(status == 0 ? "" : "HTTP \(status): ")\(message)" }
    /// The token is missing, wrong or lacks a scope.
    public var isAuthentication: Bool { status == 401 || status == 403 }
}

/// The DigitalOcean API as the droplet monitoring uses it: droplets (paged through
/// `links.pages.next`) and the Monitoring API's droplet metrics (`host_id`, `start`, `end`).
///
/// Every request carries `Authorization: Bearer <token>`. When an answer's `ratelimit-remaining`
/// falls to `reserve`, requests wait until `ratelimit-reset`; a 429 waits its `Retry-After`
/// (at most `maxWait`) and is tried again, up to three times.
public final class DigitalOceanClient: Sendable {
    public let baseURL: String
    private let token: String
    private let timeout: TimeAmount
    private let reserve: Int
    private let maxWait: Duration
    /// When requests may go again after the rate limit ran low.
    private let pausedUntil = Mutex<Date?>(nil)
    /// The last `ratelimit-remaining` seen.
    private let remaining = Mutex<Int?>(nil)

    public init(baseURL: String, token: String, timeout: Duration = .seconds(15), reserve: Int = 50, maxWait: Duration = .seconds(60)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)
        self.reserve = reserve
        self.maxWait = maxWait
    }

    /// The last `ratelimit-remaining` the API reported.
    public var rateLimitRemaining: Int? { remaining.withLock { $0 } }

    /// Checks the token (`GET /v2/account`): throws a ``DigitalOceanError`` when it is refused.
    public func checkToken() async throws {
        _ = try await get("/v2/account")
    }

    /// Every droplet (with `tag`, only those), following `links.pages.next`.
    public func droplets(tag: String?, perPage: Int = 200) async throws -> [Droplet] {
        var query = "per_page=\(perPage)"
        if let tag, !tag.isEmpty { query += "&tag_name=\(Self.escape(tag))" }
        var next: String? = baseURL + "/v2/droplets?" + query
        var droplets: [Droplet] = []
        var pages = 0
        while let url = next {
            pages += 1
            guard pages <= 10_000 else { throw DigitalOceanError(status: 0, path: "/v2/droplets", message: "more than 10000 pages") }
            let body = try await request(url: url, path: "/v2/droplets")
            guard case .object(let top) = body, case .array(let list)? = top["droplets"] else {
                throw DigitalOceanError(status: 200, path: "/v2/droplets", message: "the answer has no droplets array")
            }
            for item in list {
                guard case .object(let fields) = item, let id = fields["id"]?.int64, let name = fields["name"]?.string,
                      let status = fields["status"]?.string else { continue }
                var region: String?
                if case .object(let r)? = fields["region"] { region = r["slug"]?.string }
                var tags: [String] = []
                if case .array(let t)? = fields["tags"] { tags = t.compactMap(\.string) }
                droplets.append(Droplet(id: id, name: name, status: status, region: region, tags: tags))
            }
            next = nil
            if case .object(let links)? = top["links"], case .object(let pagesObject)? = links["pages"], let url = pagesObject["next"]?.string {
                // The next page must stay on the configured API (the token goes with it).
                guard url.hasPrefix(baseURL + "/") else {
                    throw DigitalOceanError(status: 200, path: "/v2/droplets", message: "links.pages.next leaves \(baseURL)")
                }
                next = url
            }
        }
        return droplets
    }

    /// A droplet metric's series between `start` and `end` (`/v2/monitoring/metrics/droplet/<metric>`).
    public func metric(_ metric: String, hostID: Int64, start: Date, end: Date, extra: [(String, String)] = []) async throws -> [MetricSeries] {
        let path = "/v2/monitoring/metrics/droplet/\(metric)"
        var query = "host_id=\(hostID)&start=\(Int64(start.timeIntervalSince1970))&end=\(Int64(end.timeIntervalSince1970))"
        for (name, value) in extra { query += "&\(name)=\(Self.escape(value))" }
        let body = try await request(url: baseURL + path + "?" + query, path: path)
        guard case .object(let top) = body, case .object(let data)? = top["data"], case .array(let results)? = data["result"] else {
            throw DigitalOceanError(status: 200, path: path, message: "the answer has no data.result")
        }
        return results.compactMap { result in
            guard case .object(let fields) = result else { return nil }
            var labels: [String: String] = [:]
            if case .object(let metricLabels)? = fields["metric"] {
                for (key, value) in metricLabels { if let text = value.string { labels[key] = text } }
            }
            var points: [MetricPoint] = []
            if case .array(let values)? = fields["values"] {
                for value in values {
                    guard case .array(let pair) = value, pair.count == 2, let time = pair[0].double,
                          let number = pair[1].string.flatMap(Double.init) ?? pair[1].double else { continue }
                    points.append(MetricPoint(at: Date(timeIntervalSince1970: time), value: number))
                }
            }
            return MetricSeries(labels: labels, points: points)
        }
    }

    private func get(_ path: String) async throws -> JSONValue {
        try await request(url: baseURL + path, path: path)
    }

    private func request(url: String, path: String) async throws -> JSONValue {
        var attempts = 0
        while true {
            attempts += 1
            if let until = pausedUntil.withLock({ $0 }), until > Date() {
                try await Task.sleep(for: .milliseconds(Int64(min(until.timeIntervalSinceNow, maxWait.inSeconds) * 1000)))
            }
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Accept", value: "application/json")
            request.headers.add(name: "User-Agent", value: "mingus-security/1")
            let response: HTTPClientResponse
            do {
                response = try await HTTPClient.shared.execute(request, timeout: timeout)
            } catch {
                throw DigitalOceanError(status: 0, path: path, message: "no answer: \(error)")
            }
            let body = try await response.body.collect(upTo: 32 << 20)
            let status = Int(response.status.code)
            noteRateLimit(response.headers)
            if status == 429, attempts < 4 {
                let seconds = response.headers.first(name: "retry-after").flatMap(Double.init) ?? 1
                try await Task.sleep(for: .milliseconds(Int64(min(max(seconds, 0.05), maxWait.inSeconds) * 1000)))
                continue
            }
            guard (200..<300).contains(status) else {
                var message = "refused"
                if case .object(let fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView)),
                   let text = fields["message"]?.string {
                    message = String(text.prefix(300))
                }
                throw DigitalOceanError(status: status, path: path, message: message)
            }
            do {
                return try JSONDecoder().decode(JSONValue.self, from: Data(body.readableBytesView))
            } catch {
                throw DigitalOceanError(status: status, path: path, message: "the answer is not JSON")
            }
        }
    }

    /// Pauses requests until `ratelimit-reset` once `ratelimit-remaining` reaches the reserve.
    private func noteRateLimit(_ headers: HTTPHeaders) {
        guard let left = headers.first(name: "ratelimit-remaining").flatMap(Int.init) else { return }
        remaining.withLock { $0 = left }
        guard left <= reserve else { return }
        let reset = headers.first(name: "ratelimit-reset").flatMap(Double.init).map { Date(timeIntervalSince1970: $0) }
            ?? Date().addingTimeInterval(1)
        pausedUntil.withLock { $0 = min(reset, Date().addingTimeInterval(maxWait.inSeconds)) }
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }
}

extension JSONValue {
    var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    var int64: Int64? {
        switch self {
        case .integer(let value): return value
        case .number(let value) where value == value.rounded(): return Int64(value)
        default: return nil
        }
    }

    var double: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .number(let value): return value
        default: return nil
        }
    }
}
