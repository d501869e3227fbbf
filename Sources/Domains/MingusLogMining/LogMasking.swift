#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Masks the obvious variables of a log message by the class of their characters, before any
/// grouping, with one fixed rule set for every source.
///
/// A message is split into tokens at spaces and tabs. Each token is then rewritten:
/// - a path or URL becomes `<*>`: a token with a backslash entirely; otherwise from its first
///   `/` to its end (closing punctuation aside) when it has two `/` or more, or starts with one
///   after any bracket or quote (`/usr/lib`, `http://host/x`, `chdir(/p/a)` → `chdir(<*>)`);
/// - the rest is cut into segments at the delimiters `= : , ; / ( ) [ ] { } @ | < > " '`, and
///   a segment becomes `<*>` when it contains a decimal digit (numbers, IPs, ports, hex and
///   UUIDs with digits, dates and times, identifiers mixing letters and digits) or when it is
///   the value of a `key=value` pair. The delimiters and the other segments stay, so `(uid=0)`
///   becomes `(uid=<*>)` and `10.0.0.1:22` becomes `<*>:<*>`.
///
/// A token that becomes exactly `<*>` is a variable of the template from the start, and a run
/// of such tokens becomes one (lists of ids vary in length).
public enum LogMasking {
    /// The text of a variable in a template.
    public static let wildcard = "<*>"

    static let wildcardBytes: [UInt8] = Array("<*>".utf8)

    /// The masked tokens of `message`, for inspection and tests (the miner masks in place).
    public static func maskedTokens(_ message: String) -> [String] {
        var buffer = MaskedMessage()
        var copy = message
        copy.withUTF8 { buffer.mask($0, maximumTokens: Int.max) }
        return (0..<buffer.tokenCount).map { String(decoding: buffer.token($0), as: UTF8.self) }
    }
}

/// A message after masking: the masked tokens side by side in one reusable byte buffer.
struct MaskedMessage {
    /// The masked tokens, one after another without separators.
    private(set) var bytes: [UInt8] = []
    /// The end offset in `bytes` of each token.
    private(set) var ends: [Int] = []
    /// Whether each token is exactly `<*>`.
    private(set) var isWildcard: [Bool] = []

    init() {
        bytes.reserveCapacity(1024)
        ends.reserveCapacity(128)
        isWildcard.reserveCapacity(128)
    }

    var tokenCount: Int { ends.count }

    func start(of index: Int) -> Int { index == 0 ? 0 : ends[index - 1] }

    func token(_ index: Int) -> ArraySlice<UInt8> { bytes[start(of: index)..<ends[index]] }

    /// Whether every constant token of a template (`tokens` side by side, ending at `tokenEnds`)
    /// equals this message's token at the same position.
    func matches(tokens: [UInt8], tokenEnds: [Int], isVariable: [Bool]) -> Bool {
        guard tokenEnds.count == ends.count else { return false }
        return bytes.withUnsafeBufferPointer { message in
            tokens.withUnsafeBufferPointer { template in
                ends.withUnsafeBufferPointer { messageEnds in
                    tokenEnds.withUnsafeBufferPointer { templateEnds in
                        isVariable.withUnsafeBufferPointer { isVariable in
                            var messageStart = 0, templateStart = 0
                            for index in 0..<messageEnds.count {
                                let messageEnd = messageEnds[index], templateEnd = templateEnds[index]
                                if !isVariable[index] {
                                    let length = messageEnd - messageStart
                                    guard length == templateEnd - templateStart else { return false }
                                    if length > 0, memcmp(message.baseAddress! + messageStart, template.baseAddress! + templateStart, length) != 0 {
                                        return false
                                    }
                                }
                                messageStart = messageEnd
                                templateStart = templateEnd
                            }
                            return true
                        }
                    }
                }
            }
        }
    }

    /// Masks `message` into this buffer, replacing what it held. Tokens past `maximumTokens`
    /// are folded into the last one, which becomes `<*>`.
    mutating func mask(_ message: UnsafeBufferPointer<UInt8>, maximumTokens: Int) {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        isWildcard.removeAll(keepingCapacity: true)
        let count = message.count
        var index = 0
        while index < count {
            while index < count, Self.isSpace(message[index]) { index += 1 }
            guard index < count else { break }
            var end = index
            var plain = true
            while end < count {
                let byte = message[end]
                if Self.isSpace(byte) { break }
                if Self.isDigit(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "\\") {
                    plain = false
                }
                end += 1
            }
            if ends.count == maximumTokens {
                // Fold the rest of the message into the last token.
                bytes.removeSubrange(start(of: ends.count - 1)...)
                appendWildcard()
                ends[ends.count - 1] = bytes.count
                isWildcard[isWildcard.count - 1] = true
                break
            }
            let token = UnsafeBufferPointer(rebasing: message[index..<end])
            if plain && !(token.count == 3 && token[0] == UInt8(ascii: "<") && token[1] == UInt8(ascii: "*")) {
                // Nothing to mask: no digit, path, backslash or `=`.
                bytes.append(contentsOf: token)
                ends.append(bytes.count)
                isWildcard.append(false)
            } else {
                maskToken(token)
            }
            index = end
        }
    }

