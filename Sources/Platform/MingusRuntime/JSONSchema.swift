public import Foundation

// MARK: - Public API

/// A JSON Schema (a documented subset of draft 2020-12) that validates message bodies.
///
/// Supported keywords:
/// - `type` (a name or an array of names: `object`, `array`, `string`, `integer`, `number`,
///   `boolean`, `null`; `integer` means a number with no fractional part, so `3.0` is one);
/// - `enum`, `const` (numbers compare by value, so `1` equals `1.0`; booleans never equal numbers);
/// - strings: `minLength`, `maxLength` (counted in Unicode scalars, that is code points, as
///   RFC 8259 and most validators count them), `pattern` (an `NSRegularExpression`, ICU syntax,
///   unanchored: it may match anywhere in the string), `format` (`date-time` per RFC 3339,
///   `uuid`, `email` (a simple `local@domain.tld` check), `uri` (an absolute RFC 3986 URI));
/// - numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers, as in
///   2020-12), `multipleOf` (exact in decimal, so `19.99` is a multiple of `0.01`);
/// - arrays: `items` (one schema for every item), `minItems`, `maxItems`, `uniqueItems`;
/// - objects: `properties`, `required`, `additionalProperties` (a boolean or a schema),
///   `minProperties`, `maxProperties`;
/// - combinators: `allOf`, `anyOf`, `oneOf`, `not`;
/// - `$defs` (at the root only) and `$ref` to `#/$defs/<name>` (recursion is allowed as long as
///   it goes through `properties`, `items` or `additionalProperties`).
///
/// Boolean schemas (`true`, `false`) are accepted anywhere a schema is. Annotation keywords
/// (`$schema`, `$id`, `title`, `description`, `examples`, `default`, `$comment`, `deprecated`,
/// `readOnly`, `writeOnly`) are ignored. Every other keyword is refused when the schema is
/// parsed, so that nobody believes a keyword is checked when it is not.
///
/// Violation messages never contain the offending value: bodies may hold card numbers.
public struct JSONSchema: Sendable {
    private let root: SchemaNode
    private let definitions: [String: SchemaNode]

    /// Parses a schema from JSON data.
    ///
    /// - Throws: `JSONSchemaError` if the data is not JSON, uses an unsupported keyword or format,
    ///   gives a keyword a value of the wrong kind, or has a `$ref` that does not resolve.
    public init(data: Data) throws {
        let document: JSONValue
        do {
            let object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            document = try JSONValue(any: object, path: "")
        } catch {
            throw JSONSchemaError.notJSON
        }
        var parser = SchemaParser()
        root = try parser.parseRoot(document)
        definitions = parser.definitions
    }

    /// Reads and parses a schema file, such as `Contracts/schemas/payment.requested.v1.json`.
    ///
    /// - Throws: the file system error if the file cannot be read, or `JSONSchemaError`.
    public init(contentsOf url: URL) throws {
        try self.init(data: Data(contentsOf: url))
    }

    /// Validates a JSON document; returns the violations found, empty when the document is valid.
    ///
    /// A body that is not JSON gives a single violation at the root with rule `json`.
    public func validate(_ data: Data) -> [JSONSchemaViolation] {
        check(data).violations
    }

    /// Parses and validates a document: the parsed value (nil when it is not JSON) and the
    /// violations found.
    func check(_ bytes: some ContiguousBytes) -> (value: JSONValue?, violations: [JSONSchemaViolation]) {
        guard let value = try? JSONParser.parse(bytes) else {
            return (nil, [JSONSchemaViolation(path: "", rule: "json", message: "is not valid JSON")])
        }
        var violations: [JSONSchemaViolation] = []
        SchemaValidator(definitions: definitions).validate(value, against: root, at: "", into: &violations)
        return (value, violations)
    }

    /// Validates a value as produced by `JSONSerialization` (or built from `String`, `Bool`,
    /// numbers, `NSNull`, arrays and `[String: Any]` dictionaries); returns the violations found.
    ///
    /// A value that cannot be JSON (a `Date`, say) gives a violation with rule `json` at its path.
    public func validate(json: Any) -> [JSONSchemaViolation] {
        let value: JSONValue
        do throws(JSONValue.NotJSON) {
            value = try JSONValue(any: json, path: "")
        } catch {
            return [JSONSchemaViolation(path: error.path, rule: "json", message: "is not a JSON value (found \(error.typeName))")]
        }
        var violations: [JSONSchemaViolation] = []
        SchemaValidator(definitions: definitions).validate(value, against: root, at: "", into: &violations)
        return violations
    }
}

