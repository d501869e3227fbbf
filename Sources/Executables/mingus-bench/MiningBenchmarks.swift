import Foundation
import MingusCore
import MingusLogMining

/// Log template mining on the labelled Loghub development samples: grouping accuracy and
/// lines per second of `LogTemplateMiner` (in process) next to Drain3 (Python, with the Loghub
/// benchmark's Drain settings for each dataset) on the same files in the same run.
///
/// Reads `<dir>/<Name>/<Name>_2k.log_structured.csv` (columns Content and EventId) from
/// `--loghub-dir`, `MINGUS_LOGHUB_DIR` or `../shared/loghub-dev`; Drain3 runs from the
/// virtual environment `Deploy/local/python-tools.sh` makes (`$MINGUS_SERVICES_DIR/python`).
enum MiningBenchmarks {
    static let datasets = ["Apache", "HDFS", "OpenSSH"]

    struct Row {
        var dataset: String
        var lines: Int
        var minerAccuracy: Double
        var drainAccuracy: Double
        var minerRate: Double
        var drainRate: Double
        var minerRepeatedRate: Double
        var drainRepeatedRate: Double
        var templates: Int
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(loghubDirectory: String?, repeatedLines: Int) throws -> [Row] {
        let environment = ProcessInfo.processInfo.environment
        let directory = loghubDirectory ?? environment["MINGUS_LOGHUB_DIR"] ?? "../shared/loghub-dev"
        let python = (environment["MINGUS_SERVICES_DIR"] ?? ".services") + "/python/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw Failure(description: "no Python environment at \(python): run Deploy/local/python-tools.sh first")
        }
        var rows: [Row] = []
        for dataset in datasets {
            let path = "\(directory)/\(dataset)/\(dataset)_2k.log_structured.csv"
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Failure(description: "cannot read \(path): set --loghub-dir or MINGUS_LOGHUB_DIR")
            }
            let sample = try LabelledSample(csv: data, path: path)
            let repeats = max(1, repeatedLines / sample.contents.count)

            // Our miner: one pass over the 2k lines for GA and rate, then the lines repeated.
            // Best of three runs each, ours and Drain3 alike: the machine is shared.
            let single = (0..<3).map { _ in mine(sample.contents, repeats: 1) }.min { $0.seconds < $1.seconds }!
            let repeated = (0..<3).map { _ in mine(sample.contents, repeats: repeats) }.min { $0.seconds < $1.seconds }!
            let minerAccuracy = GroupingAccuracy(predicted: single.finalIDs, truth: sample.events).value

