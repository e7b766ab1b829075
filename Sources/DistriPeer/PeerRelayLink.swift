import Distri
import DistriCore
import DistriIdentity
import Logging

/// The daemon's side of the cloud's relay and reachability check.
extension PeerDaemon {
    /// Asks the cloud to dial `addresses` (`CheckReachable`); true when one answered as this peer,
    /// nil when the check itself failed (an older cloud, or none reachable now). Logs the outcome.
    func checkReachability(_ addresses: [String]) async -> Bool? {
        let body = JSONValue.object([
            "name": .string(identity.name),
            "addresses": .array(addresses.prefix(RelayServices.maxCheckedAddresses).map(JSONValue.string)),
        ])
        do {
            let reply = try await cloud.client.send(
                Array(body.jsonText.utf8), service: RelayServices.checkReachable, params: [])
            guard let object = (try? JSONParser.parse(reply))?.objectValue,
                let reachable = object["reachable"]?.arrayValue
            else { throw PeerError("the cloud's CheckReachable answer is malformed") }
            if reachable.isEmpty {
                let why = object["unreachable"]?.objectValue?.map { "\($0.key): \($0.value.stringValue ?? "?")" }
                logger.notice(
                    "the cloud cannot dial this peer; others reach it through the cloud's relay",
                    metadata: ["addresses": "\(addresses)", "why": "\(why?.sorted() ?? [])"])
            }
            warnings.succeeded("the reachability check")
            return !reachable.isEmpty
        } catch {
            warnings.failed("the reachability check", error)
            return nil
        }
    }

    /// Keeps one relay link attached to a node of the cloud until cancelled: attaches to the nodes the
    /// client knows in turn (from a random one), holds the link while it lives (a heartbeat every ``relayHeartbeat``
    /// notices a node that vanished without closing it), and attaches to the next node when it ends.
    /// Failed attempts pause from 0.2 s, doubling up to 5 s.
    func keepRelayLink() async {
        var failures = 0
        // A random first node, so the peers of a cloud spread their links over its nodes.
        var turn = Int.random(in: 0..<1024)
        // Bounded in time by the daemon's life: every pass either holds a link until it ends or
        // pauses, and cancellation ends both.
        while !Task.isCancelled {
            let nodes = await cloud.client.knownNodes()
            guard !nodes.isEmpty else { return }
            let node = nodes[turn % nodes.count]
            turn += 1
            do {
                let proof = try PeerProof.make(
                    name: identity.name, purpose: .relay, signing: identity.signing, now: wallClockMillis())
                let body = Array(JSONValue.object(["proof": .object(proof.document)]).jsonText.utf8)
                let link = try await endpoint.attachRelay(to: node, tls: cloud.client.configuration.tls, body: body)
                failures = 0
                warnings.succeeded("attaching a relay link")
                setRelayNode(node)
                logger.info("relay link attached", metadata: ["node": "\(node)"])
                await hold(link)
                setRelayNode(nil)
                if !Task.isCancelled {
                    logger.notice("relay link to \(node) ended; attaching to another node")
                }
            } catch {
                failures += 1
                warnings.failed("attaching a relay link", error, metadata: ["node": "\(node)"])
                try? await Task.sleep(for: .milliseconds(min(5000, 200 << min(failures, 5))))
            }
        }
    }

    /// Returns when `link` closes, a heartbeat goes unanswered, or the task is cancelled; the link is
    /// closed then.
    private func hold(_ link: RelayLink) async {
        let heartbeat = relayHeartbeat
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await link.closeFuture.get() }
                group.addTask {
                    // Bounded by the link's life: each pass sleeps a heartbeat, and a failed one ends it.
                    while !Task.isCancelled {
                        do {
                            try await Task.sleep(for: heartbeat)
                            _ = try await link.call(BuiltinServices.members, timeout: .seconds(3))
                        } catch {
                            return
                        }
                    }
                }
                await group.next()
                group.cancelAll()
                // A link cut off closes only when told: closing it ends the task awaiting its close.
                link.closeNow()
            }
            await link.close()
        } onCancel: {
            link.closeNow()
        }
    }
}
