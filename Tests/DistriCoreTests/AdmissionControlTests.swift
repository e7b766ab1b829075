import DistriCore
import Testing

@Suite struct AdmissionControlTests {
    @Test("tasks start up to capacity, then queue up to the limit, then are refused as busy")
    func admission() {
        var control = AdmissionControl<Int>(capacity: 2, queueLimit: 2)
        let decisions = (1...6).map { control.admit($0) }
        #expect(decisions.map { "\($0)" } == ["start", "start", "queued", "queued", "busy", "busy"])
        #expect(control.inFlight == 2)
        #expect(control.queued == 2)
        #expect(control.load == 2.0)
    }

    @Test("finishing hands the slot to the oldest waiting task, and nothing is lost")
    func fifoHandOff() {
        var control = AdmissionControl<Int>(capacity: 1, queueLimit: 3)
        #expect("\(control.admit(1))" == "start")
        for id in 2...4 { _ = control.admit(id) }
        var started: [Int] = []
        while let next = control.finish() { started.append(next) }
        #expect(started == [2, 3, 4])
        #expect(control.isIdle)
    }

    @Test("draining refuses new work but lets queued work finish")
    func drain() {
        var control = AdmissionControl<Int>(capacity: 1, queueLimit: 1)
        _ = control.admit(1)
        _ = control.admit(2)
        control.beginDrain()
        #expect("\(control.admit(3))" == "shuttingDown")
        #expect(control.finish() == 2)
        #expect(control.finish() == nil)
        #expect(control.isIdle)
    }
}
