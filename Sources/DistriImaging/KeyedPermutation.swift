/// A keyed permutation of `0..<count`: four rounds of an unbalanced Feistel network over the smallest
/// power-of-two domain that holds `count`, with cycle walking back into range. One evaluation costs a
/// few multiplications and, on average, fewer than two walks (the domain is less than twice `count`).
struct KeyedPermutation: Sendable {
    let count: Int
    private let bits: Int
    private let lowBits: Int
    private let lowMask: UInt64
    private let roundKeys: (UInt64, UInt64, UInt64, UInt64)

    init(count: Int, key: (UInt64, UInt64, UInt64, UInt64)) {
        precondition(count >= 0)
        self.count = count
        let domainBits = count <= 2 ? 1 : (Int.bitWidth - (count - 1).leadingZeroBitCount)
        bits = domainBits
        lowBits = (domainBits + 1) / 2
        lowMask = (UInt64(1) << UInt64(lowBits)) - 1
        roundKeys = key
    }

    @inline(__always)
    private func round(_ x: UInt64, _ key: UInt64) -> UInt64 {
        let high = x >> UInt64(lowBits)
        let low = (x & lowMask) ^ (((high ^ key) &* 0x9E37_79B9_7F4A_7C15) >> 32) & lowMask
        return low << UInt64(bits - lowBits) | high
    }

    @inline(__always)
    private func step(_ x: UInt64) -> UInt64 {
        round(round(round(round(x, roundKeys.0), roundKeys.1), roundKeys.2), roundKeys.3)
    }

    @inline(__always)
    private func inverseRound(_ x: UInt64, _ key: UInt64) -> UInt64 {
        let high = x & ((UInt64(1) << UInt64(bits - lowBits)) - 1)
        let low = (x >> UInt64(bits - lowBits)) ^ (((high ^ key) &* 0x9E37_79B9_7F4A_7C15) >> 32) & lowMask
        return high << UInt64(lowBits) | low
    }

    @inline(__always)
    private func inverseStep(_ x: UInt64) -> UInt64 {
        inverseRound(
            inverseRound(inverseRound(inverseRound(x, roundKeys.3), roundKeys.2), roundKeys.1), roundKeys.0)
    }

    /// The index whose image is `position` (which must be below `count`).
    @inline(__always)
    func inverse(_ position: Int) -> Int {
        var x = inverseStep(UInt64(position))
        var remaining = 1 << bits
        while x >= UInt64(count) && remaining > 0 {
            x = inverseStep(x)
            remaining -= 1
        }
        return Int(x)
    }

    /// The image of `index` (which must be below `count`).
    @inline(__always)
    func callAsFunction(_ index: Int) -> Int {
        var x = step(UInt64(index))
        // The walk stays on the cycle through `index`, which holds at most 2^bits elements.
        var remaining = 1 << bits
        while x >= UInt64(count) && remaining > 0 {
            x = step(x)
            remaining -= 1
        }
        return Int(x)
    }
}
