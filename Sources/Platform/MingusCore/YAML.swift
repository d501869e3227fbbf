// Configuration files are read with Yams (libyaml): block and flow collections over several
// lines, plain, quoted and block scalars (`|`, `>`), anchors, aliases and merge keys (`<<`).
// The result is a plain tree whose every node knows its line, so that a configuration error can
// always say where it is.

import Yams

/// A node of a parsed YAML document, with the 1-based line where it starts (at its anchor when it
/// has one). A node reached through an alias has the line of the node its anchor names.
public struct YAMLNode: Sendable, Equatable {
    /// What a node holds. Scalars stay text: callers convert them.
    public enum Value: Sendable, Equatable {
        /// An empty value, `~` or `null` (unquoted).
        case null
        /// A plain, quoted or block scalar, quotes removed, escapes applied and lines joined.
        case scalar(String)
        /// The items of a sequence, in file order.
        case sequence([YAMLNode])
        /// Entries in file order, then the entries merge keys (`<<`) bring that the mapping does
        /// not set itself.
        case mapping([YAMLEntry])
    }

    /// What the node holds.
    public var value: Value
    /// The 1-based line where the node starts.
    public var line: Int

    /// A node holding `value`, starting on `line`.
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

    /// The value of the entry named `key`, when this node is a mapping that has one.
    public subscript(key: String) -> YAMLNode? {
        mapping?.first { $0.key == key }?.value
    }
}

/// One `key: value` of a mapping, with the key's line.
public struct YAMLEntry: Sendable, Equatable {
    /// The key, as text.
    public var key: String
    /// The 1-based line of the key.
    public var line: Int
    /// The value.
    public var value: YAMLNode

    /// An entry `key: value` whose key is on `line`.
    public init(key: String, line: Int, value: YAMLNode) {
        self.key = key
        self.line = line
        self.value = value
    }
}

/// Why a document cannot be read, and where.
public struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the document was read from, when it was given.
    public var file: String?
    /// The 1-based line of the problem.
    public var line: Int
    /// What is wrong.
    public var message: String

    /// An error on `line` of `file`.
    public init(file: String? = nil, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `file:line: message`, or `line N: message` without a file.
    public var description: String { (file.map { "\($0):" } ?? "line ") + "\(line): \(message)" }
}

/// The reader every YAML file goes through.
public enum YAML: Sendable {
    /// The most nodes a document may hold once its aliases are expanded, so that aliases nested
    /// in aliases cannot make a small file unbounded.
    public static let nodeLimit = 100_000

    /// Parses one document; `file` names it in errors. An empty document is `.null` at line 1.
    public static func parse(_ text: String, file: String? = nil) throws(YAMLError) -> YAMLNode {
        let root: Node?
        do {
            // Scalars stay text: only null and the merge key are told apart.
            let parser = try Parser(yaml: text, resolver: Resolver.basic.appending(.null).appending(.merge), encoding: .utf8)
            root = try parser.nextRoot()
            if let second = try parser.nextRoot() {
                let line = YAMLError.clamp(second.mark?.line ?? 1, to: text)
                throw YAMLError(file: file, line: line, message: "only one document is supported")
            }
        } catch let error as YAMLError {
            throw error
        } catch {
            throw YAMLError(file: file, text: text, yams: error)
        }
        // An empty document: nothing at all, or nothing after `---`.
        let isEmpty = root.map { $0.scalar?.string == "" && $0.scalar?.style == .plain } ?? true
        guard let root, !isEmpty else { return YAMLNode(value: .null, line: 1) }
        var builder = Builder(file: file)
        return try builder.node(root)
    }
}

/// Turns Yams' nodes into `YAMLNode`s: keys become text, merge keys are applied, nodes are counted.
private struct Builder {
    let file: String?
    var remaining = YAML.nodeLimit

    func error(_ line: Int, _ message: String) -> YAMLError { YAMLError(file: file, line: line, message: message) }

