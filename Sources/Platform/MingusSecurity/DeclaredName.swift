/// A name a domain declares as a static constant — a ``Role``, a ``KeyPurpose`` — rather than a
/// case of a closed enum, so a new domain adds its own without touching this module. Compared,
/// sorted and printed by the name.
public protocol DeclaredName: RawRepresentable<String>, Hashable, Sendable, Comparable, CustomStringConvertible {
    init(rawValue: String)
}

extension DeclaredName {
    /// The value named `name`.
    public init(_ name: String) {
        self.init(rawValue: name)
    }

    public var description: String { rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
