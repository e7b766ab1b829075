import Foundation

/// Reads this process's resident memory.
enum ProcessMemory {
    /// Resident set size in bytes from `/proc/self/statm`; 0 where that file does not exist.
    static func residentBytes() -> UInt64 {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }
}