    mutating func node(_ node: Node) throws(YAMLError) -> YAMLNode {
        let line = node.mark?.line ?? 1
        remaining -= 1
        if remaining < 0 { throw error(line, "the document holds more than \(YAML.nodeLimit) nodes once its aliases are expanded") }
        switch node {
        case .scalar(let scalar):
            return YAMLNode(value: node.tag.description == Tag.Name.null.rawValue ? .null : .scalar(scalar.string), line: line)
        case .sequence(let sequence):
            var items: [YAMLNode] = []
            for item in sequence { items.append(try self.node(item)) }
            return YAMLNode(value: .sequence(items), line: line)
        case .mapping(let mapping):
            var entries: [YAMLEntry] = []
            var merged: [YAMLEntry] = []
            for (key, value) in mapping {
                let keyLine = key.mark?.line ?? line
                if key.tag.description == Tag.Name.merge.rawValue {
                    merged += try mergedEntries(value, keyLine)
                    continue
                }
                guard case .scalar(let scalar) = key, key.tag.description != Tag.Name.null.rawValue else {
                    throw error(keyLine, "a key must be a text value")
                }
                if let first = entries.first(where: { $0.key == scalar.string }) {
                    throw error(keyLine, "duplicate key '\(scalar.string)' (first on line \(first.line))")
                }
                entries.append(YAMLEntry(key: scalar.string, line: keyLine, value: try self.node(value)))
            }
            // The mapping's own keys win over merged ones, and earlier merged mappings over later ones.
            for entry in merged where !entries.contains(where: { $0.key == entry.key }) {
                entries.append(entry)
            }
            return YAMLNode(value: .mapping(entries), line: line)
        case .alias:
            throw error(line, "unresolved alias")
        }
    }

    /// The entries a merge key brings: those of a mapping, or of a list of mappings.
    mutating func mergedEntries(_ value: Node, _ line: Int) throws(YAMLError) -> [YAMLEntry] {
        var entries: [YAMLEntry] = []
        let sources = if case .sequence(let list) = value { Array(list) } else { [value] }
        for source in sources {
            guard let mapping = try node(source).mapping else {
                throw error(source.mark?.line ?? line, "'<<' merges a mapping or a list of mappings")
            }
            entries += mapping
        }
        return entries
    }
}

extension YAMLError {
    /// A Yams error as one of ours, at its line.
    fileprivate init(file: String?, text: String, yams error: any Error) {
        switch error as? YamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let line = Self.clamp(mark.line, to: text)
            let during = context.map { $0.mark.line == line ? " (\($0.text))" : " (\($0.text) from line \($0.mark.line))" }
            self.init(file: file, line: line, message: problem + (during ?? ""))
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams gives the first occurrence; the repeated one is found by its column.
            let key = duplicates.first ?? ""
            if let line = Self.repeatedKeyLine(key, after: context.mark, in: text) {
                self.init(file: file, line: line, message: "duplicate key '\(key)' (first on line \(context.mark.line))")
            } else {
                self.init(file: file, line: context.mark.line, message: "duplicate key '\(key)'")
            }
        case .reader(let problem, let offset, _, _):
            let line = offset.map { text.prefix($0).filter(\.isNewline).count + 1 } ?? 1
            self.init(file: file, line: line, message: problem)
        default:
            self.init(file: file, line: 1, message: "\(error)")
        }
    }

    /// `line`, or the last line of `text` when libyaml points past it (at the end of the text).
    fileprivate static func clamp(_ line: Int, to text: String) -> Int {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).count
        return max(1, min(line, lines - (text.last?.isNewline == true ? 1 : 0)))
    }

    /// The line where `key` starts again at the column of its first occurrence, before a line
    /// less indented ends the block mapping; nil when it is not found that way (a flow mapping).
    private static func repeatedKeyLine(_ key: String, after first: Mark, in text: String) -> Int? {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        for (index, line) in lines.enumerated().dropFirst(first.line) {
            let content = line.drop { $0 == " " }
            guard let start = content.first, start != "#" else { continue }
            let column = line.count - content.count + 1
            if column < first.column { return nil }
            for spelling in [key, "\"\(key)\"", "'\(key)'"] where column == first.column && content.hasPrefix(spelling) {
                if content.dropFirst(spelling.count).drop(while: { $0 == " " }).first == ":" { return index + 1 }
            }
        }
        return nil
    }
}
