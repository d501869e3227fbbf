public import Foundation

/// Finds given digit strings (card numbers) in files, written with or without single spaces or
/// hyphens between the digits, anywhere in the bytes.
public struct DigitScanner: Sendable {
    private let needles: Set<[UInt8]>
    private let length: Int

    /// `needles` are digit strings of one length.
    public init(_ needles: [String]) {
        self.needles = Set(needles.map { Array($0.utf8) })
        length = needles.first?.count ?? 0
        precondition(needles.allSatisfy { $0.count == length }, "needles must have one length")
    }

    /// The needles found in `bytes`.
    public func scan(_ bytes: UnsafeRawBufferPointer) -> Set<String> {
        var found = Set<String>()
        var run: [UInt8] = []
        var previousWasDigit = false
        func check() {
            guard run.count >= length else { return }
            for start in 0...(run.count - length) where needles.contains(Array(run[start..<start + length])) {
                found.insert(String(decoding: run[start..<start + length], as: UTF8.self))
            }
        }
        for byte in bytes {
            if byte >= 0x30 && byte <= 0x39 {
                run.append(byte)
                previousWasDigit = true
            } else if (byte == 0x20 || byte == 0x2d) && previousWasDigit {
                previousWasDigit = false
            } else {
                check()
                run.removeAll(keepingCapacity: true)
                previousWasDigit = false
            }
        }
        check()
        return found
    }

    /// Every regular file under `folders` (and the `files`) that holds a needle, with what it holds.
    /// A folder given as a symlink is followed (`.services/postgres` can be one).
    public func scan(folders: [URL], files: [URL] = []) throws -> [(file: String, found: Set<String>)] {
        var paths = files
        for folder in folders {
            let folder = folder.resolvingSymlinksInPath()
            guard let walker = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey]) else { continue }
            for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                paths.append(url)
            }
        }
        var hits: [(String, Set<String>)] = []
        for path in paths {
            // Files can vanish while the servers run (WAL recycling, segment cleanup).
            guard let data = try? Data(contentsOf: path, options: .alwaysMapped) else { continue }
            let found = data.withUnsafeBytes { scan($0) }
            if !found.isEmpty { hits.append((path.path, found)) }
        }
        return hits
    }
}
