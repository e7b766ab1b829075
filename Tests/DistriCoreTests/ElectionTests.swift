import DistriCore
import Testing

@Suite struct ElectionTests {
    private func candidates(_ loads: [Double], outstanding: [Int]? = nil) -> [ElectionCandidate] {
        loads.enumerated().map { index, load in
            ElectionCandidate(id: "n\(index)", load: load, outstanding: outstanding?[index] ?? 0, capacity: 10)
        }
    }

    @Test("the least loaded node is elected, exactly one")
    func leastLoaded() {
        var random = SimulationRandom(seed: 1)
        let winner = Election.elect(candidates([0.9, 0.2, 0.5]), local: nil, taskID: 7, random: &random)
        #expect(winner?.id == "n1")
    }

    @Test("outstanding forwards count as load, so a burst does not all go to one node")
    func outstandingCounts() {
        var random = SimulationRandom(seed: 1)
        var outstanding = [0, 0, 0]
        var chosen: [String: Int] = [:]
        for task in 0..<30 {
            let winner = Election.elect(
                candidates([0, 0, 0], outstanding: outstanding), local: nil, taskID: UInt64(task), random: &random)!
            chosen[winner.id, default: 0] += 1
            outstanding[Int(winner.id.dropFirst())!] += 1
        }
        #expect(chosen.values.sorted() == [10, 10, 10])
    }

    @Test("the electing node keeps ties and near-ties, saving a hop")
    func localPreference() {
        var random = SimulationRandom(seed: 1)
        let tie = Election.elect(candidates([0.3, 0.3, 0.3]), local: "n2", taskID: 1, random: &random)
        #expect(tie?.id == "n2")
        let clearlyBusier = Election.elect(candidates([0.1, 0.9, 0.1]), local: "n1", taskID: 1, random: &random)
        #expect(clearlyBusier?.id != "n1")
    }

    @Test("ties between remote nodes are broken by a stable hash of task and node")
    func deterministicTies() {
        var first = SimulationRandom(seed: 1)
        var second = SimulationRandom(seed: 99)
        let ids = (0..<200).map { task in
            Election.elect(candidates([0.5, 0.5, 0.5, 0.5]), local: nil, taskID: UInt64(task), random: &first)!.id
        }
        let again = (0..<200).map { task in
            Election.elect(candidates([0.5, 0.5, 0.5, 0.5]), local: nil, taskID: UInt64(task), random: &second)!.id
        }
        #expect(ids == again)
        #expect(Set(ids).count == 4, "ties spread over all nodes")
    }

    @Test("a node warming up gets fewer tasks than its equals")
    func warmUp() {
        var random = SimulationRandom(seed: 3)
        var pool = candidates([0.2, 0.2])
        pool[1].warmUp = 1
        for task in 0..<50 {
            #expect(Election.elect(pool, local: nil, taskID: UInt64(task), random: &random)?.id == "n0")
        }
    }

    @Test("beyond the full-scan limit two random choices are compared, and never the same node twice")
    func powerOfTwo() {
        var random = SimulationRandom(seed: 5)
        let many = candidates((0..<40).map { Double($0) / 40 })
        var wins: [String: Int] = [:]
        for task in 0..<2000 {
            let winner = Election.elect(many, local: nil, taskID: UInt64(task), random: &random)!
            wins[winner.id, default: 0] += 1
        }
        #expect(wins["n39"] == nil, "the busiest node never wins a pair")
        #expect((wins["n0"] ?? 0) > (wins["n20"] ?? 0))
    }

    @Test("no candidates, no executor")
    func empty() {
        var random = SimulationRandom(seed: 1)
        #expect(Election.elect([], local: "n0", taskID: 1, random: &random) == nil)
    }
}

@Suite struct DedupWindowTests {
    @Test("a retry of a finished task replays its result instead of running again")
    func replay() {
        var window = DedupWindow<String, Int>()
        #expect("\(window.begin(42, waiter: 1, now: 0))" == "run")
        #expect(window.finish(42, result: "done", now: 10).isEmpty)
        guard case .replay(let result) = window.begin(42, waiter: 2, now: 20) else {
            Issue.record("expected a replay")
            return
        }
        #expect(result == "done")
    }

    @Test("a retry during the run waits for it and gets the same result")
    func joinRunning() {
        var window = DedupWindow<String, Int>()
        _ = window.begin(7, waiter: 1, now: 0)
        #expect("\(window.begin(7, waiter: 2, now: 1))" == "wait")
        #expect("\(window.begin(7, waiter: 3, now: 2))" == "wait")
        #expect(window.finish(7, result: "r", now: 3) == [2, 3])
    }

    @Test("an abandoned run (refused as busy) lets the retry run")
    func abandon() {
        var window = DedupWindow<String, Int>()
        _ = window.begin(7, waiter: 1, now: 0)
        _ = window.begin(7, waiter: 2, now: 0)
        #expect(window.abandon(7) == [2])
        #expect("\(window.begin(7, waiter: 3, now: 1))" == "run")
    }

    @Test("finished tasks are forgotten after the retention, the count limit or the cost budget")
    func expiry() {
        var window = DedupWindow<String, Int>(capacity: 2, retention: 100, costBudget: 1000)
        for id in 1...3 {
            _ = window.begin(UInt64(id), waiter: 0, now: 0)
            _ = window.finish(UInt64(id), result: "\(id)", cost: 10, now: 0)
        }
        #expect(window.count == 2)
        #expect("\(window.begin(1, waiter: 0, now: 1))" == "run")
        _ = window.begin(9, waiter: 0, now: 500)
        #expect(window.count == 2, "2 and 3 expired by time; 1 runs, 9 runs")
        _ = window.finish(9, result: "big", cost: 5000, now: 500)
        #expect(window.count == 1, "over the cost budget: the oldest finished ones go")
    }
}
