import Foundation
import MingusRuntime
import Testing

/// Parses a schema written as a JSON string.
private func schema(_ json: String) throws -> JSONSchema {
    try JSONSchema(data: Data(json.utf8))
}

/// The violations of a body against a schema, both written as JSON strings.
private func violations(_ schemaJSON: String, _ body: String) throws -> [JSONSchemaViolation] {
    try schema(schemaJSON).validate(Data(body.utf8))
}

/// The rules that fail for a body against a schema.
private func rules(_ schemaJSON: String, _ body: String) throws -> [String] {
    try violations(schemaJSON, body).map(\.rule)
}

/// The error thrown when parsing a schema, if any.
private func parseError(_ json: String) -> JSONSchemaError? {
    do {
        _ = try schema(json)
        return nil
    } catch let error as JSONSchemaError {
        return error
    } catch {
        return nil
    }
}

@Suite("JSON Schema: types")
struct JSONSchemaTypeTests {
    @Test("each type accepts its values and refuses the others", arguments: [
        ("object", #"{"a": 1}"#, true), ("object", "[]", false),
        ("array", "[1, 2]", true), ("array", "{}", false),
        ("string", #""x""#, true), ("string", "1", false),
        ("integer", "3", true), ("integer", "3.0", true), ("integer", "-7", true),
        ("integer", "1.5", false), ("integer", "true", false), ("integer", #""3""#, false),
        ("number", "1.5", true), ("number", "3", true), ("number", "false", false), ("number", "null", false),
        ("boolean", "true", true), ("boolean", "false", true), ("boolean", "1", false), ("boolean", "0", false),
        ("null", "null", true), ("null", "0", false), ("null", #""""#, false),
    ])
    func singleType(type: String, body: String, valid: Bool) throws {
        let found = try violations(#"{"type": "\#(type)"}"#, body)
        #expect(found.isEmpty == valid, "type \(type) with \(body): \(found)")
        if !valid {
            #expect(found.map(\.rule) == ["type"])
        }
    }

    @Test("an array of types accepts any of them")
    func typeArray() throws {
        let schemaJSON = #"{"type": ["string", "null"]}"#
        #expect(try rules(schemaJSON, #""x""#).isEmpty)
        #expect(try rules(schemaJSON, "null").isEmpty)
        let found = try violations(schemaJSON, "12")
        #expect(found == [JSONSchemaViolation(path: "", rule: "type", message: "must be of type string or null (found integer)")])
    }

    @Test("booleans and numbers are told apart when built in Swift too")
    func nativeValues() throws {
        let integer = try schema(#"{"type": "integer"}"#)
        #expect(integer.validate(json: 3).isEmpty)
        #expect(integer.validate(json: 3.0).isEmpty)
        #expect(integer.validate(json: NSNumber(value: 1)).isEmpty)
        #expect(!integer.validate(json: true).isEmpty)
        #expect(!integer.validate(json: NSNumber(value: true)).isEmpty)
        #expect(!integer.validate(json: 1.5).isEmpty)
        let boolean = try schema(#"{"type": "boolean"}"#)
        #expect(boolean.validate(json: false).isEmpty)
        #expect(!boolean.validate(json: 0).isEmpty)
        #expect(!boolean.validate(json: 1).isEmpty)
    }

    @Test("true and 1 are different enum and const values")
    func booleanIsNotOne() throws {
        #expect(try rules(#"{"enum": [1]}"#, "true") == ["enum"])
        #expect(try rules(#"{"const": true}"#, "1") == ["const"])
        #expect(try rules(#"{"const": false}"#, "0") == ["const"])
        #expect(try rules(#"{"const": true}"#, "true").isEmpty)
    }
}

@Suite("JSON Schema: values")
struct JSONSchemaValueTests {
    @Test("enum")
    func enumKeyword() throws {
        let schemaJSON = #"{"enum": ["EUR", "USD", null, 2]}"#
        #expect(try rules(schemaJSON, #""EUR""#).isEmpty)
        #expect(try rules(schemaJSON, "null").isEmpty)
        #expect(try rules(schemaJSON, "2.0").isEmpty)
        let found = try violations(schemaJSON, #""GBP""#)
        #expect(found == [JSONSchemaViolation(path: "", rule: "enum", message: #"must be one of "EUR", "USD", null, 2"#)])
    }

    @Test("enum with structured values compares deeply")
    func structuredEnum() throws {
        let schemaJSON = #"{"enum": [{"a": [1, 2]}, [true]]}"#
        #expect(try rules(schemaJSON, #"{"a": [1, 2.0]}"#).isEmpty)
        #expect(try rules(schemaJSON, "[true]").isEmpty)
        #expect(try violations(schemaJSON, #"{"a": [2, 1]}"#).map(\.message) == ["must be one of the 2 values the schema allows"])
    }

    @Test("const")
    func constKeyword() throws {
        #expect(try rules(#"{"const": "v1"}"#, #""v1""#).isEmpty)
        #expect(try violations(#"{"const": "v1"}"#, #""v2""#).map(\.message) == [#"must be "v1""#])
        #expect(try rules(#"{"const": null}"#, "null").isEmpty)
        #expect(try rules(#"{"const": null}"#, "0") == ["const"])
        #expect(try rules(#"{"const": {"k": [1]}}"#, #"{"k": [1]}"#).isEmpty)
        #expect(try rules(#"{"const": {"k": [1]}}"#, #"{"k": [1], "x": 0}"#) == ["const"])
    }
}

@Suite("JSON Schema: strings")
struct JSONSchemaStringTests {
    @Test("minLength and maxLength count Unicode scalars")
    func lengths() throws {
        let schemaJSON = #"{"minLength": 2, "maxLength": 3}"#
        #expect(try rules(schemaJSON, #""ab""#).isEmpty)
        #expect(try rules(schemaJSON, #""abc""#).isEmpty)
        #expect(try violations(schemaJSON, #""a""#) == [JSONSchemaViolation(path: "", rule: "minLength", message: "must be at least 2 characters")])
        #expect(try violations(schemaJSON, #""abcd""#) == [JSONSchemaViolation(path: "", rule: "maxLength", message: "must be at most 3 characters")])
        #expect(try rules(schemaJSON, #""żółw""#) == ["maxLength"])
        #expect(try rules(#"{"maxLength": 1}"#, #""😀""#).isEmpty)
        #expect(try violations(#"{"minLength": 1}"#, #""""#).map(\.message) == ["must be at least 1 character"])
    }

    @Test("length keywords ignore values that are not strings")
    func lengthsIgnoreOtherTypes() throws {
        #expect(try rules(#"{"maxLength": 1}"#, "12345").isEmpty)
    }

    @Test("pattern is unanchored")
    func pattern() throws {
        #expect(try rules(#"{"pattern": "[0-9]"}"#, #""abc1def""#).isEmpty)
        #expect(try rules(#"{"pattern": "^[0-9]+$"}"#, #""12a""#) == ["pattern"])
        #expect(try rules(#"{"pattern": "^[A-Z]{3}$"}"#, #""EUR""#).isEmpty)
        #expect(try rules(#"{"pattern": "^é+$"}"#, #""éé""#).isEmpty)
    }

    @Test("date-time format (RFC 3339)", arguments: [
        ("2026-03-01T12:30:00Z", true), ("2026-03-01t12:30:00z", true), ("2026-03-01T12:30:00.123456+02:00", true),
        ("2028-02-29T00:00:00-05:30", true), ("2026-12-31T23:59:60Z", true),
        ("2026-03-01", false), ("2026-03-01 12:30:00Z", false), ("2026-03-01T12:30:00", false),
        ("2027-02-29T00:00:00Z", false), ("2026-13-01T00:00:00Z", false), ("2026-04-31T00:00:00Z", false),
        ("2026-03-01T24:00:00Z", false), ("2026-03-01T12:60:00Z", false), ("2026-03-01T12:30:00.Z", false),
        ("2026-03-01T12:30:00+2:00", false), ("2026-03-01T12:30:00+02:00x", false),
    ])
    func dateTime(value: String, valid: Bool) throws {
        #expect(try rules(#"{"format": "date-time"}"#, #""\#(value)""#).isEmpty == valid, "\(value)")
    }

    @Test("uuid format", arguments: [
        ("0b3a3c4e-8f6d-4c1a-9d2e-7f0e1a2b3c4d", true), ("0B3A3C4E-8F6D-4C1A-9D2E-7F0E1A2B3C4D", true),
        ("0b3a3c4e8f6d4c1a9d2e7f0e1a2b3c4d", false), ("0b3a3c4e-8f6d-4c1a-9d2e-7f0e1a2b3c4", false),
        ("0b3a3c4e-8f6d-4c1a-9d2e-7f0e1a2b3c4g", false), ("{0b3a3c4e-8f6d-4c1a-9d2e-7f0e1a2b3c4d}", false),
    ])
    func uuid(value: String, valid: Bool) throws {
        #expect(try rules(#"{"format": "uuid"}"#, #""\#(value)""#).isEmpty == valid, "\(value)")
    }

    @Test("email format", arguments: [
        ("ada@example.com", true), ("first.last+tag@mail.example.co.uk", true),
        ("ada@localhost", false), ("@example.com", false), ("ada@", false), ("a da@example.com", false),
        ("ada@example..com", false), (".ada@example.com", false), ("ada@-example.com", false), ("ada.example.com", false),
    ])
    func email(value: String, valid: Bool) throws {
        #expect(try rules(#"{"format": "email"}"#, #""\#(value)""#).isEmpty == valid, "\(value)")
    }

    @Test("uri format", arguments: [
        ("https://example.com/path?q=1#frag", true), ("urn:isbn:0451450523", true), ("mailto:ada@example.com", true),
        ("https://example.com/a%20b", true),
        ("/relative/path", false), ("example.com", false), ("https://example.com/a b", false),
        ("https://example.com/%zz", false), ("1http://example.com", false), ("https://exämple.com", false),
    ])
    func uri(value: String, valid: Bool) throws {
        #expect(try rules(#"{"format": "uri"}"#, #""\#(value)""#).isEmpty == valid, "\(value)")
    }

    @Test("format messages name the format")
    func formatMessage() throws {
        #expect(try violations(#"{"format": "uuid"}"#, #""nope""#).map(\.message) == ["must be a UUID (format uuid)"])
    }
}

@Suite("JSON Schema: numbers")
struct JSONSchemaNumberTests {
    @Test("minimum and maximum are inclusive")
    func inclusiveBounds() throws {
        let schemaJSON = #"{"minimum": 1, "maximum": 12}"#
        #expect(try rules(schemaJSON, "1").isEmpty)
        #expect(try rules(schemaJSON, "12").isEmpty)
        #expect(try violations(schemaJSON, "0") == [JSONSchemaViolation(path: "", rule: "minimum", message: "must be at least 1")])
        #expect(try violations(schemaJSON, "12.5") == [JSONSchemaViolation(path: "", rule: "maximum", message: "must be at most 12")])
    }

    @Test("exclusiveMinimum and exclusiveMaximum are exclusive")
    func exclusiveBounds() throws {
        let schemaJSON = #"{"exclusiveMinimum": 0, "exclusiveMaximum": 1.5}"#
        #expect(try rules(schemaJSON, "0.001").isEmpty)
        #expect(try violations(schemaJSON, "0").map(\.message) == ["must be greater than 0"])
        #expect(try violations(schemaJSON, "1.5").map(\.message) == ["must be less than 1.5"])
    }

    @Test("multipleOf is exact for decimal amounts")
    func multipleOf() throws {
        #expect(try rules(#"{"multipleOf": 0.01}"#, "19.99").isEmpty)
        #expect(try rules(#"{"multipleOf": 0.01}"#, "0.07").isEmpty)
        #expect(try violations(#"{"multipleOf": 0.01}"#, "19.995").map(\.message) == ["must be a multiple of 0.01"])
        #expect(try rules(#"{"multipleOf": 5}"#, "25").isEmpty)
        #expect(try rules(#"{"multipleOf": 5}"#, "26") == ["multipleOf"])
        #expect(try rules(#"{"multipleOf": 0.5}"#, "1e300").isEmpty)
    }

    @Test("number keywords ignore values that are not numbers")
    func numberKeywordsIgnoreOtherTypes() throws {
        #expect(try rules(#"{"minimum": 10}"#, #""1""#).isEmpty)
        #expect(try rules(#"{"minimum": 10}"#, "true").isEmpty)
    }
}

@Suite("JSON Schema: arrays and objects")
struct JSONSchemaContainerTests {
    @Test("items validates every item at its index")
    func items() throws {
        let found = try violations(#"{"items": {"type": "integer", "minimum": 0}}"#, "[1, -2, \"x\"]")
        #expect(found == [
            JSONSchemaViolation(path: "/1", rule: "minimum", message: "must be at least 0"),
            JSONSchemaViolation(path: "/2", rule: "type", message: "must be of type integer (found string)"),
        ])
        #expect(found[0].field == "1")
    }

    @Test("minItems and maxItems")
    func itemCounts() throws {
        let schemaJSON = #"{"minItems": 1, "maxItems": 2}"#
        #expect(try rules(schemaJSON, "[1]").isEmpty)
        #expect(try violations(schemaJSON, "[]").map(\.message) == ["must have at least 1 item"])
        #expect(try violations(schemaJSON, "[1, 2, 3]").map(\.message) == ["must have at most 2 items"])
    }

    @Test("uniqueItems compares values, not spellings")
    func uniqueItems() throws {
        #expect(try rules(#"{"uniqueItems": true}"#, "[1, true, \"1\", [1], {\"a\": 1}]").isEmpty)
        #expect(try violations(#"{"uniqueItems": true}"#, "[1, 2, 1.0]").map(\.message) == ["must not contain duplicate items (items 0 and 2 are equal)"])
        #expect(try rules(#"{"uniqueItems": true}"#, #"[{"a": 1, "b": 2}, {"b": 2, "a": 1}]"#) == ["uniqueItems"])
        #expect(try rules(#"{"uniqueItems": false}"#, "[1, 1]").isEmpty)
    }

    @Test("required names the missing property at the object's path")
    func required() throws {
        let found = try violations(#"{"required": ["amount", "currency"]}"#, #"{"currency": "EUR"}"#)
        #expect(found == [JSONSchemaViolation(path: "", rule: "required", message: "missing required property 'amount'", field: "amount")])
        #expect(found[0].field == "amount")
        #expect(found[0].description == "(root): missing required property 'amount'")
    }

    @Test("properties validates present properties only")
    func properties() throws {
        let schemaJSON = #"{"properties": {"amount": {"type": "integer"}, "note": {"type": "string"}}}"#
        #expect(try rules(schemaJSON, #"{"amount": 5}"#).isEmpty)
        #expect(try violations(schemaJSON, #"{"amount": "5"}"#).map(\.path) == ["/amount"])
    }

    @Test("additionalProperties false refuses undeclared properties at their path")
    func additionalPropertiesFalse() throws {
        let schemaJSON = #"{"properties": {"a": {}}, "additionalProperties": false}"#
        #expect(try rules(schemaJSON, #"{"a": 1}"#).isEmpty)
        let found = try violations(schemaJSON, #"{"a": 1, "b": 2, "c/d": 3}"#)
        #expect(found == [
            JSONSchemaViolation(path: "/b", rule: "additionalProperties", message: "property 'b' is not allowed"),
            JSONSchemaViolation(path: "/c~1d", rule: "additionalProperties", message: "property 'c/d' is not allowed"),
        ])
        #expect(found[1].field == "c/d")
    }

    @Test("additionalProperties as a schema validates undeclared properties")
    func additionalPropertiesSchema() throws {
        let schemaJSON = #"{"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}"#
        #expect(try rules(schemaJSON, #"{"a": "x", "b": 2}"#).isEmpty)
        #expect(try violations(schemaJSON, #"{"b": "2"}"#).map(\.path) == ["/b"])
        #expect(try rules(#"{"additionalProperties": true}"#, #"{"z": 1}"#).isEmpty)
    }

    @Test("minProperties and maxProperties")
    func propertyCounts() throws {
        let schemaJSON = #"{"minProperties": 1, "maxProperties": 2}"#
        #expect(try rules(schemaJSON, #"{"a": 1}"#).isEmpty)
        #expect(try violations(schemaJSON, "{}").map(\.message) == ["must have at least 1 property"])
        #expect(try violations(schemaJSON, #"{"a": 1, "b": 2, "c": 3}"#).map(\.message) == ["must have at most 2 properties"])
    }

    @Test("nested paths are JSON Pointers")
    func nestedPaths() throws {
        let schemaJSON = #"""
        {
          "type": "object",
          "required": ["card"],
          "properties": {
            "card": {
              "type": "object",
              "required": ["number", "expiry_month"],
              "properties": {
                "expiry_month": {"type": "integer", "minimum": 1, "maximum": 12},
                "tags": {"type": "array", "items": {"type": "object", "required": ["k"]}}
              }
            }
          }
        }
        """#
        let found = try violations(schemaJSON, #"{"card": {"expiry_month": 13, "tags": [{"k": 1}, {}]}}"#)
        #expect(found == [
            JSONSchemaViolation(path: "/card", rule: "required", message: "missing required property 'number'", field: "number"),
            JSONSchemaViolation(path: "/card/expiry_month", rule: "maximum", message: "must be at most 12"),
            JSONSchemaViolation(path: "/card/tags/1", rule: "required", message: "missing required property 'k'", field: "k"),
        ])
        #expect(found[1].field == "expiry_month")
        #expect(found[1].description == "/card/expiry_month: must be at most 12")
    }
}

@Suite("JSON Schema: combinators and references")
struct JSONSchemaCombinatorTests {
    @Test("allOf reports every failing branch")
    func allOf() throws {
        let schemaJSON = #"{"allOf": [{"type": "string"}, {"minLength": 3}]}"#
        #expect(try rules(schemaJSON, #""abc""#).isEmpty)
        #expect(try rules(schemaJSON, #""ab""#) == ["minLength"])
    }

    @Test("anyOf needs one matching branch")
    func anyOf() throws {
        let schemaJSON = #"{"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]}"#
        #expect(try rules(schemaJSON, #""x""#).isEmpty)
        #expect(try rules(schemaJSON, "4").isEmpty)
        #expect(try violations(schemaJSON, "-1") == [
            JSONSchemaViolation(path: "", rule: "anyOf", message: "must match at least one of the 2 schemas in anyOf"),
        ])
    }

    @Test("oneOf needs exactly one matching branch")
    func oneOf() throws {
        let schemaJSON = #"{"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 10}]}"#
        #expect(try rules(schemaJSON, "3").isEmpty)
        #expect(try rules(schemaJSON, "10.5").isEmpty)
        #expect(try violations(schemaJSON, "12").map(\.message) == ["must match exactly one of the 2 schemas in oneOf (matches 0, 1)"])
        #expect(try violations(schemaJSON, "2.5").map(\.message) == ["must match exactly one of the 2 schemas in oneOf (matches none)"])
    }

    @Test("not refuses what its schema accepts")
    func not() throws {
        #expect(try rules(#"{"not": {"type": "null"}}"#, "1").isEmpty)
        #expect(try violations(#"{"not": {"type": "null"}}"#, "null") == [
            JSONSchemaViolation(path: "", rule: "not", message: "must not match the schema in not"),
        ])
    }

    @Test("boolean schemas")
    func booleanSchemas() throws {
        #expect(try rules("true", #"{"anything": [1]}"#).isEmpty)
        #expect(try rules("false", "null") == ["false"])
        #expect(try violations(#"{"properties": {"gone": false}}"#, #"{"gone": 1}"#).map(\.path) == ["/gone"])
    }

    @Test("$ref to $defs, with siblings and recursion")
    func references() throws {
        let schemaJSON = #"""
        {
          "$defs": {
            "money": {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}},
            "node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}, "value": {"type": "string"}}}
          },
          "properties": {
            "price": {"$ref": "#/$defs/money", "maxProperties": 2},
            "tree": {"$ref": "#/$defs/node"}
          }
        }
        """#
        #expect(try rules(schemaJSON, #"{"price": {"amount": 5}, "tree": {"child": {"child": {"value": "x"}}}}"#).isEmpty)
        #expect(try violations(schemaJSON, #"{"price": {"amount": "5"}}"#).map(\.path) == ["/price/amount"])
        #expect(try rules(schemaJSON, #"{"price": {"amount": 5, "a": 1, "b": 2}}"#) == ["maxProperties"])
        #expect(try violations(schemaJSON, #"{"tree": {"child": {"child": {"value": 1}}}}"#).map(\.path) == ["/tree/child/child/value"])
    }

    @Test("references to escaped definition names")
    func escapedReference() throws {
        let schemaJSON = ##"{"$defs": {"a/b": {"type": "string"}}, "$ref": "#/$defs/a~1b"}"##
        #expect(try rules(schemaJSON, #""x""#).isEmpty)
        #expect(try rules(schemaJSON, "1") == ["type"])
    }
}

@Suite("JSON Schema: parsing")
struct JSONSchemaParsingTests {
    @Test("unsupported keywords are refused, naming the keyword and where it is")
    func unsupportedKeyword() {
        let error = parseError(#"{"properties": {"card": {"type": "object", "patternProperties": {}}}}"#)
        #expect(error == .unsupportedKeyword(keyword: "patternProperties", path: "/properties/card/patternProperties"))
        #expect(error?.description == "unsupported JSON Schema keyword 'patternProperties' at #/properties/card/patternProperties: it would not be checked")
        for keyword in ["if", "prefixItems", "contains", "dependentRequired", "unevaluatedProperties", "propertyNames", "$anchor"] {
            #expect(parseError(#"{"\#(keyword)": {}}"#) == .unsupportedKeyword(keyword: keyword, path: "/\(keyword)"))
        }
    }

    @Test("annotation keywords are ignored")
    func annotations() throws {
        let schemaJSON = #"""
        {
          "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://example.com/x.json",
          "title": "T", "description": "D", "examples": [1], "default": 1, "$comment": "c",
          "deprecated": false, "readOnly": true, "writeOnly": false, "type": "integer"
        }
        """#
        #expect(try rules(schemaJSON, "1").isEmpty)
        #expect(try rules(schemaJSON, "1.5") == ["type"])
    }

    @Test("unknown formats are refused")
    func unknownFormat() {
        guard case .invalidKeywordValue(let keyword, let path, let reason) = parseError(#"{"format": "ipv4"}"#) else {
            Issue.record("expected invalidKeywordValue")
            return
        }
        #expect(keyword == "format")
        #expect(path == "/format")
        #expect(reason.contains("ipv4"))
    }

    @Test("keyword values of the wrong kind are refused", arguments: [
        #"{"type": "float"}"#, #"{"type": []}"#, #"{"type": ["string", "string"]}"#, #"{"minLength": -1}"#,
        #"{"maxLength": 1.5}"#, #"{"maxItems": "3"}"#, #"{"pattern": "("}"#, #"{"pattern": 1}"#,
        #"{"multipleOf": 0}"#, #"{"minimum": "1"}"#, #"{"exclusiveMinimum": true}"#, #"{"required": [1]}"#,
        #"{"enum": []}"#, #"{"items": [{}]}"#, #"{"uniqueItems": 1}"#, #"{"anyOf": []}"#, #"{"allOf": {}}"#,
        #"{"properties": []}"#, #"{"properties": {"a": 1}}"#, #"{"not": "x"}"#, #"{"items": {"$defs": {}}}"#,
    ])
    func invalidValues(schemaJSON: String) {
        let error = parseError(schemaJSON)
        #expect(error != nil, "\(schemaJSON)")
        #expect(error?.description.isEmpty == false)
    }

    @Test("references must be local and resolve")
    func unresolvedReferences() {
        #expect(parseError(##"{"$ref": "#/$defs/missing"}"##) == .unresolvedReference(reference: "#/$defs/missing", path: "/$ref"))
        #expect(parseError(#"{"$ref": "other.json#/$defs/a"}"#) == .unresolvedReference(reference: "other.json#/$defs/a", path: "/$ref"))
        #expect(parseError(##"{"$defs": {"a": {}}, "$ref": "#/properties/a"}"##) == .unresolvedReference(reference: "#/properties/a", path: "/$ref"))
    }

    @Test("reference cycles that never reach a property are refused")
    func referenceCycles() throws {
        #expect(parseError(##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}}"##) == .referenceCycle(definition: "a"))
        #expect(parseError(##"{"$defs": {"a": {"not": {"$ref": "#/$defs/a"}}}}"##) == .referenceCycle(definition: "a"))
        _ = try schema(##"{"$defs": {"a": {"items": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"}"##)
    }

    @Test("a schema that is not JSON is refused")
    func schemaNotJSON() {
        #expect(parseError("{type: string}") == .notJSON)
        #expect(parseError("12") == .invalidSchema(path: ""))
    }

    @Test("a schema file is read from a URL")
    func contentsOfURL() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("schema-\(UUID().uuidString).json")
        try Data(#"{"type": "string"}"#.utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let loaded = try JSONSchema(contentsOf: url)
        #expect(loaded.validate(Data(#""x""#.utf8)).isEmpty)
        #expect(throws: (any Error).self) { try JSONSchema(contentsOf: url.appendingPathExtension("missing")) }
    }
}

@Suite("JSON Schema: bodies")
struct JSONSchemaBodyTests {
    @Test("messages never contain the offending value")
    func messagesDoNotLeakValues() throws {
        let cardNumber = "4111111111111111"
        let schemaJSON = #"""
        {"properties": {"number": {"type": "string", "pattern": "^[0-9]{4}$", "maxLength": 12, "format": "uuid",
                                   "enum": ["a"], "const": "a", "not": {"type": "string"}}}}
        """#
        let found = try violations(schemaJSON, #"{"number": "\#(cardNumber)"}"#)
        #expect(Set(found.map(\.rule)) == ["pattern", "maxLength", "format", "enum", "const", "not"])
        for violation in found {
            #expect(!violation.message.contains(cardNumber))
            #expect(!violation.description.contains(cardNumber))
            #expect(!violation.message.contains("4111"))
        }
        #expect(found.contains(JSONSchemaViolation(path: "/number", rule: "pattern", message: "must match pattern ^[0-9]{4}$")))
        #expect(found.contains(JSONSchemaViolation(path: "/number", rule: "maxLength", message: "must be at most 12 characters")))

        let numeric = try violations(#"{"type": "string", "maximum": 1}"#, cardNumber)
        #expect(numeric.allSatisfy { !$0.message.contains(cardNumber) })
    }

    @Test("a body that is not JSON gives one violation at the root")
    func invalidJSON() throws {
        let found = try schema(#"{"type": "object"}"#).validate(Data("{\"amount\": ".utf8))
        #expect(found == [JSONSchemaViolation(path: "", rule: "json", message: "is not valid JSON")])
        #expect(found[0].field == "")
    }

    @Test("top-level scalars are bodies too")
    func topLevelScalars() throws {
        #expect(try rules(#"{"type": "string"}"#, #""x""#).isEmpty)
        #expect(try rules(#"{"type": "null"}"#, "null").isEmpty)
    }

    @Test("a Swift value that cannot be JSON is reported at its path")
    func notAJSONValue() throws {
        let found = try schema("true").validate(json: ["when": [Date()]] as [String: Any])
        #expect(found.count == 1)
        #expect(found.first?.path == "/when/0")
        #expect(found.first?.rule == "json")
    }
}
