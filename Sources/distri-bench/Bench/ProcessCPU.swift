import Foundation

/// CPU time (user and system) a process has used so far, from Linux's `/proc/PID/stat`; nil where
/// that file cannot be read (another system, or the process has exited).
enum ProcessCPU {
    static func seconds(of pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After the command name, which may hold spaces: the state is field 3 of proc(5), utime 14, stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
