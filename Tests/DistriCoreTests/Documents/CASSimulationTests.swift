import Testing

@testable import DistriCore

/// Coordinators race to increment a view counter with a limit through the compare-and-set register,
/// over a network that drops and reorders messages, with some coordinators cut off from a majority.
@Suite struct CASSimulationTests {
    private enum Message {
        case prepare(from: Int, to: Int, ballot: Ballot)
        case promise(to: Int, from: Int, ballot: Ballot, CASAcceptor<Int>.Promise?, higher: Ballot)
        case propose(from: Int, to: Int, ballot: Ballot, value: Int)
        case accepted(to: Int, from: Int, ballot: Ballot, ok: Bool, higher: Ballot)
        case commit(to: Int, ballot: Ballot, value: Int)
    }

    struct Outcome {
        var successes: [Int] = []
        var finalValues: [Int?] = []
        var failure: String?
    }

    static func run(seed: UInt64, limit: Int) -> Outcome {
        var random = SimulationRandom(seed: seed)
        let replicas = [3, 5][Int.random(in: 0...1, using: &random)]
        let coordinators = Int.random(in: 2...4, using: &random)
        var acceptors = (0..<replicas).map { _ in CASAcceptor<Int>(initial: 0) }
        // Which replicas each coordinator can reach: some are cut off from a majority.
        let reach: [Set<Int>] = (0..<coordinators).map { _ in
            random.chance(0.3)
                ? Set((0..<replicas).filter { _ in random.chance(0.3) }.prefix(replicas / 2))
                : Set(0..<replicas)
        }
        let loss = Double.random(in: 0...0.2, using: &random)
        var rounds = Array(repeating: UInt64(0), count: coordinators)
        var proposers: [CASProposer<Int>?] = Array(repeating: nil, count: coordinators)
        var attempts = Array(repeating: 0, count: coordinators)
        var inFlight: [Message] = []
        var outcome = Outcome()
        let increment: @Sendable (Int?) -> Int? = { current in
            let value = current ?? 0
            return value < limit ? value + 1 : nil
        }

        func start(_ c: Int, after: Ballot = .zero) {
            rounds[c] = max(rounds[c], after.round) + 1
            let ballot = Ballot(round: rounds[c], node: "c\(c)")
            proposers[c] = CASProposer(ballot: ballot, replicas: replicas, change: increment)
            attempts[c] += 1
            for r in reach[c] { inFlight.append(.prepare(from: c, to: r, ballot: ballot)) }
        }

        func handle(_ step: CASProposer<Int>.Step?, coordinator c: Int) {
            guard let step, let proposer = proposers[c] else { return }
            switch step {
            case .propose(let value, _):
                for r in reach[c] { inFlight.append(.propose(from: c, to: r, ballot: proposer.ballot, value: value)) }
            case .commit(let value):
                for r in reach[c] { inFlight.append(.commit(to: r, ballot: proposer.ballot, value: value)) }
                if !proposer.committedRecovery { outcome.successes.append(value) }
                proposers[c] = nil
                if attempts[c] < 12 { start(c) }
            case .rejected:
                proposers[c] = nil
            case .retry(let higher):
                proposers[c] = nil
                if attempts[c] < 12 { start(c, after: higher) }
            }
        }

        for c in 0..<coordinators { start(c) }
        var steps = 0
        while !inFlight.isEmpty, steps < 20_000 {
            steps += 1
            let message = inFlight.remove(at: Int.random(in: 0..<inFlight.count, using: &random))
            if random.chance(loss) { continue }
            switch message {
            case .prepare(let c, let r, let ballot):
                let promise = acceptors[r].prepare(ballot)
                inFlight.append(.promise(to: c, from: r, ballot: ballot, promise, higher: acceptors[r].promised))
            case .promise(let c, let r, let ballot, let promise, let higher):
                guard proposers[c]?.ballot == ballot else { continue }
                handle(proposers[c]?.onPromise(from: "r\(r)", promise, higher: higher), coordinator: c)
            case .propose(let c, let r, let ballot, let value):
                let ok = acceptors[r].propose(ballot, value: value)
                inFlight.append(.accepted(to: c, from: r, ballot: ballot, ok: ok, higher: acceptors[r].promised))
            case .accepted(let c, let r, let ballot, let ok, let higher):
                guard proposers[c]?.ballot == ballot else { continue }
                handle(proposers[c]?.onAccept(from: "r\(r)", accepted: ok, higher: higher), coordinator: c)
            case .commit(let r, let ballot, let value):
                acceptors[r].commit(ballot, value: value)
            }
            for r in acceptors.indices where (acceptors[r].committed?.value ?? 0) > limit {
                outcome.failure =
                    "seed \(seed): replica \(r) holds \(acceptors[r].committed!.value) above limit \(limit)"
                return outcome
            }
        }
        outcome.finalValues = acceptors.map { $0.committed?.value }
        if outcome.successes.contains(where: { $0 > limit }) {
            outcome.failure = "seed \(seed): a success above the limit: \(outcome.successes)"
        } else if Set(outcome.successes).count != outcome.successes.count {
            outcome.failure =
                "seed \(seed): two successful increments produced the same value: \(outcome.successes.sorted())"
        } else if let top = outcome.successes.max(), top < outcome.successes.count {
            // An attempt whose commit never reached its coordinator may be finished by another (a
            // recovery): the counter may run ahead of the successes seen, never behind them.
            outcome.failure =
                "seed \(seed): \(outcome.successes.count) increments succeeded but the counter reached \(top)"
        }
        return outcome
    }

    @Test("a counter with a limit is never observed above it, and no increment is lost or doubled")
    func limitHolds() {
        var total = 0
        for seed in UInt64(0)..<600 {
            let outcome = Self.run(seed: seed, limit: Int(seed % 4) + 1)
            total += outcome.successes.count
            if let failure = outcome.failure {
                Issue.record("\(failure)")
                return
            }
        }
        #expect(total > 600, "increments do succeed")
    }

    @Test("a coordinator cut off from a majority decides nothing")
    func minorityRefuses() {
        var acceptors = (0..<5).map { _ in CASAcceptor<Int>(initial: 0) }
        var proposer = CASProposer<Int>(ballot: Ballot(round: 1, node: "m"), replicas: 5) { ($0 ?? 0) + 1 }
        var step: CASProposer<Int>.Step?
        for r in 0..<2 { step = proposer.onPromise(from: "r\(r)", acceptors[r].prepare(proposer.ballot)) ?? step }
        #expect(step == nil, "two of five promises are not a quorum")
    }
}
