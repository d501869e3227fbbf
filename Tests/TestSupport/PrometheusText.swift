/// The sum of every sample of `metric` in a Prometheus text exposition whose labels include all
/// of `labels` (0 when there is none): `mingus_jobs_retried_total` with `["type": "payments.process"]`.
public func prometheusSum(_ exposition: String, metric: String, labels: [String: String] = [:]) -> Double {
    exposition.split(separator: "\n").reduce(0) { total, line in
        guard !line.hasPrefix("#"), line.hasPrefix(metric),
              let valueStart = line.lastIndex(of: " "), let value = Double(line[line.index(after: valueStart)...]) else { return total }
        let name = line.prefix { $0 != "{" && $0 != " " }
        guard name == metric else { return total }
        let labelText = line.firstIndex(of: "{").map { line[$0..<valueStart] } ?? ""
        let matches = labels.allSatisfy { labelText.contains("\($0.key)=\"\($0.value)\"") }
        return matches ? total + value : total
    }
}
