import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import DistriIdentity
import DistriImaging
import DistriPeer
import Foundation

/// The image and the recipient of a grant: what `send` and `permissions` name first.
struct GrantTarget: ParsableArguments {
    @Argument(help: "The image's name (or the file it was encrypted from).")
    var image: String

    @Option(name: .long, help: "The recipient peer's name.")
    var to: String

    /// The image's name in this peer's home.
    var name: String { PeerImages.defaultName(for: image) }
}

/// `distri-peer send image.png --to bob --views 3`.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send an encrypted image straight to another peer, with a number of views.",
        discussion: """
            The image must have been encrypted here first (`distri-peer encrypt`); IMAGE is its name or the \
            original file's name. The grant (image, owner, recipient, views) is signed by this peer and \
            recorded in the cloud's `permissions`, with the image's key sealed so that only the cloud can \
            open it. The sealed image goes to the recipient's daemon; when the recipient is offline the \
            send is queued (`distri-peer outbox`) and `distri-peer serve` delivers it when it comes back.
            """)

    @OptionGroup var target: GrantTarget

    @Option(name: .long, help: "How many times the recipient may view it (at least 1).")
    var views: UInt64

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func validate() throws {
        guard (1...ViewGrant.maxViews).contains(views) else {
            throw ValidationError("--views must be from 1 to \(ViewGrant.maxViews)")
        }
    }

    func run() async throws {
        let (name, recipient, views, json) = (target.name, target.to, self.views, json)
        let timing = TransferTiming()
        let outcome = try await withSharing(peer, cloud) {
            try await $0.send(
                image: name, to: recipient, views: views, progress: timing.progress(then: progressBar(enabled: !json)))
        }
        printSendOutcome(outcome, image: name, to: recipient, views: views, json: json, timing: timing)
    }
}

/// `distri-peer permissions image.png --to bob --views N`.
struct PermissionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "permissions",
        abstract: "Change how many views another peer has of an image this peer sent: 0 revokes.",
        discussion: """
            Signs a new grant that replaces the previous one (its remaining views start again at N). After a \
            revoke the cloud never releases the key for the old grant again, and the recipient's copy is \
            removed when it next tries to view it. A grant of views (N > 0) also delivers the image again \
            when the recipient no longer holds it (after a revoke removed it), as `send` does.
            """)

    @OptionGroup var target: GrantTarget

    @Option(name: .long, help: "Views from now on (0 revokes).")
    var views: UInt64

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func validate() throws {
        guard views <= ViewGrant.maxViews else {
            throw ValidationError("--views must be from 0 to \(ViewGrant.maxViews)")
        }
    }

    func run() async throws {
        let (name, recipient, views) = (target.name, target.to, self.views)
        let (grant, outcome) = try await withSharing(peer, cloud) { sharing in
            let grant = try await sharing.grant(image: name, to: recipient, views: views)
            // The recipient may no longer hold the image (a revoke removed it): deliver it again.
            let outcome = views > 0 ? try await sharing.deliver(granted: grant) : nil
            return (grant, outcome)
        }
        if json {
            var fields: [String: JSONValue] = [
                "grant": .string(grant.id), "views": .number(Double(views)),
                "sequence": .number(Double(grant.sequence)),
            ]
            if let outcome { fields["delivery"] = .string(outcome.status) }
            printLine(JSONValue.object(fields).outputText)
        } else if views == 0 {
            printLine("revoked \(recipient)'s views of \(name)")
        } else {
            printLine("\(recipient) may view \(name) \(views) time\(views == 1 ? "" : "s")")
            if case .queued(let reason)? = outcome { printLine("not delivered: \(reason); queued in the outbox") }
        }
    }
}

/// `distri-peer outbox`.
struct OutboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outbox",
        abstract: "What became of each image this peer sent: queued, in the mailbox, delivered, viewed, revoked.",
        discussion: """
            One line per grant this peer made, as the cloud holds it (views left), joined with this peer's \
            outbox (sends no one took yet; `distri-peer serve` retries them) and its record of deliveries. \
            States: queued (waits here), mailbox (left in the cloud's mailbox for the recipient's daemon), \
            delivered (not viewed yet), viewed (views left), noViewsLeft, revoked, granted (no delivery \
            recorded in this home). When the cloud cannot be reached, what this home knows is shown, \
            without the views left.
            """)

    @Flag(name: .long, help: "Try to deliver the queued sends now.")
    var retry = false

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func run() async throws {
        var delivered = 0
        let json = json
        if retry {
            delivered = try await withSharing(peer, cloud) {
                try await $0.deliverOutbox(progress: progressBar(enabled: !json)).delivered
            }
        }
        let sends: [SentImage]
        do {
            sends = try await withSharing(peer, cloud) { try await $0.sends() }
        } catch let error where UserFacingError(error).category == .unreachable {
            printWarning("\(UserFacingError(error).message); showing what this home knows (views left unknown)")
            sends = try PeerSharing.sends(in: try peer.resolveHome())
        }
        if json {
            printLine(JSONValue.array(sends.map(\.readableJSON)).outputText)
            return
        }
        if retry { printLine("delivered \(delivered)") }
        if sends.isEmpty {
            printLine("nothing sent yet")
            return
        }
        printTable(
            [["image", "to", "views left", "state", "since", "detail"]]
                + sends.map { sent in
                    [
                        sent.image, sent.recipient,
                        sent.remaining.map { "\($0) of \(sent.views)" } ?? "? of \(sent.views)",
                        sent.state.words, sent.at.map(Self.since) ?? "-",
                        sent.detail.map(UserFacingError.readable) ?? "",
                    ]
                })
    }

    /// `millis` since 1970 as a short local date and time.
    static func since(_ millis: UInt64) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}

