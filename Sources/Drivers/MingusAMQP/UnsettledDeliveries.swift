/// One consumer channel's deliveries not settled yet, by delivery tag.
///
/// Tags arrive in increasing order and mostly settle in about that order, so the oldest
/// unsettled tag is kept at the front of an array and settling it only moves the front; a tag
/// settled while an older one is still open waits in a set until the front reaches it. Each
/// operation costs about the number of tags it settles, not the number in flight (up to the
/// prefetch, 2,000).
struct UnsettledDeliveries {
    /// Delivered tags in order from `front`; the ones in `settledLater` are settled.
    private var tags: [UInt64] = []
    private var front = 0
    private var settledLater: Set<UInt64> = []

    /// The oldest delivery not settled yet.
    var oldest: UInt64? { front < tags.count ? tags[front] : nil }

    mutating func delivered(_ tag: UInt64) {
        tags.append(tag)
    }

    /// Marks `tag` settled; false when it was not an unsettled delivery of this channel.
    mutating func settle(_ tag: UInt64) -> Bool {
        guard front < tags.count, tag >= tags[front], !settledLater.contains(tag) else { return false }
        if tag == tags[front] {
            front += 1
            advanceFront()
            return true
        }
        guard Self.binarySearch(tags, tag, from: front) else { return false }
        settledLater.insert(tag)
        return true
    }

    /// Marks every delivery up to `tag` settled (an ack or nack with `multiple`).
    mutating func settle(upTo tag: UInt64) {
        while front < tags.count && tags[front] <= tag {
            settledLater.remove(tags[front])
            front += 1
        }
        advanceFront()
    }

    /// Moves the front past tags already settled, and drops the settled part of the array once it
    /// is most of it.
    private mutating func advanceFront() {
        while front < tags.count, settledLater.remove(tags[front]) != nil {
            front += 1
        }
        if front == tags.count {
            tags.removeAll(keepingCapacity: true)
            front = 0
        } else if front >= 1024 && front * 2 >= tags.count {
            tags.removeFirst(front)
            front = 0
        }
    }

    private static func binarySearch(_ tags: [UInt64], _ tag: UInt64, from start: Int) -> Bool {
        var low = start
        var high = tags.count
        while low < high {
            let middle = (low + high) / 2
            if tags[middle] < tag { low = middle + 1 } else { high = middle }
        }
        return low < tags.count && tags[low] == tag
    }
}