/// One way in which a document fails its schema.
public struct JSONSchemaViolation: Sendable, Equatable, CustomStringConvertible {
    /// The JSON Pointer of the offending value, such as `/card/expiry_month`; `""` is the root.
    ///
    /// For `required` this is the path of the object that lacks the property.
    public let path: String
    /// The keyword that failed, such as `required`, `maxLength` or `type`.
    public let rule: String
    /// A one-line human explanation that never contains the offending value.
    public let message: String
    /// The property concerned: the missing property for `required`, otherwise the last path
    /// component (`""` for the root).
    public let field: String

    /// Creates a violation; `field` defaults to the last component of `path`.
    public init(path: String, rule: String, message: String, field: String? = nil) {
        self.path = path
        self.rule = rule
        self.message = message
        self.field = field ?? JSONPointer.lastComponent(of: path)
    }

    /// The violation as `path: message`, with `(root)` for the root.
    public var description: String {
        "\(path.isEmpty ? "(root)" : path): \(message)"
    }
}

/// Why a schema could not be parsed.
public enum JSONSchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The schema document is not JSON.
    case notJSON
    /// A schema (at the given location, a JSON Pointer into the schema) is neither an object nor a boolean.
    case invalidSchema(path: String)
    /// The schema uses a keyword this validator does not check.
    case unsupportedKeyword(keyword: String, path: String)
    /// A keyword has a value this validator cannot use, such as a negative `minLength`,
    /// a pattern that does not compile or an unknown `format`.
    case invalidKeywordValue(keyword: String, path: String, reason: String)
    /// A `$ref` that is not of the form `#/$defs/<name>` or names a missing definition.
    case unresolvedReference(reference: String, path: String)
    /// A definition that refers back to itself without going through a property or an item,
    /// which would make validation loop forever.
    case referenceCycle(definition: String)

    /// The error as one line, naming the keyword and its location in the schema.
    public var description: String {
        switch self {
        case .notJSON:
            "the schema is not valid JSON"
        case .invalidSchema(let path):
            "the schema at #\(path) must be an object or a boolean"
        case .unsupportedKeyword(let keyword, let path):
            "unsupported JSON Schema keyword '\(keyword)' at #\(path): it would not be checked"
        case .invalidKeywordValue(let keyword, let path, let reason):
            "invalid value for '\(keyword)' at #\(path): \(reason)"
        case .unresolvedReference(let reference, let path):
            "unresolved $ref '\(reference)' at #\(path): only references to existing #/$defs/<name> are supported"
        case .referenceCycle(let definition):
            "definition '\(definition)' refers to itself without going through a property or an item"
        }
    }
}

// MARK: - JSON values

/// A JSON value with booleans and numbers told apart (JSONSerialization returns both as NSNumber).
enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Why a Swift value could not be read as JSON.
    struct NotJSON: Error {
        let path: String
        let typeName: String
    }

    /// The class `NSNumber` uses for booleans (`__NSCFBoolean` on both Darwin and Linux).
    private static let booleanClass = ObjectIdentifier(type(of: NSNumber(value: true)))

    /// Reads a value made by `JSONSerialization` or of native Swift JSON-like types.
    init(any: Any, path: String) throws(NotJSON) {
        switch any {
        case is NSNull:
            self = .null
        case let string as String:
            self = .string(string)
        case let number as NSNumber:
            // Native Swift Bool bridges to the boolean class too, and `as? Bool` would wrongly
            // succeed for the numbers 0 and 1, so the class is the reliable test.
            if ObjectIdentifier(type(of: number)) == Self.booleanClass {
                self = .bool(number.boolValue)
            } else {
                self = .number(number.doubleValue)
            }
        case let array as [Any]:
            var values: [JSONValue] = []
            values.reserveCapacity(array.count)
            for (index, element) in array.enumerated() {
                values.append(try JSONValue(any: element, path: JSONPointer.appending(String(index), to: path)))
            }
            self = .array(values)
        case let dictionary as [String: Any]:
            var values: [String: JSONValue] = [:]
            for (key, element) in dictionary {
                values[key] = try JSONValue(any: element, path: JSONPointer.appending(key, to: path))
            }
            self = .object(values)
        default:
            throw NotJSON(path: path, typeName: String(describing: type(of: any)))
        }
    }

    /// The string, if this is one.
    var stringValue: String? {
        if case .string(let string) = self { string } else { nil }
    }

    /// The JSON type name for messages; integral numbers are reported as `integer`.
    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let number): number.isIntegral ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// A compact JSON rendering of a scalar, for messages about values taken from the schema
    /// (never from the validated document); nil for arrays and objects.
    var schemaLiteral: String? {
        switch self {
        case .null: "null"
        case .bool(let bool): String(bool)
        case .number(let number): NumberFormatting.string(number)
        case .string(let string): "\"\(string.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
        case .array, .object: nil
        }
    }
}

