/// Where a node's shell reports how long each run of a service took (a metrics histogram, one per
/// service). The recorder is made once per service and then used without the node's lock.
package protocol ServiceTimeRecorder: Sendable {
    func record(nanoseconds: Int64)
}

/// Makes the recorder of one service.
package typealias ServiceTimeRecorders = @Sendable (_ service: String) -> any ServiceTimeRecorder
