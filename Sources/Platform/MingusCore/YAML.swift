// A small, strict YAML subset for configuration files: block mappings and sequences, one-line flow
// collections, plain and quoted scalars. Everything else is refused with the line that uses it, so
// a configuration error can always say where it is.

/// A node of a parsed YAML document, with the 1-based line where it starts.
public struct YAMLNode: Sendable, Equatable {
    /// What a node holds. Scalars stay text: callers convert them.
    public enum Value: Sendable, Equatable {
        /// An empty value, `~` or `null`.
        case null
        /// A plain or quoted scalar, quotes removed and escapes applied.
        case scalar(String)
        case sequence([YAMLNode])
        /// Entries in file order.
        case mapping([YAMLEntry])
    }

    public var value: Value
    public var line: Int

    public init(value: Value, line: Int) {
        self.value = value
        self.line = line
    }

    /// The text of a scalar, nil for anything else (null included).
    public var scalar: String? {
        if case .scalar(let text) = value { return text }
        return nil
    }

    /// The items of a sequence, nil for anything else.
    public var sequence: [YAMLNode]? {
        if case .sequence(let items) = value { return items }
        return nil
    }

    /// The entries of a mapping, nil for anything else.
    public var mapping: [YAMLEntry]? {
        if case .mapping(let entries) = value { return entries }
        return nil
    }

    /// The value of the first entry named `key`, when this node is a mapping that has one.
    public subscript(key: String) -> YAMLNode? {
        mapping?.first { $0.key == key }?.value
    }
}

/// One `key: value` of a mapping, with the key's line.
public struct YAMLEntry: Sendable, Equatable {
    public var key: String
    public var line: Int
    public var value: YAMLNode

    public init(key: String, line: Int, value: YAMLNode) {
        self.key = key
        self.line = line
        self.value = value
    }
}

/// Why a document cannot be read, and where.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { "line \(line): \(message)" }
}

/// The parser's entry point.
public enum YAML: Sendable {
    /// Parses one document. An empty document (only comments/blank lines) is `.null` at line 1.
    public static func parse(_ text: String) throws(YAMLError) -> YAMLNode {
        var parser = BlockParser(lines: try contentLines(of: text))
        return try parser.document()
    }

    /// The lines that hold content, without blank and comment lines and document markers.
    private static func contentLines(of text: String) throws(YAMLError) -> [Line] {
        var lines: [Line] = []
        var started = false  // a leading `---` was seen
        var end: Int?  // the line of `...` or of a second `---`
        let raw = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        for (offset, slice) in raw.enumerated() {
            let number = offset + 1
            let chars = Array(slice.drop { $0 == "\u{FEFF}" && offset == 0 })
            let indent = chars.prefix { $0 == " " }.count
            guard let first = chars.firstIndex(where: { !$0.isBlank }), chars[first] != "#" else { continue }
            if first != indent { throw YAMLError(line: number, message: "tabs are not allowed for indentation") }
            let text = Array(chars[indent...])
            if indent == 0 {
                if text[0] == "%" { throw YAMLError(line: number, message: "directives (%YAML, %TAG) are not supported") }
                if text.starts(marker: "---") {
                    if started || !lines.isEmpty { end = end ?? number } else { started = true }
                    let rest = text.dropFirst(3).drop { $0.isBlank }
                    if let next = rest.first, next != "#" {
                        throw YAMLError(line: number, message: "content on the '---' line is not supported")
                    }
                    continue
                }
                if text.starts(marker: "...") {
                    end = end ?? number
                    continue
                }
            }
            if let end { throw YAMLError(line: end, message: "only one document is supported") }
            lines.append(Line(number: number, indent: indent, text: text))
        }
        return lines
    }
}

/// A line with content: its number, its indentation and the text after the indentation.
private struct Line {
    var number: Int
    var indent: Int
    var text: [Character]

    /// Whether the line is a block sequence item (`- ...` or a lone `-`).
    var isItem: Bool { text.first == "-" && (text.count == 1 || text[1].isBlank) }
}

extension Character {
    fileprivate var isBlank: Bool { self == " " || self == "\t" }
}

extension [Character] {
    /// Whether the line is a document marker such as `---`, alone or followed by blanks.
    fileprivate func starts(marker: String) -> Bool {
        starts(with: marker) && (count == marker.count || self[marker.count].isBlank)
    }
}

