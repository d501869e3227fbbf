/// A job body as its schema check parsed it, for ``JSONBodyDecodable`` types to read without a
/// second parse. Keys are the body's own (snake_case).
public struct JSONBody: Sendable {
    let value: JSONValue

    init(_ value: JSONValue) {
        self.value = value
    }

    /// The member `key` of an object; nil when absent or when this is not an object.
    public subscript(key: String) -> JSONBody? {
        guard case .object(let members) = value, let member = members[key] else { return nil }
        return JSONBody(member)
    }

    public var isNull: Bool { value == .null }

    public var string: String? {
        if case .string(let text) = value { text } else { nil }
    }

    public var bool: Bool? {
        if case .bool(let flag) = value { flag } else { nil }
    }

    public var double: Double? {
        if case .number(let number) = value { number } else { nil }
    }

    /// An integral number (exact up to 2^53, as every JSON number read as a double).
    public var int64: Int64? {
        guard case .number(let number) = value, number.rounded() == number, abs(number) < 9_007_199_254_740_992 else { return nil }
        return Int64(number)
    }

    public var array: [JSONBody]? {
        if case .array(let elements) = value { elements.map(JSONBody.init) } else { nil }
    }

    /// The member `key`, or an error naming it.
    public func required(_ key: String) throws(JSONBodyError) -> JSONBody {
        guard let member = self[key] else { throw JSONBodyError(field: key, message: "is missing") }
        return member
    }
}

/// A job body that is not what its type expects (its schema should have refused it).
public struct JSONBodyError: Error, CustomStringConvertible {
    public var field: String
    public var message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field) \(message)" }
}

/// A job body type that reads itself from the value its schema check already parsed: for the
/// hottest job types, where decoding with `JSONDecoder` again cost as much as the work. Bodies
/// without a schema are still decoded with `JSONDecoder.mingus`, so `Decodable` must agree.
public protocol JSONBodyDecodable: Decodable {
    init(json: JSONBody) throws
}
