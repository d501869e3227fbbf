/// An online log template miner: one pass, bounded memory, deterministic, one configuration
/// for every log source.
///
/// Each message is masked (`LogMasking`: numbers, IPs, paths, URLs, identifiers with digits,
/// `key=value` values become `<*>`), then matched against the templates with the same number
/// of tokens. A template matches when every one of its constant tokens equals the message's
/// token at that position; when several match, the most specific (most constants) wins, and
/// among those the oldest.
///
/// A message that matches nothing becomes a new template, unless it proves that some
/// positions of an existing template are variables. That is decided by the values seen at a
/// position while the rest of the template stays the same: the templates that agree with
/// the message everywhere else are gathered, and a position where they differ becomes a
/// variable when they show at least `distinctValuesForVariable` different values there, or
/// when one of them already has a variable there. They are merged into the oldest of them,
/// which keeps its id. A few different words in one position (`Accepted password …` and
/// `Failed password …`) stay separate templates; a fourth would make the position a variable.
/// A merge never leaves fewer constant tokens than variables it creates, nor a template
/// without constants.
///
/// Bounds: at most `maximumTemplates` templates (the least recently matched one is evicted
/// and reported), at most `maximumTokens` tokens per template (the rest of a longer message
/// is folded into a final `<*>`), and a cache of at most `signatureCacheCapacity` masked
/// messages, so memory is O(maximumTemplates × maximumTokens) whatever the input.
///
/// Deterministic: the same messages in the same order give the same templates and ids.
public struct LogTemplateMiner: Sendable {
    /// The one configuration: the defaults are the values used for every source.
    public struct Configuration: Sendable, Hashable {
        /// Templates held at most; the least recently matched is evicted beyond. Default 10,000.
        public var maximumTemplates: Int
        /// Tokens per template at most; a longer message's tail becomes one `<*>`. Default 128.
        public var maximumTokens: Int
        /// Different values at one position, with the rest of the template equal, that make the
        /// position a variable. Default 4: a short enumeration (`GET`, `POST`, `DELETE`) stays
        /// constant, a word that keeps changing (a user or host name) becomes a variable.
        public var distinctValuesForVariable: Int
        /// Masked messages remembered with their template, for the fast path. Default 65,536.
        public var signatureCacheCapacity: Int

        /// Creates a configuration; every parameter defaults to the standard value.
        public init(maximumTemplates: Int = 10_000, maximumTokens: Int = 128,
                    distinctValuesForVariable: Int = 4, signatureCacheCapacity: Int = 65_536) {
            self.maximumTemplates = maximumTemplates
            self.maximumTokens = maximumTokens
            self.distinctValuesForVariable = distinctValuesForVariable
            self.signatureCacheCapacity = signatureCacheCapacity
        }

        /// The configuration used for every source.
        public static let standard = Configuration()
    }

    /// One template as the miner holds it.
    struct Template {
        var id: LogTemplateID
        var tokens: [[UInt8]]
        /// The tokens side by side, and where each ends, for the fast comparison.
        var flatTokens: [UInt8]
        var tokenEnds: [Int]
        var isVariable: [Bool]
        var constantCount: Int
        var text: String
        var count: Int
        var lastUsed: UInt64

        var isLive: Bool { id != 0 }

        init(id: LogTemplateID, tokens: [[UInt8]], count: Int, lastUsed: UInt64) {
            self.id = id
            self.tokens = tokens
            self.flatTokens = Array(tokens.joined())
            var end = 0
            self.tokenEnds = tokens.map { token in
                end += token.count
                return end
            }
            self.isVariable = tokens.map { $0 == LogMasking.wildcardBytes }
            self.constantCount = isVariable.lazy.filter { !$0 }.count
            self.text = String(decoding: Array(tokens.joined(separator: [UInt8(ascii: " ")])), as: UTF8.self)
            self.count = count
            self.lastUsed = lastUsed
        }
    }

