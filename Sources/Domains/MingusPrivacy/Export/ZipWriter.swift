import CZlib
import Foundation

/// Where an archive's bytes go, in order.
protocol ByteSink: AnyObject {
    func write(_ bytes: [UInt8]) async throws
}

/// Writes a ZIP file (APPNOTE 6.3) as a stream: each entry's local header, its data (stored),
/// then a data descriptor with its CRC-32 and size, and the central directory at the end, so
/// nothing but the entry list is held in memory. Entries and the archive stay under 4 GiB (no
/// ZIP64).
final class ZipWriter {
    private struct Entry {
        var name: [UInt8]
        var offset: UInt32
        var crc: UInt32 = 0
        var size: UInt32 = 0
    }

    private let sink: any ByteSink
    private var entries: [Entry] = []
    private var offset: UInt64 = 0
    private var current: Entry?
    private var crc: uLong = 0
    private var size: UInt64 = 0
    private var pending: [UInt8] = []
    private let dosTime: UInt16
    private let dosDate: UInt16

    init(sink: any ByteSink, date: Date = Date()) {
        self.sink = sink
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        dosTime = UInt16((c.hour ?? 0) << 11 | (c.minute ?? 0) << 5 | (c.second ?? 0) / 2)
        dosDate = UInt16(max(0, (c.year ?? 1980) - 1980) << 9 | (c.month ?? 1) << 5 | (c.day ?? 1))
    }

    struct TooLarge: Error, CustomStringConvertible {
        var description: String { "the archive would exceed 4 GiB (ZIP64 is not written)" }
    }

    private func emit(_ bytes: [UInt8]) async throws {
        offset += UInt64(bytes.count)
        guard offset < UInt64(UInt32.max) else { throw TooLarge() }
        try await sink.write(bytes)
    }

    private static func le16(_ value: UInt16, _ out: inout [UInt8]) { out += [UInt8(value & 0xFF), UInt8(value >> 8)] }
    private static func le32(_ value: UInt32, _ out: inout [UInt8]) {
        out += [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }

    /// Starts an entry named `name` (UTF-8).
    func begin(_ name: String) async throws {
        precondition(current == nil, "an entry is open")
        let entry = Entry(name: Array(name.utf8), offset: UInt32(offset))
        var header: [UInt8] = []
        Self.le32(0x0403_4B50, &header)
        Self.le16(20, &header)           // version needed
        Self.le16(0x0808, &header)       // data descriptor follows; UTF-8 names
        Self.le16(0, &header)            // stored
        Self.le16(dosTime, &header)
        Self.le16(dosDate, &header)
        Self.le32(0, &header)            // CRC, sizes: in the data descriptor
        Self.le32(0, &header)
        Self.le32(0, &header)
        Self.le16(UInt16(entry.name.count), &header)
        Self.le16(0, &header)
        header += entry.name
        try await emit(header)
        current = entry
        crc = crc32(0, nil, 0)
        size = 0
    }

    /// Appends to the open entry (buffered in 256 KiB pieces).
    func write(_ bytes: [UInt8]) async throws {
        pending += bytes
        if pending.count >= 256 * 1024 { try await flushPending() }
    }

    func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    private func flushPending() async throws {
        guard !pending.isEmpty else { return }
        crc = pending.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        size += UInt64(pending.count)
        let bytes = pending
        pending.removeAll(keepingCapacity: true)
        try await emit(bytes)
    }

    /// Closes the open entry with its data descriptor.
    func end() async throws {
        try await flushPending()
        guard var entry = current else { preconditionFailure("no entry is open") }
        guard size < UInt64(UInt32.max) else { throw TooLarge() }
        entry.crc = UInt32(crc)
        entry.size = UInt32(size)
        var descriptor: [UInt8] = []
        Self.le32(0x0807_4B50, &descriptor)
        Self.le32(entry.crc, &descriptor)
        Self.le32(entry.size, &descriptor)
        Self.le32(entry.size, &descriptor)
        try await emit(descriptor)
        entries.append(entry)
        current = nil
    }

    /// Writes the central directory and its end record; returns the archive's size.
    func finish() async throws -> UInt64 {
        let start = UInt32(offset)
        var directory: [UInt8] = []
        for entry in entries {
            Self.le32(0x0201_4B50, &directory)
            Self.le16(0x031E, &directory)    // made by: Unix, 3.0
            Self.le16(20, &directory)
            Self.le16(0x0808, &directory)
            Self.le16(0, &directory)
            Self.le16(dosTime, &directory)
            Self.le16(dosDate, &directory)
            Self.le32(entry.crc, &directory)
            Self.le32(entry.size, &directory)
            Self.le32(entry.size, &directory)
            Self.le16(UInt16(entry.name.count), &directory)
            Self.le16(0, &directory)         // extra
            Self.le16(0, &directory)         // comment
            Self.le16(0, &directory)         // disk
            Self.le16(0, &directory)         // internal attributes
            Self.le32(0o100600 << 16, &directory)   // external: a regular file, rw-------
            Self.le32(entry.offset, &directory)
            directory += entry.name
        }
        let length = UInt32(directory.count)
        Self.le32(0x0605_4B50, &directory)
        Self.le16(0, &directory)
        Self.le16(0, &directory)
        Self.le16(UInt16(entries.count), &directory)
        Self.le16(UInt16(entries.count), &directory)
        Self.le32(length, &directory)
        Self.le32(start, &directory)
        Self.le16(0, &directory)
        try await emit(directory)
        return offset
    }
}