/// Whether a plain key is made of letters, digits, `_`, `-`, `.` and `/` only.
private func isValidPlainKey(_ key: String) -> Bool {
    !key.isEmpty && key.allSatisfy { $0.isLetter || $0.isNumber || "_-./".contains($0) }
}

/// Builds nodes from indented lines; the text inside a line is read by a `Cursor`.
private struct BlockParser {
    var lines: [Line]
    var index = 0

    var current: Line? { index < lines.count ? lines[index] : nil }

    mutating func document() throws(YAMLError) -> YAMLNode {
        guard let first = current else { return YAMLNode(value: .null, line: 1) }
        let node = try block(indent: first.indent)
        if let next = current { throw YAMLError(line: next.number, message: "inconsistent indentation") }
        return node
    }

    /// The node that starts on the current line, whose own lines are at `indent`.
    mutating func block(indent: Int) throws(YAMLError) -> YAMLNode {
        let line = lines[index]
        if line.isItem {
            let node = try sequence(indent: indent)
            if let next = current, next.indent == indent {
                throw YAMLError(line: next.number, message: "cannot mix sequence items and mapping keys at the same level")
            }
            return node
        }
        if try key(of: line) != nil { return try mapping(indent: indent) }
        // A lone scalar or flow collection, such as a value written on the line after its key.
        index += 1
        var cursor = Cursor(line)
        guard let (node, kind) = try cursor.value() else { return YAMLNode(value: .null, line: line.number) }
        if let next = current, next.indent == indent, (try? key(of: next)) != nil {
            throw YAMLError(line: line.number, message: "expected 'key: value'")
        }
        try refuseContinuation(of: kind, deeperThan: indent - 1)
        return node
    }

    /// A block mapping whose keys are at `indent`.
    mutating func mapping(indent: Int) throws(YAMLError) -> YAMLNode {
        let start = lines[index].number
        var entries: [YAMLEntry] = []
        while let line = current, line.indent == indent {
            if line.isItem {
                throw YAMLError(line: line.number, message: "cannot mix sequence items and mapping keys at the same level")
            }
            var cursor = Cursor(line)
            guard let (key, column) = try key(of: line) else {
                _ = try cursor.value()  // a more precise error when the line uses an unsupported feature
                throw YAMLError(line: line.number, message: "expected 'key: value'")
            }
            if let first = entries.first(where: { $0.key == key }) {
                throw YAMLError(line: line.number, message: "duplicate key '\(key)' (first on line \(first.line))")
            }
            index += 1
            cursor.position = column
            let value: YAMLNode
            if let (node, kind) = try cursor.value() {
                value = node
                try refuseContinuation(of: kind, deeperThan: indent)
            } else if let next = current, next.indent > indent {
                value = try block(indent: next.indent)
            } else if let next = current, next.indent == indent, next.isItem {
                value = try sequence(indent: indent)  // `key:` then `- item` at the key's indentation
            } else {
                value = YAMLNode(value: .null, line: line.number)
            }
            entries.append(YAMLEntry(key: key, line: line.number, value: value))
            if let next = current, next.indent > indent {
                throw YAMLError(line: next.number, message: "inconsistent indentation")
            }
        }
        return YAMLNode(value: .mapping(entries), line: start)
    }

    /// A block sequence whose `-` are at `indent`.
    mutating func sequence(indent: Int) throws(YAMLError) -> YAMLNode {
        let start = lines[index].number
        var items: [YAMLNode] = []
        while let line = current, line.indent == indent, line.isItem {
            var column = 1
            while column < line.text.count, line.text[column].isBlank {
                if line.text[column] == "\t" {
                    throw YAMLError(line: line.number, message: "tabs are not allowed for indentation")
                }
                column += 1
            }
            let rest = Line(number: line.number, indent: indent + column, text: Array(line.text[column...]))
            if rest.isItem {
                throw YAMLError(line: line.number, message: "nested sequences on one line (- -) are not supported")
            }
            if try key(of: rest) != nil {
                // A compact mapping: its next keys are at the column of the first one.
                lines[index] = rest
                items.append(try mapping(indent: rest.indent))
            } else {
                index += 1
                var cursor = Cursor(rest)
                if let (node, kind) = try cursor.value() {
                    items.append(node)
                    try refuseContinuation(of: kind, deeperThan: indent)
                } else if let next = current, next.indent > indent {
                    items.append(try block(indent: next.indent))
                } else {
                    items.append(YAMLNode(value: .null, line: line.number))
                }
            }
            if let next = current, next.indent > indent {
                throw YAMLError(line: next.number, message: "inconsistent indentation")
            }
        }
        return YAMLNode(value: .sequence(items), line: start)
    }