extension Double {
    /// Whether the number is finite and has no fractional part.
    fileprivate var isIntegral: Bool {
        isFinite && rounded(.towardZero) == self
    }
}

/// Formats schema numbers for messages: `19`, not `19.0`.
private enum NumberFormatting {
    static func string(_ number: Double) -> String {
        if number.isIntegral, abs(number) < 1e15 {
            return String(Int64(number))
        }
        return String(number)
    }
}

/// JSON Pointer (RFC 6901) helpers.
private enum JSONPointer {
    static func appending(_ component: String, to path: String) -> String {
        // Most names need no escaping; checking the bytes first keeps validation off Foundation's
        // string search, which showed in profiles of a busy worker.
        guard component.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else {
            return path + "/" + component
        }
        let escaped = component.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
        return path + "/" + escaped
    }

    static func lastComponent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return unescape(String(path[path.index(after: slash)...]))
    }

    static func unescape(_ component: String) -> String {
        component.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
    }
}

// MARK: - Parsed schema

/// A parsed schema: a boolean schema or a set of keywords.
private enum SchemaNode: Sendable {
    case always(Bool)
    /// Held by reference: validating one value against a node then costs one retain, not one
    /// per field of the keywords (a tenth of the logs worker's time when it was a struct).
    case keywords(SchemaKeywordsBox)
}

private final class SchemaKeywordsBox: Sendable {
    let keywords: SchemaKeywords

    init(_ keywords: SchemaKeywords) {
        self.keywords = keywords
    }
}

/// The JSON types `type` can name.
private enum JSONType: String, Sendable, CaseIterable {
    case object, array, string, integer, number, boolean, null

    func matches(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.object, .object), (.array, .array), (.string, .string), (.boolean, .bool), (.null, .null), (.number, .number):
            true
        case (.integer, .number(let number)):
            number.isIntegral
        default:
            false
        }
    }
}

/// The values `format` can check.
private enum StringFormat: String, Sendable, CaseIterable {
    case dateTime = "date-time"
    case uuid
    case email
    case uri

    func matches(_ string: String) -> Bool {
        switch self {
        case .dateTime: FormatChecks.isDateTime(string)
        case .uuid: FormatChecks.isUUID(string)
        case .email: FormatChecks.isEmail(string)
        case .uri: FormatChecks.isURI(string)
        }
    }

    var explanation: String {
        switch self {
        case .dateTime: "an RFC 3339 date-time"
        case .uuid: "a UUID"
        case .email: "an email address"
        case .uri: "an absolute URI"
        }
    }
}

/// A compiled `pattern` with its source for messages.
private struct Pattern: Sendable {
    let source: String
    let expression: NSRegularExpression

    func matches(_ string: String) -> Bool {
        expression.firstMatch(in: string, range: NSRange(location: 0, length: string.utf16.count)) != nil
    }
}

/// The keywords of one schema object; nil or empty means the keyword is absent.
private struct SchemaKeywords: Sendable {
    var reference: String?
    var types: [JSONType]?
    var enumValues: [JSONValue]?
    var constValue: JSONValue?

    var minLength: Int?
    var maxLength: Int?
    var pattern: Pattern?
    var format: StringFormat?

    var minimum: Double?
    var maximum: Double?
    var exclusiveMinimum: Double?
    var exclusiveMaximum: Double?
    var multipleOf: Double?

    var items: SchemaNode?
    var minItems: Int?
    var maxItems: Int?
    var uniqueItems = false

