extension TaskRouter {
    /// Admits the task here, unless the dedup window answers it (a retry of a task that runs or ran
    /// here).
    @inlinable
    mutating func runHere(_ task: Task, taskID: UInt64, deadline: UInt64?, now: UInt64) -> [Action] {
        if taskID != 0 {
            switch dedup.begin(taskID, waiter: task, now: now) {
            case .wait:
                counters.deduplicated += 1
                return []
            case .replay(let result):
                counters.deduplicated += 1
                return [.reply(task, result)]
            case .run:
                break
            }
        }
        switch admission.admit(Queued(task: task, taskID: taskID, deadline: deadline)) {
        case .start:
            counters.accepted += 1
            return [.run(task, admitted: true)]
        case .queued:
            counters.accepted += 1
            return []
        case .busy:
            counters.rejectedBusy += 1
            return refuse(task, taskID: taskID, .busy)
        case .shuttingDown:
            counters.refusedDraining += 1
            return refuse(task, taskID: taskID, .shuttingDown)
        }
    }

    /// Answers a task that will not run here, and the retries that joined it: they may run elsewhere.
    @inlinable
    mutating func refuse(_ task: Task, taskID: UInt64, _ refusal: TaskRefusal) -> [Action] {
        let waiters = taskID == 0 ? [] : dedup.abandon(taskID)
        return [.refuse(task, refusal)] + waiters.map { .refuse($0, refusal) }
    }

    /// Elects among this node and the alive members offering the service, except those that failed
    /// the task; runs here or forwards to the winner.
    @inlinable
    mutating func elect(_ routed: Routed, now: UInt64) -> [Action] {
        let candidates = candidates(for: routed.service, excluding: routed.excluded, now: now)
        guard
            let winner = Election.elect(
                candidates, local: localID, taskID: routed.taskID, policy: settings.election, random: &random),
            winner.id != localID, let member = member(winner.id)
        else {
            counters.electionsWon += 1
            return runHere(routed.task, taskID: routed.taskID, deadline: routed.deadline, now: now)
        }
        return forward(routed, to: member)
    }

    /// A retried or failed-over task: if a member already has it (running or finished), it goes there
    /// so it runs at most once; otherwise it is elected as usual. Only members offering the service
    /// are asked.
    @inlinable
    mutating func lookUp(_ routed: Routed, now: UInt64) -> [Action] {
        guard routed.taskID != 0 else { return elect(routed, now: now) }
        if dedup.knows(routed.taskID) {
            return runHere(routed.task, taskID: routed.taskID, deadline: routed.deadline, now: now)
        }
        let asked = members.filter {
            $0.electable && $0.services.contains(routed.service) && !routed.excluded.contains($0.id)
        }
        guard !asked.isEmpty else { return elect(routed, now: now) }
        let route = nextRoute()
        lookups[route] = routed
        return [.askStatus(route: route, taskID: routed.taskID, members: asked.map { ($0.id, $0.address) })]
    }

    @inlinable
    mutating func forward(_ routed: Routed, to member: RoutingMember<Address>) -> [Action] {
        let route = nextRoute()
        forwards[route] = (routed, member.id)
        outstanding[member.id, default: 0] += 1
        counters.tasksForwarded += 1
        return [.forward(routed.task, route: route, member: member.id, address: member.address)]
    }

    /// Removes a forward and its count; nil when it was settled already.
    @inlinable
    mutating func settleForward(_ route: RouteID) -> (Routed, String)? {
        guard let (routed, member) = forwards.removeValue(forKey: route) else { return nil }
        let left = (outstanding[member] ?? 1) - 1
        outstanding[member] = left > 0 ? left : nil
        return (routed, member)
    }

    /// Member `id` was declared dead or left: every task forwarded to it fails over (a cut-off
    /// executor would otherwise hold the task until its deadline).
    @inlinable
    mutating func failOver(from id: String, now: UInt64) -> [Action] {
        let routes = forwards.filter { $0.value.member == id }.keys.sorted()
        var actions: [Action] = []
        for route in routes {
            guard let (routed, member) = settleForward(route) else { continue }
            counters.failovers += 1
            if let deadline = routed.deadline, deadline <= now {
                actions.append(.refuse(routed.task, .executorLost))
                continue
            }
            var again = routed
            again.excluded.insert(member)
            actions += lookUp(again, now: now)
        }
        return actions
    }

    /// This node (scored by its own admission) and the electable members offering `service`.
    @inlinable
    func candidates(for service: String, excluding excluded: Set<String>, now: UInt64) -> [ElectionCandidate] {
        var candidates = [ElectionCandidate(id: localID, load: admission.load, capacity: settings.capacity)]
        candidates.reserveCapacity(members.count + 1)
        for member in members
        where member.electable && member.services.contains(service) && !excluded.contains(member.id) {
            let since = aliveSince[member.id] ?? 0
            let age = now >= since ? now - since : 0
            let warmUp =
                settings.warmUpMillis == 0 ? 0 : max(0, 1 - Double(age) / Double(settings.warmUpMillis))
            candidates.append(
                ElectionCandidate(
                    id: member.id, load: member.load, outstanding: outstanding[member.id] ?? 0,
                    capacity: member.capacity, warmUp: warmUp))
        }
        return candidates
    }

    @inlinable
    func member(_ id: String) -> RoutingMember<Address>? {
        members.first { $0.id == id }
    }

    @inlinable
    mutating func nextRoute() -> RouteID {
        lastRoute += 1
        return lastRoute
    }
}