    /// Refuses a more indented line after a value that was complete on its own line.
    func refuseContinuation(of kind: Cursor.Kind, deeperThan indent: Int) throws(YAMLError) {
        guard let next = current, next.indent > indent else { return }
        let structural = next.isItem || (try? key(of: next)) != nil
        throw YAMLError(
            line: next.number,
            message: kind == .plain && !structural ? "multi-line plain scalars are not supported" : "unexpected indentation")
    }

    /// The key of a `key: value` line and the column after its `:`, or nil when the line is no such line.
    func key(of line: Line) throws(YAMLError) -> (name: String, valueColumn: Int)? {
        let text = line.text
        guard let first = text.first else { return nil }
        var cursor = Cursor(line)
        if first == "?" && cursor.isBlankOrEnd(at: 1) {
            throw YAMLError(line: line.number, message: "complex keys (?) are not supported")
        }
        if first == "\"" || first == "'" {
            let name = try cursor.quoted(inFlow: false)
            cursor.skipBlanks()
            guard cursor.peek == ":", cursor.isBlankOrEnd(at: cursor.position + 1) else { return nil }
            return (name, cursor.position + 1)
        }
        if "[{&*!|>%@`#".contains(first) { return nil }
        for i in text.indices {
            if text[i] == "#" && i > 0 && text[i - 1].isBlank { return nil }
            if text[i] == ":" && cursor.isBlankOrEnd(at: i + 1) {
                let name = String(text[..<i].reversed().drop { $0.isBlank }.reversed())
                guard isValidPlainKey(name) else {
                    let message = name.isEmpty ? "expected a key before ':'" : "invalid key '\(name)' (quote it)"
                    throw YAMLError(line: line.number, message: message)
                }
                return (name, i + 1)
            }
        }
        return nil
    }
}

/// Reads scalars and flow collections inside one line.
private struct Cursor {
    enum Kind { case plain, quoted, flow }

    let text: [Character]
    let line: Int
    var position = 0

    init(_ line: Line) {
        text = line.text
        self.line = line.number
    }

    var peek: Character? { position < text.count ? text[position] : nil }

    /// Whether nothing but a comment is left (`#` starts one only after a blank or at the start).
    var atEnd: Bool { peek == nil || (peek == "#" && (position == 0 || text[position - 1].isBlank)) }

    func isBlankOrEnd(at offset: Int) -> Bool { offset >= text.count || text[offset].isBlank }

    mutating func skipBlanks() {
        while peek?.isBlank == true { position += 1 }
    }

    func error(_ message: String) -> YAMLError { YAMLError(line: line, message: message) }

    /// The value on the rest of the line, or nil when only blanks or a comment are left.
    mutating func value() throws(YAMLError) -> (YAMLNode, Kind)? {
        skipBlanks()
        if atEnd { return nil }
        let (node, kind) = try self.node(inFlow: false)
        skipBlanks()
        if !atEnd {
            throw error(kind == .flow ? "unexpected text after flow collection" : "unexpected text after closing quote")
        }
        return (node, kind)
    }

    mutating func node(inFlow: Bool) throws(YAMLError) -> (YAMLNode, Kind) {
        let first = peek ?? " "
        switch first {
        case "\"", "'": return (YAMLNode(value: .scalar(try quoted(inFlow: inFlow)), line: line), .quoted)
        case "[": return (try flowSequence(), .flow)
        case "{": return (try flowMapping(), .flow)
        case "&", "*": throw error("anchors and aliases are not supported")
        case "!": throw error("tags are not supported")
        case "|", ">": throw error("block scalars (| and >) are not supported")
        case "?" where isBlankOrEnd(at: position + 1): throw error("complex keys (?) are not supported")
        case "-" where isBlankOrEnd(at: position + 1): throw error("a sequence item cannot start here")
        case "%", "@", "`", "#", ",", "]", "}": throw error("'\(first)' cannot start a plain scalar (quote it)")
        default:
            let text = try plain(inFlow: inFlow)
            let isNull = ["~", "null", "Null", "NULL"].contains(text)
            return (YAMLNode(value: isNull ? .null : .scalar(text), line: line), .plain)
        }
    }

