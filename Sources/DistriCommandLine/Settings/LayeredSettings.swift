import Configuration
import Foundation
import Synchronization

/// Resolves a command's settings through swift-configuration, in order of precedence: the flags
/// given, the environment (`DISTRI_KEY`), the configuration file, the defaults. Every value is
/// read at the kind its setting declares; one of the wrong kind is an error naming where it came
/// from (the flag, the variable, the file's line).
public enum LayeredSettings {
    /// Resolves `specs`. `flags` holds only the flags given on the command line.
    public static func resolve(
        _ specs: [SettingSpec], flags: [String: SettingValue], configFile: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ResolvedSettings {
        let file = try configFile.map { try ConfigurationFile.load($0, specs: specs) }
        let flagProvider = InMemoryProvider(
            name: "flags", values: Dictionary(uniqueKeysWithValues: flags.map { (key($0.key), config($0.value)) }))
        // A setting's key becomes the words of its variable's name, which the provider joins with `_`
        // in capitals again: `max-payload-mib` is looked up as DISTRI_MAX_PAYLOAD_MIB.
        let variables = Dictionary(uniqueKeysWithValues: specs.map { ($0.key, $0.environmentName) })
        let environmentProvider = EnvironmentVariablesProvider(environmentVariables: environment).mapKeys { key in
            let name = variables[key.components.joined(separator: ".")] ?? "DISTRI_UNKNOWN"
            return AbsoluteConfigKey(name.lowercased().split(separator: "_").map(String.init))
        }
        let defaultProvider = InMemoryProvider(
            name: "defaults",
            values: Dictionary(
                uniqueKeysWithValues: specs.compactMap { spec in spec.defaultValue.map { (key(spec.key), config($0)) } }
            ))
        var providers: [any ConfigProvider] = [flagProvider, environmentProvider]
        if let file { providers.append(try await fileProvider(file)) }
        providers.append(defaultProvider)

        let sources = SourceRecorder()
        let reader = ConfigReader(providers: providers, accessReporter: sources)
        func source(of spec: SettingSpec) -> SettingSource {
            switch sources.provider(of: spec.key) {
            case flagProvider.providerName?: .flag(spec.flag)
            case environmentProvider.providerName?: .environment(spec.environmentName)
            case defaultProvider.providerName?: .defaultValue
            case nil: .unset
            default: file.map { .file(path: $0.path, line: $0.lines[spec.key] ?? 1) } ?? .unset
            }
        }
        var entries: [ResolvedSettings.Entry] = []
        for spec in specs {
            do {
                let value = try await read(spec, from: reader)
                entries.append(.init(spec: spec, value: value, source: value == nil ? .unset : source(of: spec)))
            } catch {
                func raw(_ spec: SettingSpec) -> String? {
                    source(of: spec) == .environment(spec.environmentName) ? environment[spec.environmentName] : nil
                }
                throw CommandFailure.configuration(
                    "\(spec.key) from \(source(of: spec)) must be \(spec.kind.words)"
                        + ((sources.rawValue(of: spec.key) ?? raw(spec)).map { ", not '\($0)'" } ?? ""))
            }
        }
        return ResolvedSettings(entries: entries, configFile: file?.path)
    }

    private static func read(_ spec: SettingSpec, from reader: ConfigReader) async throws -> SettingValue? {
        let key = ConfigKey([spec.key])
        return switch spec.kind {
        case .text: try await reader.fetchString(forKey: key).map(SettingValue.text)
        case .integer: try await reader.fetchInt(forKey: key).map(SettingValue.integer)
        case .number: try await reader.fetchDouble(forKey: key).map(SettingValue.number)
        case .boolean: try await reader.fetchBool(forKey: key).map(SettingValue.boolean)
        case .list: try await reader.fetchStringArray(forKey: key).map(SettingValue.list)
        }
    }

    private static func fileProvider(_ file: ConfigurationFile) async throws -> any ConfigProvider {
        let location = ConfigReader(
            provider: InMemoryProvider(values: ["filePath": ConfigValue(.string(file.path), isSecret: false)]))
        do {
            switch file.format {
            case .json: return try await FileProvider<JSONSnapshot>(config: location)
            case .yaml: return try await FileProvider<YAMLSnapshot>(config: location)
            }
        } catch {
            throw CommandFailure.configuration("configuration file \(file.path): \(error)")
        }
    }

    private static func key(_ name: String) -> AbsoluteConfigKey { AbsoluteConfigKey([name]) }

    private static func config(_ value: SettingValue) -> ConfigValue {
        let content: ConfigContent =
            switch value {
            case .text(let text): .string(text)
            case .integer(let integer): .int(integer)
            case .number(let number): .double(number)
            case .boolean(let boolean): .bool(boolean)
            case .list(let items): .stringArray(items)
            }
        return ConfigValue(content, isSecret: false)
    }
}

/// Records, for each key read, the provider whose value won (the first that had one) and that
/// value as text: where `config show` and errors say a setting came from.
private final class SourceRecorder: AccessReporter {
    private let winners = Mutex<[String: (provider: String, raw: String?)]>([:])

    func report(_ event: AccessEvent) {
        let key = event.metadata.key.components.joined(separator: ".")
        for result in event.providerResults {
            guard case .success(let lookup) = result.result, let value = lookup.value else { continue }
            winners.withLock { $0[key] = (result.providerName, "\(value.content)") }
            return
        }
        // A provider that failed to convert its value is the one to blame.
        for result in event.providerResults {
            guard case .failure = result.result else { continue }
            winners.withLock { $0[key] = (result.providerName, nil) }
            return
        }
    }

    func provider(of key: String) -> String? { winners.withLock { $0[key]?.provider } }

    func rawValue(of key: String) -> String? { winners.withLock { $0[key]?.raw } }
}
