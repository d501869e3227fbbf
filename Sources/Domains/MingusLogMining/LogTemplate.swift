/// The identifier of a template: stable for the life of the template, generalisation included.
///
/// The miner assigns identifiers sequentially: the first is 1 (or the `firstID` given at
/// creation), and a miner created from saved templates continues after the largest saved one.
public typealias LogTemplateID = UInt64

/// One template: constant tokens and variables (`<*>`), and how many messages it has matched.
public struct LogTemplate: Sendable, Hashable {
    /// Stable for the life of the template.
    public let id: LogTemplateID
    /// The masked tokens; a variable is `<*>`.
    public let tokens: [String]
    /// Messages matched so far, saved counts included.
    public let count: Int

    /// Creates a template, for example one read back from storage.
    public init(id: LogTemplateID, tokens: [String], count: Int) {
        self.id = id
        self.tokens = tokens
        self.count = count
    }

    /// Creates a template from its text: the tokens are the text split at single spaces.
    public init(id: LogTemplateID, text: String, count: Int) {
        self.init(id: id, tokens: text.split(separator: " ").map(String.init), count: count)
    }

    /// The tokens joined by single spaces.
    public var text: String { tokens.joined(separator: " ") }
}

/// What one `LogTemplateMiner.add` did: everything a caller needs to upsert the template.
public struct LogTemplateMatch: Sendable, Hashable {
    /// The template the message belongs to now.
    public let templateID: LogTemplateID
    /// That template's text after this message.
    public let templateText: String
    /// The template was created by this message.
    public let isNew: Bool
    /// An existing template became more general (a token became `<*>`) because of this message.
    public let textChanged: Bool
    /// Templates that proved to differ from this one only in variables and were merged into it
    /// by this message: their identifiers are retired, their messages now belong to `templateID`.
    public let absorbedTemplateIDs: [LogTemplateID]
    /// A template dropped (least recently matched) to stay within `maximumTemplates`.
    public let evictedTemplateID: LogTemplateID?
}

/// Why a miner could not be created from saved templates.
public struct LogMiningError: Error, Hashable, CustomStringConvertible {
    /// A stable code for each kind of problem.
    public enum Code: String, Sendable, Hashable {
        case duplicateTemplateID = "duplicate_template_id"
        case tooManyTemplates = "too_many_templates"
        case tooManyTokens = "too_many_tokens"
        case invalidTemplateID = "invalid_template_id"
        case invalidConfiguration = "invalid_configuration"
    }

    /// What went wrong.
    public let code: Code
    /// The template concerned, if one is.
    public let templateID: LogTemplateID?
    /// A human explanation.
    public let message: String

    /// A description with the code, the template and the explanation.
    public var description: String {
        "\(code.rawValue)\(templateID.map { " (template \($0))" } ?? ""): \(message)"
    }
}
