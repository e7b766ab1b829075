/// Where a setting's value came from.
public enum SettingSource: Sendable, Equatable, CustomStringConvertible {
    /// The command line: `--KEY`.
    case flag(String)
    /// The environment: `DISTRI_KEY`.
    case environment(String)
    /// The configuration file, at a line (1-based).
    case file(path: String, line: Int)
    /// The setting's default.
    case defaultValue
    /// No layer gave a value and the setting has no default.
    case unset

    public var description: String {
        switch self {
        case .flag(let flag): "flag \(flag)"
        case .environment(let name): "environment \(name)"
        case .file(let path, let line): "file \(path):\(line)"
        case .defaultValue: "default"
        case .unset: "unset"
        }
    }

    /// Short form for tables and JSON: `flag`, `environment`, `file`, `default`, `unset`.
    public var layer: String {
        switch self {
        case .flag: "flag"
        case .environment: "environment"
        case .file: "file"
        case .defaultValue: "default"
        case .unset: "unset"
        }
    }
}
