/// A breach's status and the changes allowed from each:
/// `detected → investigating → contained → resolved → closed`, and `investigating → false_positive`.
public enum BreachStatus: String, Sendable, CaseIterable, Codable {
    case detected, investigating, contained, resolved, closed
    case falsePositive = "false_positive"

    /// The statuses this one may change to.
    public var next: [BreachStatus] {
        switch self {
        case .detected: [.investigating]
        case .investigating: [.contained, .falsePositive]
        case .contained: [.resolved]
        case .resolved: [.closed]
        case .closed, .falsePositive: []
        }
    }

    public func allows(_ target: BreachStatus) -> Bool { next.contains(target) }
}
