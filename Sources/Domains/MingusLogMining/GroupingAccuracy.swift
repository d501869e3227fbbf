/// Grouping accuracy (GA) of a log parser, as the Loghub benchmark defines it.
///
/// A message is grouped correctly when the set of messages sharing its predicted template is
/// exactly the set of messages sharing its ground-truth event; GA is the fraction of messages
/// grouped correctly. Template texts play no part, only the partition of the messages.
public struct GroupingAccuracy: Sendable, Hashable {
    /// Messages grouped correctly.
    public let correct: Int
    /// Messages scored.
    public let total: Int

    /// `correct / total`; 1 when there are no messages.
    public var value: Double { total == 0 ? 1 : Double(correct) / Double(total) }

    /// Scores `predicted[i]` (the template of message i) against `truth[i]` (its event).
    /// The two arrays must have the same length.
    public init<Predicted: Hashable, Truth: Hashable>(predicted: [Predicted], truth: [Truth]) {
        precondition(predicted.count == truth.count, "GroupingAccuracy needs one prediction per message")
        var predictedSizes: [Predicted: Int] = [:]
        var truthSizes: [Truth: Int] = [:]
        var pairSizes: [Pair<Predicted, Truth>: Int] = [:]
        for (predictedGroup, truthGroup) in zip(predicted, truth) {
            predictedSizes[predictedGroup, default: 0] += 1
            truthSizes[truthGroup, default: 0] += 1
            pairSizes[Pair(predicted: predictedGroup, truth: truthGroup), default: 0] += 1
        }
        var correct = 0
        for (pair, size) in pairSizes where predictedSizes[pair.predicted] == size && truthSizes[pair.truth] == size {
            correct += size
        }
        self.correct = correct
        self.total = predicted.count
    }

    private struct Pair<Predicted: Hashable, Truth: Hashable>: Hashable {
        var predicted: Predicted
        var truth: Truth
    }
}
