import DistriClient
import DistriCore
import DistriWire
import NIOCore

/// Monotonic milliseconds for the pure cores.
package enum MonotonicClock {
    package static func millis() -> UInt64 {
        NIODeadline.now().uptimeNanoseconds / 1_000_000
    }
}
