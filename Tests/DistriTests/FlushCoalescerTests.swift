import Testing

@testable import Distri

@Suite struct FlushCoalescerTests {
    @Test("writes during a read burst flush once at its end; none is scheduled")
    func readBurst() {
        var flushes = FlushCoalescer()
        flushes.readStarted()
        let first = flushes.wrote()
        let second = flushes.wrote()
        let atEnd = flushes.readCompleted()
        flushes.readStarted()
        let emptyBurst = flushes.readCompleted()
        #expect(!first && !second, "nothing is scheduled while reading")
        #expect(atEnd, "the burst's end flushes")
        #expect(!emptyBurst, "nothing written in this burst")
    }

    @Test("writes outside a read schedule one flush for the turn, which then finds them")
    func outsideRead() {
        var flushes = FlushCoalescer()
        let first = flushes.wrote()
        let second = flushes.wrote()
        let scheduledRun = flushes.scheduledFlushRuns()
        let afterRun = flushes.wrote()
        // A read burst that ends first flushes them; the scheduled flush then has nothing left.
        flushes.readStarted()
        let atEnd = flushes.readCompleted()
        let lateRun = flushes.scheduledFlushRuns()
        #expect(first, "the first write schedules the flush")
        #expect(!second, "the second rides on it")
        #expect(scheduledRun)
        #expect(afterRun, "after it ran, the next write schedules another")
        #expect(atEnd)
        #expect(!lateRun)
    }
}