    @inline(__always) private mutating func appendWildcard() {
        bytes.append(UInt8(ascii: "<"))
        bytes.append(UInt8(ascii: "*"))
        bytes.append(UInt8(ascii: ">"))
    }

    private mutating func maskToken(_ token: UnsafeBufferPointer<UInt8>) {
        let tokenStart = bytes.count
        if let path = Self.pathRange(token) {
            maskSegments(UnsafeBufferPointer(rebasing: token[..<path.lowerBound]))
            appendWildcard()
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: token[path.upperBound...]))
        } else {
            maskSegments(token)
        }
        let wildcard = bytes.count - tokenStart == 3 && bytes[tokenStart] == UInt8(ascii: "<")
            && bytes[tokenStart + 1] == UInt8(ascii: "*") && bytes[tokenStart + 2] == UInt8(ascii: ">")
        if wildcard, isWildcard.last == true {
            // A run of variables is one variable: lists of ids or numbers vary in length.
            bytes.removeSubrange(tokenStart...)
            return
        }
        ends.append(bytes.count)
        isWildcard.append(wildcard)
    }

    /// Appends `text` with each segment between delimiters that holds a digit, or follows `=`,
    /// replaced by `<*>`.
    private mutating func maskSegments(_ text: UnsafeBufferPointer<UInt8>) {
        var segmentStart = 0
        var afterEquals = false
        var index = 0
        let count = text.count
        while index <= count {
            if index == count || Self.isDelimiter(text[index]) {
                if index > segmentStart {
                    let segment = UnsafeBufferPointer(rebasing: text[segmentStart..<index])
                    if afterEquals || Self.containsDigit(segment) {
                        appendWildcard()
                    } else {
                        bytes.append(contentsOf: segment)
                    }
                }
                if index < count {
                    bytes.append(text[index])
                    afterEquals = text[index] == UInt8(ascii: "=")
                }
                segmentStart = index + 1
            }
            index += 1
        }
    }

    /// The part of `token` that is a path or URL, if any: a token with a backslash is one
    /// whole; otherwise from the first `/` to the end without closing punctuation, when the
    /// token has two `/` or more (`/usr/lib`, `http://host/x`, `chdir(/p/a)`) or starts with
    /// one (`/10.0.0.1:22`), brackets and quotes aside.
    static func pathRange(_ token: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        var firstSlash = -1, slashes = 0
        for index in token.indices {
            let byte = token[index]
            if byte == UInt8(ascii: "\\") { return 0..<token.count }
            if byte == UInt8(ascii: "/") {
                if firstSlash < 0 { firstSlash = index }
                slashes += 1
            }
        }
        guard firstSlash >= 0 else { return nil }
        var end = token.count
        while end > firstSlash + 1, isClosing(token[end - 1]) { end -= 1 }
        guard end > firstSlash + 1 else { return nil }
        if slashes >= 2 { return firstSlash..<end }
        var start = 0
        while start < firstSlash, isOpening(token[start]) { start += 1 }
        return start == firstSlash ? firstSlash..<end : nil
    }

    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }

    static func containsDigit(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in bytes where isDigit(byte) { return true }
        return false
    }

    /// `= : , ; / ( ) [ ] { } @ | < > " '`
    @inline(__always) static func isDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x3D, 0x3A, 0x2C, 0x3B, 0x2F, 0x28, 0x29, 0x5B, 0x5D, 0x7B, 0x7D, 0x40, 0x7C, 0x3C, 0x3E, 0x22, 0x27: true
        default: false
        }
    }

    /// `( [ { < " '`
    @inline(__always) static func isOpening(_ byte: UInt8) -> Bool {
        byte == 0x28 || byte == 0x5B || byte == 0x7B || byte == 0x3C || byte == 0x22 || byte == 0x27
    }

    /// `) ] } > " ' , ; : .`
    @inline(__always) static func isClosing(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x29, 0x5D, 0x7D, 0x3E, 0x22, 0x27, 0x2C, 0x3B, 0x3A, 0x2E: true
        default: false
        }
    }
}