extension SentImage {
    /// ``json`` with the detail in words.
    var readableJSON: JSONValue {
        guard case .object(var fields) = json, let detail else { return json }
        fields["detail"] = .string(UserFacingError.readable(detail))
        return .object(fields)
    }
}

/// `distri-peer view image.png --from alice`.
struct ViewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "View an image another peer sent: uses one of its views.",
        discussion: """
            Everything that can fail here is checked first (the --out file, the --viewer program), so a \
            view is never spent on an image that cannot be shown. Then the cloud takes one view and only \
            then releases the image's key, sealed to this peer; the image is checked against the owner's \
            signed grant and decrypted. With --out it is saved there (an existing file only with --force); \
            with --viewer the command line is run on a temporary copy (0600) removed when it exits, and \
            fails the command when it fails; with --show (the default on a terminal) it is drawn in the \
            terminal; when standard output is a pipe or a file, the decrypted PNG is written to it and the \
            summary to standard error (`distri-peer view IMG --from alice > out.png`). When no views are \
            left, or the owner revoked them, the local copy is removed.
            """)

    @Argument(help: "The image's name.")
    var image: String

    @Option(name: .long, help: "The peer that sent it.")
    var from: String

    @Option(name: .long, help: ArgumentHelp("Save the decrypted PNG here.", valueName: "file"))
    var out: String?

    @Flag(name: .long, help: "Replace the --out file when it exists.")
    var force = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A command line to open the image with (e.g. \"feh -F\"); the file is added last.", valueName: "command"))
    var viewer: String?

    @Flag(
        name: .long,
        help:
            "Show the image in the terminal (24-bit colour); the default without --out, --viewer or --json on a terminal."
    )
    var show = false

    @Option(name: .long, help: "Width in characters when showing the image (default: $COLUMNS, else 80).")
    var columns: Int?

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    /// Where the image goes, decided and checked before a view is taken.
    private enum Destination {
        case file(String)
        case viewer(ViewerCommand)
        case terminal
        /// Standard output is a pipe or a file: the PNG goes there, the summary to standard error.
        case pipe
        case summary
    }

    private func destination() throws -> Destination {
        if let out {
            if FileManager.default.fileExists(atPath: out), !force {
                throw ValidationError("\(out) exists; add --force to replace it (no view was used)")
            }
            let directory = (out as NSString).deletingLastPathComponent
            let parent = directory.isEmpty ? "." : directory
            guard access(parent, W_OK) == 0 else {
                throw ValidationError(
                    "cannot write in \(parent): \(String(cString: strerror(errno))) (no view was used)")
            }
            return .file(out)
        }
        if let viewer {
            do {
                return .viewer(try ViewerCommand(viewer))
            } catch {
                throw ValidationError("\(error) (no view was used)")
            }
        }
        if show || (!json && isatty(STDOUT_FILENO) != 0) {
            // A file that is not an image is kept in the working directory instead of drawn.
            guard access(".", W_OK) == 0 else {
                throw ValidationError(
                    "cannot write in the working directory (where a file that is not an image is kept): give --out (no view was used)"
                )
            }
            return .terminal
        }
        return json ? .summary : .pipe
    }

    func run() async throws {
        let name = PeerImages.defaultName(for: image)
        let owner = from
        let destination = try destination()
        let viewed = try await withSharing(peer, cloud) { try await $0.view(image: name, from: owner) }
        // A large file was opened into a temporary file: moved where it goes, else removed.
        defer { if let file = viewed.file { try? FileManager.default.removeItem(atPath: file) } }
        var saved: String?
        switch destination {
        case .file(let path):
            try OpenedContent.put(viewed, at: path)
            saved = path
        case .viewer(let command):
            try open(viewed, with: command)
        case .pipe:
            try OpenedContent.write(viewed, to: FileHandle.standardOutput)
        case .terminal where viewed.kind == .file:
            // Not an image: kept as a file (the view is not lost), in the working directory.
            saved = try SavedFile.keep(viewed)
        case .terminal, .summary:
            break
        }
        if case .terminal = destination, viewed.kind != .file {
            let bytes = try viewed.contents()
            let decoded = viewed.kind == .jpeg ? try JPEGCodec.decode(bytes) : try PNGCodec.decode(bytes).image
            let width = columns ?? ProcessInfo.processInfo.environment["COLUMNS"].flatMap { Int($0) } ?? 80
            FileHandle.standardOutput.write(Data(TerminalImage.render(decoded, columns: max(8, width)).utf8))
        }
        let summary: String
        if json {
            var fields: [String: JSONValue] = [
                "image": .string(name), "from": .string(owner), "bytes": .number(Double(viewed.bytes)),
                "kind": .string(viewed.kind.name), "mediaType": .string(viewed.mediaType),
                "fileName": .string(viewed.fileName),
                "width": .number(Double(viewed.width)), "height": .number(Double(viewed.height)),
                "remaining": .number(Double(viewed.remaining)), "views": .number(Double(viewed.views)),
            ]
            fields["saved"] = saved.map(JSONValue.string) ?? .null
            summary = JSONValue.object(fields).outputText
        } else {
            let what =
                viewed.kind == .file
                ? "\(viewed.fileName) (\(viewed.mediaType))"
                : "\(viewed.kind.name.uppercased()) \(viewed.width)x\(viewed.height)"
            summary =
                "\(name) from \(owner): \(what), \(viewed.bytes) bytes; \(viewed.remaining) of \(viewed.views) views left"
                + (saved.map { "\nsaved to \($0)" } ?? "")
        }
        if case .pipe = destination {
            FileHandle.standardError.write(Data((summary + "\n").utf8))
        } else {
            printLine(summary)
        }
    }

    /// Runs the viewer on a temporary 0600 copy (with the original's extension, so the viewer knows
    /// its type), removed afterwards; throws when it fails.
    private func open(_ viewed: PeerSharing.Viewed, with command: ViewerCommand) throws {
        let pathExtension = (viewed.fileName as NSString).pathExtension
        let temporary = (NSTemporaryDirectory() as NSString).appendingPathComponent(
            "distri-view-\(UUID().uuidString)" + (pathExtension.isEmpty ? "" : "." + pathExtension))
        try OpenedContent.put(viewed, at: temporary, overwrite: false)
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command.executable)
        process.arguments = command.arguments + [temporary]
        try process.run()
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw PeerError(
                "the viewer \(command.executable) failed (\(process.terminationReason == .exit ? "exit status" : "signal") \(process.terminationStatus)); the view was used"
            )
        }
    }
}