            let drainSingle = try (0..<3).map { _ in try drain3(python: python, dataset: dataset, path: path, repeats: 1) }
                .min { $0.seconds < $1.seconds }!
            let drainRepeated = try (0..<3).map { _ in try drain3(python: python, dataset: dataset, path: path, repeats: repeats) }
                .min { $0.seconds < $1.seconds }!
            guard drainSingle.ids.count == sample.events.count else {
                throw Failure(description: "Drain3 printed \(drainSingle.ids.count) assignments for \(sample.events.count) lines of \(path)")
            }
            rows.append(Row(
                dataset: dataset, lines: sample.contents.count,
                minerAccuracy: minerAccuracy,
                drainAccuracy: GroupingAccuracy(predicted: drainSingle.ids, truth: sample.events).value,
                minerRate: Double(sample.contents.count) / single.seconds,
                drainRate: Double(drainSingle.lines) / drainSingle.seconds,
                minerRepeatedRate: Double(sample.contents.count * repeats) / repeated.seconds,
                drainRepeatedRate: Double(drainRepeated.lines) / drainRepeated.seconds,
                templates: single.templates))
        }
        return rows
    }

    /// Mines `contents` `repeats` times over with one miner; the final template of every line
    /// of the first pass, and the mining time.
    static func mine(_ contents: [String], repeats: Int) -> (finalIDs: [LogTemplateID], seconds: Double, templates: Int) {
        var miner = LogTemplateMiner()
        var ids: [LogTemplateID] = []
        ids.reserveCapacity(contents.count)
        var absorbedBy: [LogTemplateID: LogTemplateID] = [:]
        let start = ContinuousClock.now
        for round in 0..<repeats {
            for content in contents {
                let match = miner.add(content)
                if round == 0 { ids.append(match.templateID) }
                for absorbed in match.absorbedTemplateIDs { absorbedBy[absorbed] = match.templateID }
            }
        }
        let seconds = (ContinuousClock.now - start).inSeconds
        let finalIDs = ids.map { id in
            var id = id
            while let next = absorbedBy[id] { id = next }
            return id
        }
        return (finalIDs, seconds, miner.templateCount)
    }

    static func drain3(python: String, dataset: String, path: String, repeats: Int) throws -> (ids: [String], seconds: Double, lines: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["Deploy/local/drain3_mine.py", dataset, path, "--repeat", String(repeats)]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "drain3_mine.py \(dataset) exited with \(process.terminationStatus)")
        }
        var ids: [String] = []
        var seconds = 0.0, lines = 0
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("# ") {
                for field in line.dropFirst(2).split(separator: " ") {
                    let pair = field.split(separator: "=")
                    if pair.first == "seconds" { seconds = Double(pair[1]) ?? 0 }
                    if pair.first == "lines" { lines = Int(pair[1]) ?? 0 }
                }
            } else {
                ids.append(String(line))
            }
        }
        guard seconds > 0, lines > 0 else { throw Failure(description: "drain3_mine.py \(dataset) printed no timing") }
        return (ids, seconds, lines)
    }

    static func printTable(_ rows: [Row], repeatedLines: Int) {
        func cell(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
        func rate(_ value: Double) -> String { String(format: "%.0f", value) }
        print("")
        print("log template mining (Loghub 2k dev samples; LogTemplateMiner in process, release, one configuration; Drain3 0.9.11 with the Loghub Drain settings per dataset; rates best of 3)")
        print("  \("dataset".padding(toLength: 8, withPad: " ", startingAt: 0))  \(cell("GA ours", 8))  \(cell("GA Drain3", 9))  \(cell("lines/s ours", 12))  \(cell("lines/s Drain3", 14))  \(cell("ratio", 6))  \(cell("×\(repeatedLines / 1000)k ours", 12))  \(cell("×\(repeatedLines / 1000)k Drain3", 13))  \(cell("ratio", 6))")
        for row in rows {
            print("  \(row.dataset.padding(toLength: 8, withPad: " ", startingAt: 0))  \(cell(String(format: "%.4f", row.minerAccuracy), 8))  \(cell(String(format: "%.4f", row.drainAccuracy), 9))  \(cell(rate(row.minerRate), 12))  \(cell(rate(row.drainRate), 14))  \(cell(String(format: "%.0f×", row.minerRate / row.drainRate), 6))  \(cell(rate(row.minerRepeatedRate), 12))  \(cell(rate(row.drainRepeatedRate), 13))  \(cell(String(format: "%.0f×", row.minerRepeatedRate / row.drainRepeatedRate), 6))")
        }
        let count = Double(rows.count)
        func mean(_ value: (Row) -> Double) -> Double { rows.map(value).reduce(0, +) / count }
        let minerRate = mean(\.minerRate), drainRate = mean(\.drainRate)
        let minerRepeated = mean(\.minerRepeatedRate), drainRepeated = mean(\.drainRepeatedRate)
        print("  \("mean".padding(toLength: 8, withPad: " ", startingAt: 0))  \(cell(String(format: "%.4f", mean(\.minerAccuracy)), 8))  \(cell(String(format: "%.4f", mean(\.drainAccuracy)), 9))  \(cell(rate(minerRate), 12))  \(cell(rate(drainRate), 14))  \(cell(String(format: "%.0f×", minerRate / drainRate), 6))  \(cell(rate(minerRepeated), 12))  \(cell(rate(drainRepeated), 13))  \(cell(String(format: "%.0f×", minerRepeated / drainRepeated), 6))")
    }
}

/// The Content and EventId columns of a Loghub `*_structured.csv` file (RFC 4180 quoting).
struct LabelledSample {
    var contents: [String] = []
    var events: [String] = []

    init(csv: Data, path: String) throws {
        let rows = Self.parse([UInt8](csv))
        guard let header = rows.first, let content = header.firstIndex(of: "Content"), let event = header.firstIndex(of: "EventId") else {
            throw MiningBenchmarks.Failure(description: "\(path): no Content and EventId columns")
        }
        for (number, row) in rows.dropFirst().enumerated() {
            guard row.count == header.count else {
                throw MiningBenchmarks.Failure(description: "\(path) row \(number + 2): \(row.count) fields, the header has \(header.count)")
            }
            contents.append(row[content])
            events.append(row[event])
        }
    }

    static func parse(_ bytes: [UInt8]) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field: [UInt8] = []
        var quoted = false
        var index = 0
        func endField() {
            row.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
        }
        while index < bytes.count {
            let byte = bytes[index]
            if quoted {
                if byte == UInt8(ascii: "\"") {
                    if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\"") {
                        field.append(byte)
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(byte)
                }
            } else if byte == UInt8(ascii: "\"") {
                quoted = true
            } else if byte == UInt8(ascii: ",") {
                endField()
            } else if byte == UInt8(ascii: "\n") {
                endField()
                rows.append(row)
                row = []
            } else if byte != UInt8(ascii: "\r") {
                field.append(byte)
            }
            index += 1
        }
        if !field.isEmpty || !row.isEmpty {
            endField()
            rows.append(row)
        }
        return rows
    }
}