    /// Sorted by name so violations come out in a stable order.
    var properties: [(name: String, schema: SchemaNode)] = [] {
        didSet { declaredNames = Set(properties.map(\.name)) }
    }
    /// The names in `properties`, for `additionalProperties`.
    private(set) var declaredNames: Set<String> = []
    var required: [String] = []
    var additionalProperties: SchemaNode?
    var minProperties: Int?
    var maxProperties: Int?

    var allOf: [SchemaNode] = []
    var anyOf: [SchemaNode] = []
    var oneOf: [SchemaNode] = []
    var not: SchemaNode?
}

// MARK: - Parsing

private struct SchemaParser {
    static let annotations: Set<String> = [
        "$schema", "$id", "title", "description", "examples", "default", "$comment", "deprecated", "readOnly", "writeOnly",
    ]
    static let definitionPrefix = "#/$defs/"

    private(set) var definitions: [String: SchemaNode] = [:]
    /// Every `$ref` met, with its location, checked once the definitions are known.
    private var references: [(name: String, reference: String, path: String)] = []

    mutating func parseRoot(_ document: JSONValue) throws(JSONSchemaError) -> SchemaNode {
        if case .object(let members) = document, let defs = members["$defs"] {
            let path = "/$defs"
            guard case .object(let entries) = defs else {
                throw .invalidKeywordValue(keyword: "$defs", path: path, reason: "must be an object of schemas")
            }
            for name in entries.keys.sorted() {
                definitions[name] = try parse(entries[name]!, at: JSONPointer.appending(name, to: path))
            }
        }
        let root = try parse(document, at: "", isRoot: true)
        for entry in references where definitions[entry.name] == nil {
            throw .unresolvedReference(reference: entry.reference, path: entry.path)
        }
        try checkForCycles()
        return root
    }

    private mutating func parse(_ value: JSONValue, at path: String, isRoot: Bool = false) throws(JSONSchemaError) -> SchemaNode {
        switch value {
        case .bool(let bool):
            return .always(bool)
        case .object(let members):
            var keywords = SchemaKeywords()
            for keyword in members.keys.sorted() {
                try parse(keyword: keyword, value: members[keyword]!, at: JSONPointer.appending(keyword, to: path), isRoot: isRoot, into: &keywords)
            }
            return .keywords(SchemaKeywordsBox(keywords))
        default:
            throw .invalidSchema(path: path)
        }
    }

