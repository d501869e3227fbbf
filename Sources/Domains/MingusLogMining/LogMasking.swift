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
///
/// The buffers only grow (to three times the longest message: `1` becomes `<*>`), and are
/// written through pointers, once per message.
struct MaskedMessage {
    /// The masked tokens, one after another without separators; `length` bytes are in use.
    private(set) var bytes: [UInt8] = Array(repeating: 0, count: 1024)
    private(set) var length = 0
    /// The end offset in `bytes` of each token; `tokenCount` are in use.
    private(set) var ends: [Int] = Array(repeating: 0, count: 128)
    /// Whether each token is exactly `<*>`.
    private(set) var isWildcard: [Bool] = Array(repeating: false, count: 128)
    private(set) var tokenCount = 0

    init() {}

    func start(of index: Int) -> Int { index == 0 ? 0 : ends[index - 1] }

    func token(_ index: Int) -> ArraySlice<UInt8> { bytes[start(of: index)..<ends[index]] }

    /// Whether every constant token of a template (`tokens` side by side, ending at `tokenEnds`)
    /// equals this message's token at the same position.
    func matches(tokens: [UInt8], tokenEnds: [Int], isVariable: [Bool]) -> Bool {
        guard tokenEnds.count == tokenCount else { return false }
        return bytes.withUnsafeBufferPointer { message in
            tokens.withUnsafeBufferPointer { template in
                ends.withUnsafeBufferPointer { messageEnds in
                    tokenEnds.withUnsafeBufferPointer { templateEnds in
                        isVariable.withUnsafeBufferPointer { isVariable in
                            var messageStart = 0, templateStart = 0
                            for index in 0..<templateEnds.count {
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
        let neededBytes = message.count * 3 + 3
        if bytes.count < neededBytes { bytes = Array(repeating: 0, count: neededBytes * 2) }
        let neededTokens = min(maximumTokens, message.count / 2 + 1)
        if ends.count < neededTokens {
            ends = Array(repeating: 0, count: neededTokens * 2)
            isWildcard = Array(repeating: false, count: neededTokens * 2)
        }
        var writer = Writer()
        bytes.withUnsafeMutableBufferPointer { out in
            ends.withUnsafeMutableBufferPointer { ends in
                isWildcard.withUnsafeMutableBufferPointer { wildcards in
                    writer = Writer(out: out.baseAddress!, ends: ends.baseAddress!, wildcards: wildcards.baseAddress!)
                    writer.mask(message, maximumTokens: maximumTokens)
                }
            }
        }
        length = writer.length
        tokenCount = writer.tokenCount
    }

    /// Writes the masked tokens through pointers into buffers large enough for the message.
    private struct Writer {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var ends: UnsafeMutablePointer<Int>? = nil
        var wildcards: UnsafeMutablePointer<Bool>? = nil
        var length = 0
        var tokenCount = 0

        init() {}

        init(out: UnsafeMutablePointer<UInt8>, ends: UnsafeMutablePointer<Int>, wildcards: UnsafeMutablePointer<Bool>) {
            self.out = out
            self.ends = ends
            self.wildcards = wildcards
        }

        mutating func mask(_ message: UnsafeBufferPointer<UInt8>, maximumTokens: Int) {
            let count = message.count
            var index = 0
            while index < count {
                while index < count, MaskedMessage.isSpace(message[index]) { index += 1 }
                guard index < count else { break }
                var end = index
                var plain = true
                while end < count {
                    let byte = message[end]
                    if MaskedMessage.isSpace(byte) { break }
                    if MaskedMessage.isDigit(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "\\") {
                        plain = false
                    }
                    end += 1
                }
                if tokenCount == maximumTokens {
                    // Fold the rest of the message into the last token.
                    length = tokenCount > 1 ? ends![tokenCount - 2] : 0
                    appendWildcard()
                    ends![tokenCount - 1] = length
                    wildcards![tokenCount - 1] = true
                    break
                }
                let token = UnsafeBufferPointer(rebasing: message[index..<end])
                if plain && !(token.count == 3 && token[0] == UInt8(ascii: "<") && token[1] == UInt8(ascii: "*")) {
                    // Nothing to mask: no digit, path, backslash or `=`.
                    append(token)
                    ends![tokenCount] = length
                    wildcards![tokenCount] = false
                    tokenCount += 1
                } else {
                    maskToken(token)
                }
                index = end
            }
        }

        @inline(__always) mutating func append(_ text: UnsafeBufferPointer<UInt8>) {
            guard !text.isEmpty else { return }
            (out! + length).update(from: text.baseAddress!, count: text.count)
            length += text.count
        }

        @inline(__always) mutating func append(_ byte: UInt8) {
            out![length] = byte
            length += 1
        }

        @inline(__always) mutating func appendWildcard() {
            out![length] = UInt8(ascii: "<")
            out![length + 1] = UInt8(ascii: "*")
            out![length + 2] = UInt8(ascii: ">")
            length += 3
        }

        mutating func maskToken(_ token: UnsafeBufferPointer<UInt8>) {
            let tokenStart = length
            if let path = MaskedMessage.pathRange(token) {
                maskSegments(UnsafeBufferPointer(rebasing: token[..<path.lowerBound]))
                appendWildcard()
                append(UnsafeBufferPointer(rebasing: token[path.upperBound...]))
            } else {
                maskSegments(token)
            }
            let wildcard = length - tokenStart == 3 && out![tokenStart] == UInt8(ascii: "<")
                && out![tokenStart + 1] == UInt8(ascii: "*") && out![tokenStart + 2] == UInt8(ascii: ">")
            if wildcard, tokenCount > 0, wildcards![tokenCount - 1] {
                // A run of variables is one variable: lists of ids or numbers vary in length.
                length = tokenStart
                return
            }
            ends![tokenCount] = length
            wildcards![tokenCount] = wildcard
            tokenCount += 1
        }

        /// Appends `text` with each segment between delimiters that holds a digit, or follows
        /// `=`, replaced by `<*>`.
        mutating func maskSegments(_ text: UnsafeBufferPointer<UInt8>) {
            var segmentStart = 0
            var afterEquals = false
            var index = 0
            let count = text.count
            while index <= count {
                if index == count || MaskedMessage.isDelimiter(text[index]) {
                    if index > segmentStart {
                        let segment = UnsafeBufferPointer(rebasing: text[segmentStart..<index])
                        if afterEquals || MaskedMessage.containsDigit(segment) {
                            appendWildcard()
                        } else {
                            append(segment)
                        }
                    }
                    if index < count {
                        append(text[index])
                        afterEquals = text[index] == UInt8(ascii: "=")
                    }
                    segmentStart = index + 1
                }
                index += 1
            }
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
