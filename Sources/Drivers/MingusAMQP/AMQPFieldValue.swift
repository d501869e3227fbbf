internal import CRabbitMQ
import Foundation

/// A value in an AMQP table: message headers and queue or exchange arguments.
public enum AMQPFieldValue: Sendable, Hashable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case bytes([UInt8])
    case array([AMQPFieldValue])
    case table([String: AMQPFieldValue])

    /// The value as an integer, when it is one.
    public var intValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    /// The value as a string, when it is one (or UTF-8 bytes).
    public var stringValue: String? {
        switch self {
        case .string(let value): value
        case .bytes(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }
}

extension AMQPFieldValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

/// C memory for one call into librabbitmq: every buffer it hands out is freed with the arena.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for pointer in allocations { free(pointer) }
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        bytes(Array(string.utf8))
    }

    func bytes(_ value: [UInt8]) -> amqp_bytes_t {
        guard !value.isEmpty else { return amqp_bytes_t(len: 0, bytes: nil) }
        let pointer = malloc(value.count)!
        allocations.append(pointer)
        value.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: value.count) }
        return amqp_bytes_t(len: value.count, bytes: pointer)
    }

    func cString(_ string: String) -> UnsafePointer<CChar> {
        let pointer = strdup(string)!
        allocations.append(UnsafeMutableRawPointer(pointer))
        return UnsafePointer(pointer)
    }

    func table(_ values: [String: AMQPFieldValue]) -> amqp_table_t {
        guard !values.isEmpty else { return amqp_empty_table }
        let entries = allocate(amqp_table_entry_t.self, count: values.count)
        for (index, (key, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            var entry = amqp_table_entry_t()
            entry.key = bytes(key)
            entry.value = field(value)
            entries[index] = entry
        }
        return amqp_table_t(num_entries: Int32(values.count), entries: entries)
    }

    private func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let string):
            field.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            field.value.bytes = bytes(string)
        case .int(let int):
            field.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            field.value.i64 = int
        case .bool(let bool):
            field.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            field.value.boolean = bool ? 1 : 0
        case .bytes(let raw):
            field.kind = UInt8(AMQP_FIELD_KIND_BYTES.rawValue)
            field.value.bytes = bytes(raw)
        case .array(let values):
            let entries = allocate(amqp_field_value_t.self, count: values.count)
            for (index, element) in values.enumerated() { entries[index] = self.field(element) }
            field.kind = UInt8(AMQP_FIELD_KIND_ARRAY.rawValue)
            field.value.array = amqp_array_t(num_entries: Int32(values.count), entries: values.isEmpty ? nil : entries)
        case .table(let values):
            field.kind = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
            field.value.table = table(values)
        }
        return field
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let pointer = calloc(max(count, 1), MemoryLayout<T>.stride)!
        allocations.append(pointer)
        return pointer.bindMemory(to: T.self, capacity: max(count, 1))
    }
}

extension amqp_bytes_t {
    /// A Swift copy of the bytes.
    var array: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }

    /// The bytes as UTF-8 text.
    var string: String {
        guard len > 0, let bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }
}

extension AMQPFieldValue {
    /// Copies a librabbitmq field value into Swift; kinds without a case here become nil.
    init?(_ value: UnsafePointer<amqp_field_value_t>) {
        if mingus_amqp_field_is_integer(value) != 0 {
            self = .int(mingus_amqp_field_integer(value))
        } else if mingus_amqp_field_kind(value) == UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue) {
            self = .bool(mingus_amqp_field_integer(value) != 0)
        } else if mingus_amqp_field_kind(value) == UInt8(AMQP_FIELD_KIND_UTF8.rawValue) {
            self = .string(mingus_amqp_field_bytes(value).string)
        } else if mingus_amqp_field_is_bytes(value) != 0 {
            self = .bytes(mingus_amqp_field_bytes(value).array)
        } else if mingus_amqp_field_is_table(value) != 0 {
            self = .table(Self.dictionary(mingus_amqp_field_table(value)))
        } else if mingus_amqp_field_is_array(value) != 0 {
            let array = mingus_amqp_field_array(value)
            var elements: [AMQPFieldValue] = []
            for index in 0..<Int(array.num_entries) {
                if let element = AMQPFieldValue(array.entries.advanced(by: index)) { elements.append(element) }
            }
            self = .array(elements)
        } else {
            return nil
        }
    }

    /// Copies a librabbitmq table into a Swift dictionary.
    static func dictionary(_ table: amqp_table_t) -> [String: AMQPFieldValue] {
        var result: [String: AMQPFieldValue] = [:]
        for index in 0..<Int(table.num_entries) {
            let entry = table.entries.advanced(by: index)
            let key = entry.pointee.key.string
            withUnsafePointer(to: entry.pointee.value) { pointer in
                if let value = AMQPFieldValue(pointer) { result[key] = value }
            }
        }
        return result
    }
}