    /// The configuration this miner uses.
    public let configuration: Configuration
    /// The id the next new template gets.
    public private(set) var nextID: LogTemplateID

    private var slots: [Template] = []
    private var freeSlots: [Int] = []
    private var slotByID: [LogTemplateID: Int] = [:]
    /// Slots of the live templates by token count, oldest first.
    private var groups: [Int: [Int]] = [:]
    private var liveCount = 0
    /// Direct-mapped: entry `hash % capacity` remembers the slot a masked message resolved to,
    /// valid while no template was created, merged or evicted since (`generation`).
    private var cacheHashes: [UInt64]
    private var cacheSlots: [Int]
    private var cacheGenerations: [UInt64]
    private var generation: UInt64 = 0
    private var sequence: UInt64 = 0
    private var masked = MaskedMessage()

    /// Creates an empty miner whose first template gets `firstID` (at least 1).
    public init(configuration: Configuration = .standard, firstID: LogTemplateID = 1) {
        precondition(configuration.maximumTemplates >= 1 && configuration.maximumTokens >= 1
                     && configuration.distinctValuesForVariable >= 2, "invalid LogTemplateMiner configuration")
        self.configuration = configuration
        self.nextID = max(firstID, 1)
        let capacity = max(1, configuration.signatureCacheCapacity)
        cacheHashes = Array(repeating: 0, count: capacity)
        cacheSlots = Array(repeating: -1, count: capacity)
        cacheGenerations = Array(repeating: UInt64.max, count: capacity)
    }

    /// Creates a miner holding previously saved templates, with their ids, tokens (as
    /// `LogTemplate.tokens` reported them) and counts. New templates get ids after the largest
    /// saved one (or from `firstID` if that is larger).
    public init(configuration: Configuration = .standard, saved: [LogTemplate], firstID: LogTemplateID = 1) throws(LogMiningError) {
        self.init(configuration: configuration, firstID: firstID)
        guard saved.count <= configuration.maximumTemplates else {
            throw LogMiningError(code: .tooManyTemplates, templateID: nil,
                                 message: "\(saved.count) saved templates, the configuration holds at most \(configuration.maximumTemplates)")
        }
        for template in saved.sorted(by: { $0.id < $1.id }) {
            guard template.id != 0 else {
                throw LogMiningError(code: .invalidTemplateID, templateID: 0, message: "template ids start at 1")
            }
            guard slotByID[template.id] == nil else {
                throw LogMiningError(code: .duplicateTemplateID, templateID: template.id, message: "the id is saved twice")
            }
            guard template.tokens.count <= configuration.maximumTokens else {
                throw LogMiningError(code: .tooManyTokens, templateID: template.id,
                                     message: "\(template.tokens.count) tokens, the configuration allows \(configuration.maximumTokens)")
            }
            sequence += 1
            insert(Template(id: template.id, tokens: template.tokens.map { Array($0.utf8) }, count: template.count, lastUsed: sequence))
            nextID = max(nextID, template.id + 1)
        }
    }

    /// The live templates, by id.
    public var templates: [LogTemplate] {
        slots.filter(\.isLive).sorted { $0.id < $1.id }.map(Self.publicTemplate)
    }

    /// Number of live templates.
    public var templateCount: Int { liveCount }

    /// The live template with this id, if any.
    public func template(id: LogTemplateID) -> LogTemplate? {
        slotByID[id].map { Self.publicTemplate(slots[$0]) }
    }

    /// Adds one message (one log line's content, without its header).
    public mutating func add(_ message: String) -> LogTemplateMatch {
        var message = message
        return message.withUTF8 { add(utf8: $0) }
    }

