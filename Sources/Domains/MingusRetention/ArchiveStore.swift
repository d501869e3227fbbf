public import Foundation
import Crypto

/// Where archive files go: a directory today; an object store implements the same four calls.
public protocol ArchiveStore: Sendable {
    /// Stores `bytes` as `name` durably (written, synced), replacing nothing: an existing name is an error.
    func write(_ name: String, _ bytes: [UInt8]) throws
    /// The bytes stored as `name`.
    func read(_ name: String) throws -> [UInt8]
    /// Every name stored, sorted.
    func list() throws -> [String]
    /// Whether `name` is stored.
    func exists(_ name: String) throws -> Bool
}

/// Why an archive file cannot be stored or read.
public struct ArchiveError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Archive files in a directory (`MINGUS_ARCHIVE_DIR`), each written to a temporary name,
/// fsynced, renamed into place and the directory fsynced, so a file that exists is complete.
public struct DirectoryArchiveStore: ArchiveStore {
    public let directory: URL

    public init(directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    public func write(_ name: String, _ bytes: [UInt8]) throws {
        guard Self.isName(name) else { throw ArchiveError("archive name '\(name)' is not a plain file name") }
        let target = directory.appendingPathComponent(name)
        let temporary = directory.appendingPathComponent(".\(name).\(UUID().uuidString).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ArchiveError("cannot create \(temporary.path): errno \(errno)") }
        var written = 0
        let ok = bytes.withUnsafeBytes { buffer -> Bool in
            while written < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + written, buffer.count - written)
                guard n > 0 else { return false }
                written += n
            }
            return fsync(fd) == 0
        }
        close(fd)
        guard ok else {
            unlink(temporary.path)
            throw ArchiveError("cannot write \(temporary.path): errno \(errno)")
        }
        guard link(temporary.path, target.path) == 0 else {
            let code = errno
            unlink(temporary.path)
            throw ArchiveError("cannot store \(name): errno \(code)\(code == EEXIST ? " (it exists)" : "")")
        }
        unlink(temporary.path)
        let dir = open(directory.path, O_RDONLY)
        if dir >= 0 {
            fsync(dir)
            close(dir)
        }
    }

    public func read(_ name: String) throws -> [UInt8] {
        guard Self.isName(name) else { throw ArchiveError("archive name '\(name)' is not a plain file name") }
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
            throw ArchiveError("cannot read \(name) in \(directory.path)")
        }
        return Array(data)
    }

    public func list() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }.sorted()
    }

    public func exists(_ name: String) throws -> Bool {
        guard Self.isName(name) else { throw ArchiveError("archive name '\(name)' is not a plain file name") }
        return access(directory.appendingPathComponent(name).path, F_OK) == 0
    }

    static func isName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && !name.contains("/") && name.utf8.count <= 200
    }
}

extension ArchiveStore {
    /// Stores `bytes`, reads them back and checks them against their SHA-256; returns the digest.
    /// A file already stored under `name` with these very bytes (a batch written before a crash,
    /// written again on resume) counts as stored.
    func writeVerified(_ name: String, _ bytes: [UInt8]) throws -> [UInt8] {
        let digest = Array(SHA256.hash(data: bytes))
        if try exists(name) {
            guard Array(SHA256.hash(data: try read(name))) == digest else {
                throw ArchiveError("\(name) exists with other contents; the rows changed since it was written")
            }
            return digest
        }
        try write(name, bytes)
        guard Array(SHA256.hash(data: try read(name))) == digest else {
            throw ArchiveError("\(name) does not read back as written")
        }
        return digest
    }
}
