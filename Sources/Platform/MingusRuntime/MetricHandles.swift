public import CoreMetrics
import Synchronization

/// Metric handles made once per name and dimensions, then reused: making a handle costs a
/// registry lookup and a lock. Without a factory the global one is read at first use, so a
/// cache made before `MetricsSystem.bootstrap` still reports to the bootstrapped system.
public final class MetricHandles: Sendable {
    private let factory: (any MetricsFactory)?
    private let counters = Mutex<[[String]: Counter]>([:])
    private let recorders = Mutex<[[String]: Recorder]>([:])
    private let gauges = Mutex<[[String]: Gauge]>([:])

    public init(factory: (any MetricsFactory)? = nil) {
        self.factory = factory
    }

    /// The counter `label` with these dimensions.
    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        counters.withLock { cache in
            cached(&cache, label, dimensions) { Counter(label: label, dimensions: dimensions, factory: $0) }
        }
    }

    /// The histogram (aggregating recorder) `label` with these dimensions.
    public func histogram(_ label: String, _ dimensions: [(String, String)] = []) -> Recorder {
        recorders.withLock { cache in
            cached(&cache, label, dimensions) { Recorder(label: label, dimensions: dimensions, aggregate: true, factory: $0) }
        }
    }

    /// The gauge `label` with these dimensions.
    public func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
        gauges.withLock { cache in
            cached(&cache, label, dimensions) { Gauge(label: label, dimensions: dimensions, factory: $0) }
        }
    }

    private func cached<Handle>(_ cache: inout [[String]: Handle], _ label: String, _ dimensions: [(String, String)],
                                make: (any MetricsFactory) -> Handle) -> Handle {
        var key = [label]
        key.reserveCapacity(1 + dimensions.count * 2)
        for (name, value) in dimensions {
            key.append(name)
            key.append(value)
        }
        if let handle = cache[key] { return handle }
        let handle = make(factory ?? MetricsSystem.factory)
        cache[key] = handle
        return handle
    }
}