    private mutating func parse(
        keyword: String, value: JSONValue, at path: String, isRoot: Bool, into keywords: inout SchemaKeywords
    ) throws(JSONSchemaError) {
        func invalid(_ reason: String) -> JSONSchemaError {
            .invalidKeywordValue(keyword: keyword, path: path, reason: reason)
        }
        func count() throws(JSONSchemaError) -> Int {
            guard case .number(let number) = value, number.isIntegral, number >= 0, number <= Double(Int32.max) else {
                throw invalid("must be a non-negative integer")
            }
            return Int(number)
        }
        func number() throws(JSONSchemaError) -> Double {
            guard case .number(let number) = value, number.isFinite else { throw invalid("must be a number") }
            return number
        }
        func schemaList() throws(JSONSchemaError) -> [SchemaNode] {
            guard case .array(let elements) = value, !elements.isEmpty else {
                throw invalid("must be a non-empty array of schemas")
            }
            var nodes: [SchemaNode] = []
            for (index, element) in elements.enumerated() {
                nodes.append(try parse(element, at: JSONPointer.appending(String(index), to: path)))
            }
            return nodes
        }

        if Self.annotations.contains(keyword) { return }
        switch keyword {
        case "$defs":
            // Parsed by parseRoot before the rest of the schema.
            guard isRoot else { throw invalid("$defs is supported at the schema root only") }
        case "$ref":
            guard case .string(let reference) = value else { throw invalid("must be a string") }
            guard reference.hasPrefix(Self.definitionPrefix) else {
                throw .unresolvedReference(reference: reference, path: path)
            }
            let encoded = String(reference.dropFirst(Self.definitionPrefix.count))
            guard !encoded.contains("/"), let decoded = encoded.removingPercentEncoding else {
                throw .unresolvedReference(reference: reference, path: path)
            }
            let name = JSONPointer.unescape(decoded)
            references.append((name, reference, path))
            keywords.reference = name
        case "type":
            let names: [String]
            switch value {
            case .string(let name):
                names = [name]
            case .array(let elements):
                names = elements.compactMap(\.stringValue)
                guard names.count == elements.count, !names.isEmpty, Set(names).count == names.count else {
                    throw invalid("must be a type name or a non-empty array of distinct type names")
                }
            default:
                throw invalid("must be a type name or an array of type names")
            }
            var types: [JSONType] = []
            for name in names {
                guard let type = JSONType(rawValue: name) else {
                    throw invalid("unknown type '\(name)' (known: \(JSONType.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                types.append(type)
            }
            keywords.types = types
        case "enum":
            guard case .array(let elements) = value, !elements.isEmpty else { throw invalid("must be a non-empty array") }
            keywords.enumValues = elements
        case "const":
            keywords.constValue = value
        case "minLength":
            keywords.minLength = try count()
        case "maxLength":
            keywords.maxLength = try count()
        case "pattern":
            guard case .string(let source) = value else { throw invalid("must be a string") }
            do {
                keywords.pattern = Pattern(source: source, expression: try NSRegularExpression(pattern: source))
            } catch {
                throw invalid("the regular expression does not compile")
            }
        case "format":
            guard case .string(let name) = value else { throw invalid("must be a string") }
            guard let format = StringFormat(rawValue: name) else {
                throw invalid("unsupported format '\(name)' (supported: \(StringFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            keywords.format = format
        case "minimum":
            keywords.minimum = try number()
        case "maximum":
            keywords.maximum = try number()
        case "exclusiveMinimum":
            keywords.exclusiveMinimum = try number()
        case "exclusiveMaximum":
            keywords.exclusiveMaximum = try number()
        case "multipleOf":
            let divisor = try number()
            guard divisor > 0 else { throw invalid("must be greater than 0") }
            keywords.multipleOf = divisor
        case "items":
            if case .array = value { throw invalid("must be a schema (the array form of draft 7 is not supported)") }
            keywords.items = try parse(value, at: path)
        case "minItems":
            keywords.minItems = try count()
        case "maxItems":
            keywords.maxItems = try count()
        case "uniqueItems":
            guard case .bool(let unique) = value else { throw invalid("must be a boolean") }
            keywords.uniqueItems = unique
        case "properties":
            guard case .object(let members) = value else { throw invalid("must be an object of schemas") }
            for name in members.keys.sorted() {
                let schema = try parse(members[name]!, at: JSONPointer.appending(name, to: path))
                keywords.properties.append((name, schema))
            }
        case "required":
            guard case .array(let elements) = value else { throw invalid("must be an array of property names") }
            let names = elements.compactMap(\.stringValue)
            guard names.count == elements.count else { throw invalid("must be an array of property names") }
            keywords.required = names
        case "additionalProperties":
            keywords.additionalProperties = try parse(value, at: path)
        case "minProperties":
            keywords.minProperties = try count()
        case "maxProperties":
            keywords.maxProperties = try count()
        case "allOf":
            keywords.allOf = try schemaList()
        case "anyOf":
            keywords.anyOf = try schemaList()
        case "oneOf":
            keywords.oneOf = try schemaList()
        case "not":
            keywords.not = try parse(value, at: path)
        default:
            throw .unsupportedKeyword(keyword: keyword, path: path)
        }
    }

    /// Refuses definitions that reach themselves through `$ref` and combinators alone, since
    /// validating them would never consume any of the document.
    private func checkForCycles() throws(JSONSchemaError) {
        var finished: Set<String> = []
        for name in definitions.keys.sorted() {
            var visiting: Set<String> = []
            try visit(name, visiting: &visiting, finished: &finished)
        }
    }

    private func visit(_ name: String, visiting: inout Set<String>, finished: inout Set<String>) throws(JSONSchemaError) {
        if finished.contains(name) { return }
        guard visiting.insert(name).inserted else { throw .referenceCycle(definition: name) }
        if let node = definitions[name] {
            for next in Self.sameLocationReferences(of: node) {
                try visit(next, visiting: &visiting, finished: &finished)
            }
        }
        visiting.remove(name)
        finished.insert(name)
    }

    /// The definitions a schema applies to the very value it validates.
    private static func sameLocationReferences(of node: SchemaNode) -> [String] {
        guard case .keywords(let box) = node else { return [] }
        let keywords = box.keywords
        var names = keywords.reference.map { [$0] } ?? []
        for child in keywords.allOf + keywords.anyOf + keywords.oneOf + (keywords.not.map { [$0] } ?? []) {
            names += sameLocationReferences(of: child)
        }
        return names
    }
}

// MARK: - Validation

private struct SchemaValidator {
    let definitions: [String: SchemaNode]

    func validate(_ value: JSONValue, against node: SchemaNode, at path: @autoclosure () -> String, into violations: inout [JSONSchemaViolation]) {
        switch node {
        case .always(true):
            return
        case .always(false):
            violations.append(JSONSchemaViolation(path: path(), rule: "false", message: "no value is allowed here"))
        case .keywords(let box):
            validate(value, against: box.keywords, at: path(), into: &violations)
        }
    }

    func isValid(_ value: JSONValue, against node: SchemaNode, at path: @autoclosure () -> String) -> Bool {
        var violations: [JSONSchemaViolation] = []
        validate(value, against: node, at: path(), into: &violations)
        return violations.isEmpty
    }

    private func validate(_ value: JSONValue, against keywords: SchemaKeywords, at path: @autoclosure () -> String, into violations: inout [JSONSchemaViolation]) {
        func fail(_ rule: String, _ message: String) {
            violations.append(JSONSchemaViolation(path: path(), rule: rule, message: message))
        }

        if let name = keywords.reference, let target = definitions[name] {
            validate(value, against: target, at: path(), into: &violations)
        }
        if let types = keywords.types, !types.contains(where: { $0.matches(value) }) {
            let names = types.map(\.rawValue).joined(separator: " or ")
            fail("type", "must be of type \(names) (found \(value.typeName))")
        }
        if let allowed = keywords.enumValues, !allowed.contains(value) {
            let literals = allowed.compactMap(\.schemaLiteral)
            if literals.count == allowed.count, literals.count <= 10 {
                fail("enum", "must be one of \(literals.joined(separator: ", "))")
            } else {
                fail("enum", "must be one of the \(allowed.count) values the schema allows")
            }
        }
        if let constant = keywords.constValue, constant != value {
            fail("const", constant.schemaLiteral.map { "must be \($0)" } ?? "must equal the value the schema requires")
        }

        switch value {
        case .string(let string):
            validateString(string, keywords, fail)
        case .number(let number):
            validateNumber(number, keywords, fail)
        case .array(let elements):
            validateArray(elements, keywords, at: path(), into: &violations)
        case .object(let members):
            validateObject(members, keywords, at: path(), into: &violations)
        case .null, .bool:
            break
        }

        for node in keywords.allOf {
            validate(value, against: node, at: path(), into: &violations)
        }
        if !keywords.anyOf.isEmpty, !keywords.anyOf.contains(where: { isValid(value, against: $0, at: path()) }) {
            fail("anyOf", "must match at least one of the \(keywords.anyOf.count) schemas in anyOf")
        }
        if !keywords.oneOf.isEmpty {
            let matching = keywords.oneOf.indices.filter { isValid(value, against: keywords.oneOf[$0], at: path()) }
            if matching.isEmpty {
                fail("oneOf", "must match exactly one of the \(keywords.oneOf.count) schemas in oneOf (matches none)")
            } else if matching.count > 1 {
                let list = matching.map(String.init).joined(separator: ", ")
                fail("oneOf", "must match exactly one of the \(keywords.oneOf.count) schemas in oneOf (matches \(list))")
            }
        }
        if let negated = keywords.not, isValid(value, against: negated, at: path()) {
            fail("not", "must not match the schema in not")
        }
    }

    private func validateString(_ string: String, _ keywords: SchemaKeywords, _ fail: (String, String) -> Void) {
        // A string has at most one Unicode scalar per UTF-8 byte and at least one per four, so
        // most lengths are settled without counting scalars.
        let bytes = string.utf8.count
        let settled = (keywords.minLength.map { bytes / 4 >= $0 } ?? true) && (keywords.maxLength.map { bytes <= $0 } ?? true)
        if !settled {
            let length = string.unicodeScalars.count
            if let minimum = keywords.minLength, length < minimum {
                fail("minLength", "must be at least \(Self.plural(minimum, "character"))")
            }
            if let maximum = keywords.maxLength, length > maximum {
                fail("maxLength", "must be at most \(Self.plural(maximum, "character"))")
            }
        }
        if let pattern = keywords.pattern, !pattern.matches(string) {
            fail("pattern", "must match pattern \(pattern.source)")
        }
        if let format = keywords.format, !format.matches(string) {
            fail("format", "must be \(format.explanation) (format \(format.rawValue))")
        }
    }

    private func validateNumber(_ number: Double, _ keywords: SchemaKeywords, _ fail: (String, String) -> Void) {
        if let minimum = keywords.minimum, number < minimum {
            fail("minimum", "must be at least \(NumberFormatting.string(minimum))")
        }
        if let maximum = keywords.maximum, number > maximum {
            fail("maximum", "must be at most \(NumberFormatting.string(maximum))")
        }
        if let minimum = keywords.exclusiveMinimum, number <= minimum {
            fail("exclusiveMinimum", "must be greater than \(NumberFormatting.string(minimum))")
        }
        if let maximum = keywords.exclusiveMaximum, number >= maximum {
            fail("exclusiveMaximum", "must be less than \(NumberFormatting.string(maximum))")
        }
        if let divisor = keywords.multipleOf, !Self.isMultiple(number, of: divisor) {
            fail("multipleOf", "must be a multiple of \(NumberFormatting.string(divisor))")
        }
    }

    private func validateArray(_ elements: [JSONValue], _ keywords: SchemaKeywords, at path: @autoclosure () -> String, into violations: inout [JSONSchemaViolation]) {
        if let minimum = keywords.minItems, elements.count < minimum {
            violations.append(JSONSchemaViolation(path: path(), rule: "minItems", message: "must have at least \(Self.plural(minimum, "item"))"))
        }
        if let maximum = keywords.maxItems, elements.count > maximum {
            violations.append(JSONSchemaViolation(path: path(), rule: "maxItems", message: "must have at most \(Self.plural(maximum, "item"))"))
        }
        if keywords.uniqueItems, let (first, second) = Self.firstDuplicate(in: elements) {
            violations.append(JSONSchemaViolation(
                path: path(), rule: "uniqueItems", message: "must not contain duplicate items (items \(first) and \(second) are equal)"
            ))
        }
        if let items = keywords.items {
            for (index, element) in elements.enumerated() {
                validate(element, against: items, at: JSONPointer.appending(String(index), to: path()), into: &violations)
            }
        }
    }

    private func validateObject(
        _ members: [String: JSONValue], _ keywords: SchemaKeywords, at path: @autoclosure () -> String, into violations: inout [JSONSchemaViolation]
    ) {
        for name in keywords.required where members[name] == nil {
            violations.append(JSONSchemaViolation(path: path(), rule: "required", message: "missing required property '\(name)'", field: name))
        }
        if let minimum = keywords.minProperties, members.count < minimum {
            violations.append(JSONSchemaViolation(path: path(), rule: "minProperties", message: "must have at least \(Self.plural(minimum, "property", "properties"))"))
        }
        if let maximum = keywords.maxProperties, members.count > maximum {
            violations.append(JSONSchemaViolation(path: path(), rule: "maxProperties", message: "must have at most \(Self.plural(maximum, "property", "properties"))"))
        }
        for (name, schema) in keywords.properties {
            if let member = members[name] {
                validate(member, against: schema, at: JSONPointer.appending(name, to: path()), into: &violations)
            }
        }
        if let additional = keywords.additionalProperties {
            let undeclared = members.keys.filter { !keywords.declaredNames.contains($0) }
            for name in undeclared.sorted() {
                let memberPath = JSONPointer.appending(name, to: path())
                if case .always(false) = additional {
                    violations.append(JSONSchemaViolation(path: memberPath, rule: "additionalProperties", message: "property '\(name)' is not allowed"))
                } else {
                    validate(members[name]!, against: additional, at: memberPath, into: &violations)
                }
            }
        }
    }

    private static func plural(_ count: Int, _ singular: String, _ pluralForm: String? = nil) -> String {
        "\(count) \(count == 1 ? singular : pluralForm ?? singular + "s")"
    }

    private static func firstDuplicate(in elements: [JSONValue]) -> (Int, Int)? {
        for second in elements.indices {
            for first in 0..<second where elements[first] == elements[second] {
                return (first, second)
            }
        }
        return nil
    }

    /// Whether `value / divisor` is an integer, computed in decimal so that `19.99` is a multiple
    /// of `0.01`; falls back to binary with a small tolerance for numbers `Decimal` cannot hold.
    private static func isMultiple(_ value: Double, of divisor: Double) -> Bool {
        if let decimalValue = Decimal(string: String(value)), let decimalDivisor = Decimal(string: String(divisor)),
           !decimalValue.isNaN, !decimalDivisor.isNaN, !decimalDivisor.isZero {
            var quotient = decimalValue / decimalDivisor
            var rounded = Decimal()
            NSDecimalRound(&rounded, &quotient, 0, .plain)
            return !quotient.isNaN && rounded == quotient
        }
        let quotient = value / divisor
        guard quotient.isFinite else { return false }
        return abs(quotient - quotient.rounded()) <= 1e-9 * max(1, abs(quotient))
    }
}

// MARK: - Formats

private enum FormatChecks {
    /// RFC 3339 `date-time`: `2026-03-01T12:30:00Z`, with optional fraction and numeric offset.
    static func isDateTime(_ string: String) -> Bool {
        let bytes = Array(string.utf8)
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= bytes.count else { return nil }
            var result = 0
            for byte in bytes[start..<start + count] {
                guard isDigit(byte) else { return nil }
                result = result * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return result
        }
        func byte(_ index: Int, in allowed: String) -> Bool {
            index < bytes.count && allowed.utf8.contains(bytes[index])
        }
        guard let year = digits(0, 4), byte(4, in: "-"), let month = digits(5, 2), byte(7, in: "-"),
              let day = digits(8, 2), byte(10, in: "Tt"), let hour = digits(11, 2), byte(13, in: ":"),
              let minute = digits(14, 2), byte(16, in: ":"), let second = digits(17, 2)
        else { return false }
        var index = 19
        if byte(index, in: ".") {
            index += 1
            let fractionStart = index
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
            guard index > fractionStart else { return false }
        }
        if byte(index, in: "Zz") {
            index += 1
        } else if byte(index, in: "+-") {
            guard let offsetHour = digits(index + 1, 2), byte(index + 3, in: ":"), let offsetMinute = digits(index + 4, 2),
                  offsetHour <= 23, offsetMinute <= 59
            else { return false }
            index += 6
        } else {
            return false
        }
        return index == bytes.count && (1...12).contains(month) && day >= 1 && day <= daysInMonth(month, year: year)
            && hour <= 23 && minute <= 59 && second <= 60
    }

    /// `8-4-4-4-12` hexadecimal digits, in either case.
    static func isUUID(_ string: String) -> Bool {
        let bytes = Array(string.utf8)
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return false }
            } else {
                guard isHexDigit(byte) else { return false }
            }
        }
        return true
    }

    /// A simple check: `local@domain.tld`, no whitespace, a dot-free-at-the-ends local part of at
    /// most 64 bytes, and a domain of at least two letter-digit-hyphen labels.
    static func isEmail(_ string: String) -> Bool {
        guard let at = string.lastIndex(of: "@") else { return false }
        let local = string[..<at]
        let domain = string[string.index(after: at)...]
        guard !local.isEmpty, local.utf8.count <= 64, !local.hasPrefix("."), !local.hasSuffix("."), !local.contains(".."),
              local.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != "@" })
        else { return false }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        }
    }

    /// An absolute RFC 3986 URI: a scheme, a colon, then only URI characters and `%HH` escapes.
    static func isURI(_ string: String) -> Bool {
        let bytes = Array(string.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0, isLetter(bytes[0]),
              bytes[1..<colon].allSatisfy({ isAlphanumeric($0) || "+-.".utf8.contains($0) })
        else { return false }
        let allowed = "-._~:/?#[]@!$&'()*+,;=".utf8
        var index = colon + 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, isHexDigit(bytes[index + 1]), isHexDigit(bytes[index + 2]) else { return false }
                index += 3
            } else {
                guard isAlphanumeric(byte) || allowed.contains(byte) else { return false }
                index += 1
            }
        }
        return true
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isDigit(byte) || isLetter(byte)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    private static func daysInMonth(_ month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}
