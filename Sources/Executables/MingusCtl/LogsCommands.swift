import ArgumentParser
import Foundation
import MingusLogMining

extension Mingusctl {
    /// `mingusctl logs …`: log template mining.
    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mine log templates.", subcommands: [Mine.self])

        /// `mingusctl logs mine FILE`: one line per input line, `id<TAB>template`.
        ///
        /// The file is read in chunks and mined in one pass; what stays in memory is the template
        /// id of each line (8 bytes a line), the text of each template, and the miner's bounded state. The template printed
        /// is the line's template as it is at the end of the file, after any generalisation or
        /// merge, so the output is written once the whole file is mined.
        struct Mine: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print for each line of FILE (one message per line, `-` for standard input) its template id, a tab and the template.")

            @Argument(help: "The log file: one message per line.") var file: String

            func run() async throws {
                let input: FileHandle
                if file == "-" {
                    input = FileHandle.standardInput
                } else {
                    guard let handle = FileHandle(forReadingAtPath: file) else {
                        throw ValidationError("cannot open \(file)")
                    }
                    input = handle
                }
                var run = MiningRun()
                var pending: [UInt8] = []
                while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
                    pending.append(contentsOf: chunk)
                    let consumed = pending.withUnsafeBufferPointer { run.addLines($0, final: false) }
                    pending.removeSubrange(..<consumed)
                }
                _ = pending.withUnsafeBufferPointer { run.addLines($0, final: true) }
                try input.close()
                run.printResults()
            }
        }
    }
}

/// The state of one `logs mine` run: the miner, the template id of every line read, and the
/// latest text of every template, with merged templates resolved to the one that absorbed them.
struct MiningRun {
    var miner = LogTemplateMiner()
    var lineTemplateIDs: [LogTemplateID] = []
    var texts: [LogTemplateID: String] = [:]
    var absorbedBy: [LogTemplateID: LogTemplateID] = [:]

    /// Mines the complete lines of `bytes` (and a last unterminated one if `final`); returns
    /// the number of bytes consumed.
    mutating func addLines(_ bytes: UnsafeBufferPointer<UInt8>, final: Bool) -> Int {
        var start = 0
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                add(UnsafeBufferPointer(rebasing: bytes[start..<index]))
                start = index + 1
            }
            index += 1
        }
        if final, start < bytes.count {
            add(UnsafeBufferPointer(rebasing: bytes[start...]))
            start = bytes.count
        }
        return start
    }

    private mutating func add(_ line: UnsafeBufferPointer<UInt8>) {
        let match = miner.add(utf8: line)
        lineTemplateIDs.append(match.templateID)
        if match.isNew || match.textChanged { texts[match.templateID] = match.templateText }
        for absorbed in match.absorbedTemplateIDs { absorbedBy[absorbed] = match.templateID }
    }

    /// The id a template's lines belong to at the end: itself, or the template that absorbed it.
    func finalID(_ id: LogTemplateID) -> LogTemplateID {
        var id = id
        while let next = absorbedBy[id] { id = next }
        return id
    }

    func printResults() {
        var output = ""
        output.reserveCapacity(1 << 16)
        for id in lineTemplateIDs {
            let final = finalID(id)
            output += "\(final)\t\(texts[final] ?? "")\n"
            if output.utf8.count >= 1 << 16 {
                FileHandle.standardOutput.write(Data(output.utf8))
                output.removeAll(keepingCapacity: true)
            }
        }
        FileHandle.standardOutput.write(Data(output.utf8))
    }
}