    /// Adds one message given as UTF-8 bytes.
    public mutating func add(utf8 message: UnsafeBufferPointer<UInt8>) -> LogTemplateMatch {
        sequence += 1
        masked.mask(message, maximumTokens: configuration.maximumTokens)
        let signature = masked.signatureHash()
        let entry = Int(signature % UInt64(cacheHashes.count))
        if cacheHashes[entry] == signature, cacheGenerations[entry] == generation {
            let slot = cacheSlots[entry]
            if masked.matches(tokens: slots[slot].flatTokens, tokenEnds: slots[slot].tokenEnds, isVariable: slots[slot].isVariable) {
                return matched(slot, isNew: false, textChanged: false, absorbed: [], evicted: nil)
            }
        }
        let match = resolve()
        cacheHashes[entry] = signature
        cacheSlots[entry] = slotByID[match.templateID]!
        cacheGenerations[entry] = generation
        return match
    }

    // MARK: - Matching and merging

    private mutating func resolve() -> LogTemplateMatch {
        let tokenCount = masked.tokenCount
        let group = groups[tokenCount] ?? []
        var best = -1
        for slot in group where best < 0 || slots[slot].constantCount > slots[best].constantCount {
            if matches(slot) { best = slot }
        }
        if best >= 0 {
            return matched(best, isNew: false, textChanged: false, absorbed: [], evicted: nil)
        }
        if let merge = generalisation(in: group) {
            return merge
        }
        var evicted: LogTemplateID?
        if liveCount >= configuration.maximumTemplates {
            evicted = evictLeastRecentlyUsed()
        }
        let tokens = (0..<tokenCount).map { Array(masked.token($0)) }
        let slot = insert(Template(id: nextID, tokens: tokens, count: 0, lastUsed: sequence))
        nextID += 1
        generation += 1
        return matched(slot, isNew: true, textChanged: false, absorbed: [], evicted: evicted)
    }

    /// Whether every constant of the template in `slot` equals the masked message's token.
    private func matches(_ slot: Int) -> Bool {
        masked.matches(tokens: slots[slot].flatTokens, tokenEnds: slots[slot].tokenEnds, isVariable: slots[slot].isVariable)
    }

    /// Looks for positions the message proves to be variables; merges and returns the match
    /// if it finds some.
    private mutating func generalisation(in group: [Int]) -> LogTemplateMatch? {
        let tokenCount = masked.tokenCount
        guard tokenCount > 0 else { return nil }
        // Candidate patterns: the message with the positions where one template differs made
        // variable, closest templates first, a few at most.
        var candidates: [(differing: Int, variables: [Bool])] = []
        for slot in group {
            let template = slots[slot]
            var variables = [Bool](repeating: false, count: tokenCount)
            var differing = 0, variableCount = 0
            for index in 0..<tokenCount {
                let messageVariable = masked.isWildcard[index], templateVariable = template.isVariable[index]
                if messageVariable && templateVariable {
                    variables[index] = true
                } else if messageVariable != templateVariable || !masked.token(index).elementsEqual(template.tokens[index]) {
                    variables[index] = true
                    differing += 1
                }
                if variables[index] { variableCount += 1 }
            }
            let constants = tokenCount - variableCount
            if differing >= 1, constants >= 1, differing <= constants, !candidates.contains(where: { $0.variables == variables }) {
                candidates.append((differing, variables))
            }
        }
        candidates.sort { $0.differing < $1.differing }
        for candidate in candidates.prefix(8) {
            if let match = merge(into: candidate.variables, group: group) { return match }
        }
        return nil
    }

