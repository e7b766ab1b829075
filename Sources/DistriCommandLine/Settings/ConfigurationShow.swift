extension ResolvedSettings {
    /// Prints the settings as `config show` does: the file read and a table of every setting with
    /// its value and source, or JSON.
    public func show(json: JSONOutputOptions) {
        if json.enabled {
            printLine(self.json.outputText)
        } else {
            if let configFile { printLine("configuration file: \(configFile)") }
            printLine(table)
        }
    }
}