/// Keeps a viewed file that is not an image in the working directory, under its own name, never over
/// an existing file (`NAME (1).EXT`, `NAME (2).EXT`, ...).
enum SavedFile {
    static func keep(_ viewed: PeerSharing.Viewed) throws -> String {
        let name = (viewed.fileName as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        let pathExtension = (name as NSString).pathExtension
        // Bounded: at most 1000 names are tried.
        for attempt in 0..<1000 {
            let candidate =
                attempt == 0
                ? name : "\(stem) (\(attempt))" + (pathExtension.isEmpty ? "" : "." + pathExtension)
            if FileManager.default.fileExists(atPath: candidate) { continue }
            try OpenedContent.put(viewed, at: candidate, overwrite: false)
            return candidate
        }
        throw PeerError("\(name) and 999 numbered copies exist in the working directory; give --out")
    }
}

/// Where a viewed original goes: written from memory, or, when it was opened into a temporary file
/// (a large one), moved or streamed from there.
enum OpenedContent {
    /// Puts the original at `path` (0600), replacing a file there only when `overwrite`.
    static func put(_ viewed: PeerSharing.Viewed, at path: String, overwrite: Bool = true) throws {
        guard let file = viewed.file else {
            try SecureFiles.write(viewed.image, to: path, overwrite: overwrite)
            return
        }
        if FileManager.default.fileExists(atPath: path) {
            guard overwrite else { throw PeerError("\(path) already exists") }
            try FileManager.default.removeItem(atPath: path)
        }
        // A rename on the same file system, else a copy.
        try FileManager.default.moveItem(atPath: file, toPath: path)
        guard chmod(path, 0o600) == 0 else { throw PeerError("cannot set 0600 on \(path)") }
    }

    /// Writes the original to `handle`, 1 MiB at a time from a temporary file.
    static func write(_ viewed: PeerSharing.Viewed, to handle: FileHandle) throws {
        guard let file = viewed.file else {
            handle.write(Data(viewed.image))
            return
        }
        guard let source = FileHandle(forReadingAtPath: file) else { throw PeerError("cannot read \(file)") }
        defer { try? source.close() }
        // Bounded by the file's length: each pass writes at least one byte or ends.
        while let piece = try source.read(upToCount: 1 << 20), !piece.isEmpty { handle.write(piece) }
    }
}