    /// Merges the message and the templates that fit `variables` if every new variable
    /// position has enough evidence.
    private mutating func merge(into variables: [Bool], group: [Int]) -> LogTemplateMatch? {
        let tokenCount = masked.tokenCount
        var members: [Int] = []
        for slot in group {
            let template = slots[slot]
            var fits = true
            for index in 0..<tokenCount where !variables[index] {
                if template.isVariable[index] || !masked.token(index).elementsEqual(template.tokens[index]) {
                    fits = false
                    break
                }
            }
            if fits { members.append(slot) }
        }
        guard !members.isEmpty else { return nil }
        for index in 0..<tokenCount where variables[index] && !masked.isWildcard[index] {
            if members.contains(where: { slots[$0].isVariable[index] }) { continue }
            var values: [ArraySlice<UInt8>] = [masked.token(index)]
            for slot in members {
                let value = slots[slot].tokens[index][...]
                if !values.contains(value) { values.append(value) }
                if values.count >= configuration.distinctValuesForVariable { break }
            }
            if values.count < configuration.distinctValuesForVariable { return nil }
        }
        // Keep the oldest member; the others are absorbed.
        let survivor = members.min { slots[$0].id < slots[$1].id }!
        var tokens = slots[survivor].tokens
        for index in 0..<tokenCount where variables[index] { tokens[index] = LogMasking.wildcardBytes }
        var count = 0
        var absorbed: [LogTemplateID] = []
        for slot in members {
            count += slots[slot].count
            if slot != survivor {
                absorbed.append(slots[slot].id)
                remove(slot)
            }
        }
        let oldText = slots[survivor].text
        var merged = Template(id: slots[survivor].id, tokens: tokens, count: count, lastUsed: sequence)
        merged.lastUsed = sequence
        slots[survivor] = merged
        generation += 1
        return matched(survivor, isNew: false, textChanged: merged.text != oldText, absorbed: absorbed.sorted(), evicted: nil)
    }

    // MARK: - Storage

    private mutating func matched(_ slot: Int, isNew: Bool, textChanged: Bool, absorbed: [LogTemplateID],
                                  evicted: LogTemplateID?) -> LogTemplateMatch {
        slots[slot].count += 1
        slots[slot].lastUsed = sequence
        return LogTemplateMatch(templateID: slots[slot].id, templateText: slots[slot].text, isNew: isNew,
                                textChanged: textChanged, absorbedTemplateIDs: absorbed, evictedTemplateID: evicted)
    }

    @discardableResult
    private mutating func insert(_ template: Template) -> Int {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = template
        } else {
            slot = slots.count
            slots.append(template)
        }
        slotByID[template.id] = slot
        groups[template.tokens.count, default: []].append(slot)
        liveCount += 1
        return slot
    }

    private mutating func remove(_ slot: Int) {
        let template = slots[slot]
        slotByID[template.id] = nil
        groups[template.tokens.count]?.removeAll { $0 == slot }
        slots[slot] = Template(id: 0, tokens: [], count: 0, lastUsed: 0)
        freeSlots.append(slot)
        liveCount -= 1
    }

    private mutating func evictLeastRecentlyUsed() -> LogTemplateID? {
        var oldest = -1
        for slot in slots.indices where slots[slot].isLive {
            if oldest < 0 || slots[slot].lastUsed < slots[oldest].lastUsed { oldest = slot }
        }
        guard oldest >= 0 else { return nil }
        let id = slots[oldest].id
        remove(oldest)
        generation += 1
        return id
    }

    private static func publicTemplate(_ template: Template) -> LogTemplate {
        LogTemplate(id: template.id, tokens: template.tokens.map { String(decoding: $0, as: UTF8.self) }, count: template.count)
    }
}

extension MaskedMessage {
    /// A 64-bit hash of the tokens and their boundaries, eight bytes at a time.
    func signatureHash() -> UInt64 {
        let multiplier: UInt64 = 0x9E37_79B9_7F4A_7C15
        var hash: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(tokenCount)
        bytes.withUnsafeBytes { raw in
            let raw = UnsafeRawBufferPointer(rebasing: raw[..<length])
            var index = 0
            while index + 8 <= raw.count {
                hash = (hash ^ raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)) &* multiplier
                hash ^= hash >> 29
                index += 8
            }
            var tail: UInt64 = 0
            while index < raw.count {
                tail = tail << 8 | UInt64(raw[index])
                index += 1
            }
            hash = (hash ^ tail) &* multiplier
            hash ^= hash >> 29
        }
        for end in ends[..<tokenCount] {
            hash = (hash ^ UInt64(end)) &* multiplier
            hash ^= hash >> 31
        }
        return hash
    }
}
