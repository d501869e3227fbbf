extension Duration {
    /// The duration in seconds, with its fraction (for metrics, `Date` arithmetic and rates).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The duration in whole milliseconds, truncated (for broker TTLs and retry delays).
    public var inMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
