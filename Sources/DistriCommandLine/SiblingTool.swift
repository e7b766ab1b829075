import Foundation

/// The project's other tools, installed beside the running one (`distri-node`, `distri-peer`,
/// `distri-bench` share a directory, as `swift build` and an install put them).
public enum SiblingTool {
    /// The path of tool `name` in the running tool's directory.
    public static func url(_ name: String) -> URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent(name)
    }
}
