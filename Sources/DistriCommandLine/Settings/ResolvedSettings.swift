import DistriCore

/// A command's settings after resolution: each one's value and where it came from.
public struct ResolvedSettings: Sendable {
    /// One setting.
    public struct Entry: Sendable {
        public let spec: SettingSpec
        public let value: SettingValue?
        public let source: SettingSource
    }

    public let entries: [Entry]
    /// The configuration file read, if any.
    public let configFile: String?

    /// The entry of the setting named `key`, which the command's table must hold.
    public func entry(_ key: String) -> Entry {
        guard let entry = entries.first(where: { $0.spec.key == key }) else { preconditionFailure("no setting \(key)") }
        return entry
    }

    public func text(_ key: String) -> String? {
        if case .text(let text)? = entry(key).value { return text }
        return nil
    }

    public func integer(_ key: String) -> Int {
        if case .integer(let integer)? = entry(key).value { return integer }
        preconditionFailure("\(key) has no integer value")
    }

    public func number(_ key: String) -> Double {
        switch entry(key).value {
        case .number(let number)?: return number
        case .integer(let integer)?: return Double(integer)
        default: preconditionFailure("\(key) has no number value")
        }
    }

    public func boolean(_ key: String) -> Bool {
        if case .boolean(let boolean)? = entry(key).value { return boolean }
        return false
    }

    public func list(_ key: String) -> [String]? {
        if case .list(let items)? = entry(key).value { return items }
        return nil
    }

    /// A configuration error about `key`'s value, naming where it came from.
    public func invalid(_ key: String, _ requirement: String) -> CommandFailure {
        let entry = entry(key)
        return .configuration(
            "\(key) (\(entry.value.map(String.init(describing:)) ?? "unset"), from \(entry.source)) \(requirement)")
    }

    /// Throws ``invalid(_:_:)`` unless `condition` holds.
    public func require(_ condition: Bool, _ key: String, _ requirement: String) throws {
        if !condition { throw invalid(key, requirement) }
    }

    /// The table `config show` prints: setting, value, source.
    public var table: String {
        TextTable.render(
            headers: ["SETTING", "VALUE", "SOURCE"],
            rows: entries.map { [$0.spec.key, $0.value.map(String.init(describing:)) ?? "-", $0.source.description] },
            maxWidth: 160)
    }

    /// `config show --json`: `{"configFile", "settings": [{"key", "value", "source", "layer"}]}`.
    public var json: JSONValue {
        .object([
            "configFile": configFile.map(JSONValue.string) ?? .null,
            "settings": .array(
                entries.map { entry in
                    .object([
                        "key": .string(entry.spec.key),
                        "value": entry.value.map(Self.json) ?? .null,
                        "source": .string(entry.source.description),
                        "layer": .string(entry.source.layer),
                    ])
                }),
        ])
    }

    private static func json(_ value: SettingValue) -> JSONValue {
        switch value {
        case .text(let text): .string(text)
        case .integer(let integer): .number(Double(integer))
        case .number(let number): .number(number)
        case .boolean(let boolean): .bool(boolean)
        case .list(let items): .array(items.map(JSONValue.string))
        }
    }
}
