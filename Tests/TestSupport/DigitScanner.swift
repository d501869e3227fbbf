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
    ///
    /// - Throws: ``DigitScanner/MissingPath`` when one of `folders` is not a folder or one of
    ///   `files` does not exist: a scan that silently looked at nothing would prove nothing.
    ///   Files found inside the folders may still vanish while the servers run (WAL recycling,
    ///   segment cleanup); those are skipped.
    public func scan(folders: [URL], files: [URL] = []) throws -> [(file: String, found: Set<String>)] {
        var paths: [(url: URL, named: Bool)] = []
        for file in files {
            guard FileManager.default.fileExists(atPath: file.path) else { throw MissingPath(path: file.path, kind: "file") }
            paths.append((file, true))
        }
        for folder in folders {
            // A symbolic link to the folder (a shared services folder) is followed.
            let resolved = folder.resolvingSymlinksInPath()
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: resolved.path, isDirectory: &isFolder), isFolder.boolValue,
                  let walker = FileManager.default.enumerator(at: resolved, includingPropertiesForKeys: [.isRegularFileKey])
            else { throw MissingPath(path: folder.path, kind: "folder") }
            for case let url as URL in walker where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
                paths.append((url, false))
            }
        }
        var hits: [(String, Set<String>)] = []
        for (path, named) in paths {
            let data: Data
            do {
                data = try Data(contentsOf: path, options: .alwaysMapped)
            } catch {
                if named { throw error }
                continue
            }
            let found = data.withUnsafeBytes { scan($0) }
            if !found.isEmpty { hits.append((path.path, found)) }
        }
        return hits
    }

    /// A folder or file to scan is not there.
    public struct MissingPath: Error, CustomStringConvertible {
        public let path: String
        public let kind: String
        public var description: String { "the \(kind) to scan does not exist: \(path)" }
    }
}

/// 16-digit Visa numbers that pass Luhn, random enough that no other test uses them.
public func randomCardNumbers(_ count: Int) -> [String] {
    var numbers = Set<String>()
    while numbers.count < count {
        var digits = [4, 9] + (0..<13).map { _ in Int.random(in: 0...9) }
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            let doubled = offset % 2 == 0 ? digit * 2 : digit
            sum += doubled > 9 ? doubled - 9 : doubled
        }
        digits.append((10 - sum % 10) % 10)
        numbers.insert(digits.map(String.init).joined())
    }
    return Array(numbers)
}
