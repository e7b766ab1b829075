import DistriCore
import Testing

/// The task router's rules, event by event.
@Suite struct TaskRouterTests {
    typealias Router = TaskRouter<String, String, Int>

    static func member(_ id: String, load: Double = 0, electable: Bool = true) -> RoutingMember<Int> {
        RoutingMember(
            id: id, address: Int(id.dropFirst()) ?? 0, services: ["S"], load: load, capacity: 4, electable: electable)
    }

    static func arrival(
        _ task: String, id: UInt64, routing: TaskRouting = .elect, placement: TaskPlacement = .elected,
        deadline: UInt64? = nil
    ) -> TaskArrival<String> {
        TaskArrival(task: task, taskID: id, service: "S", routing: routing, placement: placement, deadline: deadline)
    }

    @Test func alone_it_runs_here_queues_then_refuses_busy() {
        var router = Router(localID: "n0", settings: .init(capacity: 1, queueLimit: 1), seed: 1)
        #expect(router.arrived(Self.arrival("a", id: 1), now: 0).isRun("a"))
        #expect(router.arrived(Self.arrival("b", id: 2), now: 0).isEmpty)
        #expect(router.arrived(Self.arrival("c", id: 3), now: 0).refusals == ["c": .busy])
        let next = router.executed(taskID: 1, admitted: true, result: "ok", remember: true, cost: 0, now: 1)
        #expect(next.isRun("b"))
        #expect(router.counters.accepted == 2 && router.counters.rejectedBusy == 1)
    }

    @Test func a_retry_joins_the_run_then_replays_its_result() {
        var router = Router(localID: "n0", seed: 1)
        _ = router.arrived(Self.arrival("first", id: 7, routing: .local), now: 0)
        #expect(router.arrived(Self.arrival("retry", id: 7, routing: .local), now: 1).isEmpty)
        let done = router.executed(taskID: 7, admitted: true, result: "r", remember: true, cost: 0, now: 2)
        #expect(done.replies == ["retry": "r"])
        #expect(router.arrived(Self.arrival("late", id: 7, routing: .local), now: 3).replies == ["late": "r"])
        #expect(router.counters.deduplicated == 2)
    }

    @Test func a_less_loaded_member_gets_the_task_and_failover_looks_for_a_holder_first() {
        var router = Router(localID: "n0", settings: .init(capacity: 1), seed: 1)
        _ = router.membersChanged([Self.member("n1"), Self.member("n2", load: 0.9)], now: 0)
        _ = router.arrived(Self.arrival("busy", id: 1, routing: .local), now: 0)
        let actions = router.arrived(Self.arrival("t", id: 2), now: 0)
        guard case .forward("t", let route, "n1", 1) = actions.first else {
            Issue.record("expected a forward to n1, got \(actions)")
            return
        }
        // n1 fails: the router asks the others whether one has the task before electing again.
        let failed = router.forwardFinished(route, outcome: .failedRetryable("lost"), now: 5)
        guard case .askStatus(let lookup, 2, let asked) = failed.first else {
            Issue.record("expected a status look-up, got \(failed)")
            return
        }
        #expect(asked.map(\.id) == ["n2"])
        let resent = router.statusAnswered(lookup, holder: "n2", now: 6)
        guard case .forward("t", _, "n2", 2) = resent.first else {
            Issue.record("expected the task to go to its holder n2, got \(resent)")
            return
        }
        #expect(router.counters.failovers == 1 && router.counters.tasksForwarded == 2)
    }

    @Test func a_member_declared_dead_gives_up_its_tasks_once() {
        var router = Router(localID: "n0", settings: .init(capacity: 1), seed: 1)
        _ = router.membersChanged([Self.member("n1")], now: 0)
        _ = router.arrived(Self.arrival("busy", id: 1, routing: .local), now: 0)
        guard case .forward(_, let route, "n1", _) = router.arrived(Self.arrival("t", id: 2), now: 0).first else {
            Issue.record("expected a forward")
            return
        }
        // A suspect keeps its tasks; once gone, the task fails over (here: back to this node's queue).
        #expect(router.membersChanged([Self.member("n1", electable: false)], now: 1).isEmpty)
        #expect(router.forwardsInFlight == 1)
        _ = router.membersChanged([], now: 2)
        #expect(router.forwardsInFlight == 0)
        // The executor's late answer is ignored: the task was settled.
        #expect(router.forwardFinished(route, outcome: .answered("late"), now: 3).isEmpty)
    }

    @Test func a_queued_task_whose_deadline_passed_is_refused_not_run() {
        var router = Router(localID: "n0", settings: .init(capacity: 1, queueLimit: 2), seed: 1)
        _ = router.arrived(Self.arrival("a", id: 1, routing: .local), now: 0)
        _ = router.arrived(Self.arrival("b", id: 2, routing: .local, deadline: 10), now: 0)
        _ = router.arrived(Self.arrival("c", id: 3, routing: .local), now: 0)
        let next = router.executed(taskID: 1, admitted: true, result: "ok", remember: true, cost: 0, now: 20)
        #expect(next.refusals == ["b": .deadlinePassedInQueue])
        #expect(next.isRun("c"))
    }

    @Test func draining_refuses_new_tasks_and_reports_idle() {
        var router = Router(localID: "n0", seed: 1)
        _ = router.arrived(Self.arrival("a", id: 1, routing: .local), now: 0)
        router.beginDrain()
        #expect(router.arrived(Self.arrival("b", id: 2, routing: .local), now: 0).refusals == ["b": .shuttingDown])
        let done = router.executed(taskID: 1, admitted: true, result: "ok", remember: false, cost: 0, now: 1)
        #expect(done.contains { if case .becameIdle = $0 { true } else { false } })
    }
}

extension Array where Element == TaskAction<String, String, Int> {
    func isRun(_ task: String) -> Bool {
        contains { if case .run(task, true) = $0 { true } else { false } }
    }

    var replies: [String: String] {
        var found: [String: String] = [:]
        for case .reply(let task, let reply) in self { found[task] = reply }
        return found
    }

    var refusals: [String: TaskRefusal] {
        var found: [String: TaskRefusal] = [:]
        for case .refuse(let task, let refusal) in self { found[task] = refusal }
        return found
    }
}