    /// A plain scalar: up to a comment, or in flow up to `,[]{}` or a `:` that separates a value.
    mutating func plain(inFlow: Bool) throws(YAMLError) -> String {
        let start = position
        while let char = peek, !atEnd {
            if inFlow && ",[]{}".contains(char) { break }
            if char == ":" && (isBlankOrEnd(at: position + 1) || (inFlow && ",[]{}".contains(text[position + 1]))) {
                if inFlow { break }
                throw error("a plain scalar cannot contain ': ' (quote it)")
            }
            position += 1
        }
        var end = position
        while end > start && text[end - 1].isBlank { end -= 1 }
        return String(text[start..<end])
    }

    /// A single- or double-quoted scalar, which must be followed by a blank, `:`, the end, or in flow `,]}`.
    mutating func quoted(inFlow: Bool) throws(YAMLError) -> String {
        let quote = text[position]
        let unterminated = quote == "\"" ? "unterminated double-quoted string" : "unterminated single-quoted string"
        position += 1
        var result = ""
        while true {
            guard let char = peek else { throw error(unterminated) }
            position += 1
            if char == quote {
                guard quote == "'" && peek == "'" else { break }
                position += 1
                result.append("'")
            } else if char == "\\" && quote == "\"" {
                result.append(try escape(unterminated))
            } else {
                result.append(char)
            }
        }
        if let next = peek, !next.isBlank, next != ":", !(inFlow && ",]}".contains(next)) {
            throw error("unexpected text after closing quote")
        }
        return result
    }

    /// The character of a double-quoted escape, after its backslash.
    mutating func escape(_ unterminated: String) throws(YAMLError) -> Character {
        guard let char = peek else { throw error(unterminated) }
        position += 1
        switch char {
        case "\\", "\"", "/": return char
        case "n": return "\n"
        case "t": return "\t"
        case "r": return "\r"
        case "u":
            let digits = text[position..<min(position + 4, text.count)]
            guard digits.count == 4, digits.allSatisfy(\.isHexDigit),
                  let code = UInt32(String(digits), radix: 16), let scalar = Unicode.Scalar(code)
            else { throw error("invalid \\u escape") }
            position += 4
            return Character(scalar)
        default: throw error("unsupported escape '\\\(char)'")
        }
    }

    /// Skips blanks inside a flow collection, which must not reach the end of the line.
    mutating func skipInFlow() throws(YAMLError) {
        skipBlanks()
        if atEnd { throw error("a flow collection must end on its line") }
    }

    mutating func flowItem() throws(YAMLError) -> YAMLNode {
        if peek == "," { throw error("expected a value before ','") }
        return try node(inFlow: true).0
    }

    /// `[a, b]`, after which the cursor is past `]`.
    mutating func flowSequence() throws(YAMLError) -> YAMLNode {
        position += 1
        var items: [YAMLNode] = []
        while true {
            try skipInFlow()
            if peek == "]" { break }
            items.append(try flowItem())
            try skipInFlow()
            if peek == "]" { break }
            guard peek == "," else { throw error("expected ',' or ']' in flow sequence") }
            position += 1
        }
        position += 1
        return YAMLNode(value: .sequence(items), line: line)
    }

    /// `{a: 1, b: x}`, after which the cursor is past `}`.
    mutating func flowMapping() throws(YAMLError) -> YAMLNode {
        position += 1
        var entries: [YAMLEntry] = []
        while true {
            try skipInFlow()
            if peek == "}" { break }
            let key: String
            if peek == "\"" || peek == "'" {
                key = try quoted(inFlow: true)
            } else {
                key = try plain(inFlow: true)
                guard isValidPlainKey(key) else {
                    throw error(key.isEmpty ? "expected a key before ':'" : "invalid key '\(key)' (quote it)")
                }
            }
            try skipInFlow()
            guard peek == ":" else { throw error("expected ':' after key '\(key)'") }
            position += 1
            try skipInFlow()
            let value = peek == "," || peek == "}" ? YAMLNode(value: .null, line: line) : try flowItem()
            if entries.contains(where: { $0.key == key }) {
                throw error("duplicate key '\(key)' (first on line \(line))")
            }
            entries.append(YAMLEntry(key: key, line: line, value: value))
            try skipInFlow()
            if peek == "}" { break }
            guard peek == "," else { throw error("expected ',' or '}' in flow mapping") }
            position += 1
        }
        position += 1
        return YAMLNode(value: .mapping(entries), line: line)
    }
}
