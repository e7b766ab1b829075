import ArgumentParser
import DistriCommandLine
import DistriCore
import DistriIdentity
import DistriPeer
import Foundation

/// `distri-peer request image.png --from alice --views 5`.
struct RequestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Ask another peer for views of an image it published.",
        discussion: """
            The request is signed by this peer and recorded in the cloud's `requests`; the owner sees it in \
            `distri-peer inbox` and answers with `distri-peer grant` or `distri-peer reject`.
            """)

    @Argument(
        help: ArgumentHelp("The image's name, as the owner published it (older form: OWNER IMAGE).", valueName: "image")
    )
    var words: [String] = []

    @Option(name: .long, help: ArgumentHelp("The owner's name.", valueName: "peer"))
    var from: String?

    @Option(name: .long, help: "How many views to ask for.")
    var views: UInt64 = 1

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func validate() throws {
        guard (1...ViewGrant.maxViews).contains(views) else {
            throw ValidationError("--views must be from 1 to \(ViewGrant.maxViews)")
        }
        _ = try ImageAndPeer(words: words, option: from, flag: "--from", command: "request")
    }

    func run() async throws {
        let named = try ImageAndPeer(words: words, option: from, flag: "--from", command: "request")
        named.noteDeprecation()
        let (owner, name, views) = (named.peer, PeerImages.defaultName(for: named.image), views)
        let request = try await withSharing(peer, cloud) {
            try await $0.request(image: name, from: owner, views: views)
        }
        if json {
            printLine(JSONValue.object(request.document).outputText)
        } else {
            printLine("asked \(owner) for \(views) view\(views == 1 ? "" : "s") of \(name)")
        }
    }
}

/// `distri-peer grant image.png --to bob [--views N]`.
struct GrantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant",
        abstract: "Answer another peer's request with views, and send it the image.",
        discussion: "The same as `distri-peer send IMAGE --to PEER --views N`, and the request is marked granted.")

    @Argument(
        help: ArgumentHelp(
            "The image's name, or the file it was encrypted from (older form: PEER IMAGE).", valueName: "image"))
    var words: [String] = []

    @Option(name: .long, help: ArgumentHelp("The requesting peer's name.", valueName: "peer"))
    var to: String?

    @Option(name: .long, help: "Views to give (default: as many as asked for).")
    var views: UInt64?

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func validate() throws {
        if let views, !(1...ViewGrant.maxViews).contains(views) {
            throw ValidationError("--views must be from 1 to \(ViewGrant.maxViews)")
        }
        _ = try ImageAndPeer(words: words, option: to, flag: "--to", command: "grant")
    }

    func run() async throws {
        let named = try ImageAndPeer(words: words, option: to, flag: "--to", command: "grant")
        named.noteDeprecation()
        let (requester, name, views, json) = (named.peer, PeerImages.defaultName(for: named.image), views, json)
        let answer = try await withSharing(peer, cloud) {
            try await $0.grantRequest(image: name, to: requester, views: views, progress: progressBar(enabled: !json))
        }
        printSendOutcome(answer.outcome, image: name, to: requester, views: answer.views, json: json)
    }
}

/// `distri-peer reject image.png --to bob`.
struct RejectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reject", abstract: "Turn down another peer's request for an image.")

    @Argument(help: ArgumentHelp("The image's name (older form: PEER IMAGE).", valueName: "image"))
    var words: [String] = []

    @Option(name: .long, help: ArgumentHelp("The requesting peer's name.", valueName: "peer"))
    var to: String?

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func validate() throws {
        _ = try ImageAndPeer(words: words, option: to, flag: "--to", command: "reject")
    }

    func run() async throws {
        let named = try ImageAndPeer(words: words, option: to, flag: "--to", command: "reject")
        named.noteDeprecation()
        let (requester, name) = (named.peer, PeerImages.defaultName(for: named.image))
        try await withSharing(peer, cloud) { try await $0.reject(image: name, from: requester) }
        if json {
            printLine(
                JSONValue.object(["image": .string(name), "requester": .string(requester), "state": "rejected"])
                    .outputText)
        } else {
            printLine("rejected \(requester)'s request for \(name)")
        }
    }
}

/// `distri-peer inbox`.
struct InboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inbox",
        abstract: "Requests to this peer, images granted to it (waiting, received, viewed, revoked), its own requests.",
        discussion: """
            Every entry is checked against its signer's registered key; forged entries are not shown. An image \
            granted to this peer is waiting (not here yet), received (not viewed yet), viewed (views left), \
            noViewsLeft or revoked (`--json` has the state as `state`).
            """)

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @OptionGroup var peer: PeerOptions
    @OptionGroup var cloud: CloudOption

    func run() async throws {
        let inbox = try await withSharing(peer, cloud) { try await $0.inbox() }
        if json {
            printLine(inbox.json.outputText)
            return
        }
        printLine("requests to me:")
        if inbox.requestsToMe.isEmpty { printLine("  none") }
        for request in inbox.requestsToMe {
            printLine("  \(request.requester) asks for \(request.views) view(s) of \(request.image)")
        }
        printLine("grants to me:")
        if inbox.grantsToMe.isEmpty { printLine("  none") }
        for item in inbox.grantsToMe {
            let left = item.state == .revoked ? "" : "; \(item.remaining) of \(item.grant.views) views left"
            printLine("  \(item.grant.image) from \(item.grant.owner): \(item.state.words)\(left)")
        }
        printLine("my requests:")
        if inbox.myRequests.isEmpty { printLine("  none") }
        for request in inbox.myRequests {
            printLine("  \(request.image) from \(request.owner): \(request.state.rawValue)")
        }
    }
}

extension Inbox {
    var json: JSONValue {
        func requestJSON(_ request: AccessRequest) -> JSONValue {
            .object([
                "owner": .string(request.owner), "image": .string(request.image),
                "requester": .string(request.requester),
                "views": .number(Double(request.views)), "state": .string(request.state.rawValue),
            ])
        }
        return .object([
            "requestsToMe": .array(requestsToMe.map(requestJSON)),
            "myRequests": .array(myRequests.map(requestJSON)),
            "grantsToMe": .array(
                grantsToMe.map {
                    .object([
                        "owner": .string($0.grant.owner), "image": .string($0.grant.image),
                        "views": .number(Double($0.grant.views)), "remaining": .number(Double($0.remaining)),
                        "received": .bool($0.received), "state": .string($0.state.rawValue),
                    ])
                }),
        ])
    }
}
