import DistriCore

extension NodeMetrics {
    /// The stats' counters, as monotonic Prometheus counters.
    static func counters(_ stats: NodeStats) -> [MetricSample] {
        func counter(_ name: String, _ value: UInt64, _ help: String, labels: [(String, String)] = []) -> MetricSample {
            MetricSample(name: name, labels: labels, value: Double(value), help: help)
        }
        let cluster = stats.cluster
        var samples = [
            counter("requests_received_total", stats.requestsReceived, "Requests received, decoded or not."),
            counter("requests_accepted_total", stats.accepted, "Requests admitted to run on this node."),
            counter("requests_completed_total", stats.completed, "Requests that ran here and succeeded."),
            counter("requests_failed_total", stats.failed, "Requests that failed here, refused or in error."),
            counter("requests_rejected_busy_total", stats.rejectedBusy, "Requests refused at capacity (busy)."),
            counter("unauthorized_calls_total", stats.unauthorizedCalls, "Internal services refused to non-nodes."),
            counter("tls_handshake_failures_total", stats.tlsHandshakesFailed, "TLS handshakes that failed."),
            counter(
                "buffer_budget_refusals_total", stats.bufferBudget?.refusals ?? 0,
                "Requests refused (busy) because the node-wide buffer budget was full."),
            counter("connections_rejected_total", stats.rejectedConnections, "Connections over a source's limit."),
            counter("connections_dropped_slow_total", stats.slowConnectionsDropped, "Slow connections dropped."),
            counter("connections_closed_idle_total", stats.idleConnectionsClosed, "Idle connections closed."),
            counter("elections_won_total", cluster.electionsWon, "Tasks this node elected itself to run."),
            counter("tasks_forwarded_total", cluster.tasksForwarded, "Tasks sent to another member to run."),
            counter("failovers_total", cluster.failovers, "Forwards that failed and were sent elsewhere."),
            counter("tasks_deduplicated_total", cluster.deduplicated, "Retries answered from an earlier run."),
            counter("chaos_outages_total", cluster.chaosOutages, "Times this node went dark (chaos or injected)."),
            counter("gossip_messages_sent_total", cluster.gossipMessagesSent, "Membership messages sent."),
            counter("gossip_sent_bytes_total", cluster.gossipBytesSent, "Membership bytes sent."),
            counter("gossip_received_bytes_total", cluster.gossipBytesReceived, "Membership bytes received."),
            counter("members_suspected_total", cluster.membersSuspected, "Times a member became suspect here."),
            counter(
                "members_declared_dead_total", cluster.membersDeclaredDead,
                "Members this node saw declared dead (failure detections)."),
        ]
        for (service, outcomes) in (stats.calls ?? [:]).sorted(by: { $0.key < $1.key }) {
            for (outcome, count) in outcomes.sorted(by: { $0.key < $1.key }) {
                samples.append(
                    counter(
                        "calls_total", count, "Calls run on this node, by service and outcome.",
                        labels: [("service", service), ("outcome", outcome)]))
            }
        }
        if let database = stats.database {
            samples += [
                counter(
                    "db_anti_entropy_received_bytes_total", database.antiEntropyBytes, "Pull-reply bytes received."),
                counter("db_anti_entropy_changes_total", database.antiEntropyChanges, "Changes received by pulls."),
                counter("db_pushes_sent_total", database.pushesSent, "Replication pushes sent."),
                counter("db_changes_pushed_total", database.changesPushed, "Changes sent in pushes."),
            ]
            if let cas = database.compareAndSet {
                let conflicts =
                    "Compare-and-set rounds that did not apply the update, by reason: contention (a "
                    + "higher ballot won; retried) or condition (it did not hold)."
                samples += [
                    counter("db_cas_rounds_total", cas.rounds, "Compare-and-set rounds begun here, retries included."),
                    counter("db_cas_conflicts_total", cas.contentions, conflicts, labels: [("reason", "contention")]),
                    counter(
                        "db_cas_conflicts_total", cas.conditionFailures, conflicts, labels: [("reason", "condition")]),
                ]
            }
            if let wal = database.writeAheadLog {
                samples += [
                    counter("wal_appended_bytes_total", wal.bytesAppended, "Bytes appended to the write-ahead log."),
                    counter("wal_fsyncs_total", wal.syncs, "Syncs (fdatasync, fsync) of the write-ahead log."),
                    MetricSample(
                        name: "wal_fsync_seconds_total", value: wal.syncSeconds,
                        help: "Seconds spent in syncs of the write-ahead log.", fractional: true),
                ]
            }
        }
        if let relay = stats.relay {
            samples += [
                counter("relay_attachments_total", relay.attachments, "Peers' relay links attached."),
                counter("relay_chunks_total", relay.relayedChunks, "Chunks relayed between peers."),
                counter("relay_bytes_total", relay.relayedBytes, "Bytes relayed between peers."),
                counter("relay_refused_over_quota_total", relay.refusedOverQuota, "Relayed sends over quota."),
            ]
        }
        return samples
    }

    /// The stats' levels, as Prometheus gauges.
    static func gauges(_ stats: NodeStats) -> [MetricSample] {
        func gauge(_ name: String, _ value: Double, _ help: String, labels: [(String, String)] = []) -> MetricSample {
            MetricSample(name: name, labels: labels, value: value, help: help)
        }
        var samples = [
            gauge("in_flight", Double(stats.inFlight), "Tasks running on this node."),
            gauge("queued", Double(stats.queued), "Tasks waiting for a slot."),
            gauge("capacity", Double(stats.capacity), "Tasks this node runs at once."),
            gauge("draining", stats.draining ? 1 : 0, "1 while the node drains for shutdown."),
            gauge("uptime_seconds", stats.uptimeSeconds, "Seconds since the node started."),
            gauge("resident_memory_bytes", Double(stats.residentBytes), "The process's resident memory."),
        ]
        if let budget = stats.bufferBudget {
            samples.append(
                gauge(
                    "buffer_budget_used_bytes", Double(budget.usedBytes),
                    "Bytes of the node-wide buffer budget in use (half-received messages, replies for slow readers)."))
            samples.append(gauge("buffer_budget_bytes", Double(budget.capacityBytes), "The node-wide buffer budget."))
        }
        var byStatus: [String: Int] = ["alive": 0, "suspect": 0, "dead": 0, "left": 0]
        for member in stats.members { byStatus[member.status, default: 0] += 1 }
        for (status, count) in byStatus.sorted(by: { $0.key < $1.key }) {
            samples.append(
                gauge(
                    "members", Double(count), "Members as this node sees them, by status.", labels: [("status", status)]
                ))
        }
        if let database = stats.database {
            for (collection, count) in database.documents.sorted(by: { $0.key < $1.key }) {
                samples.append(
                    gauge(
                        "db_documents", Double(count), "Live documents in this replica, by collection.",
                        labels: [("collection", collection)]))
            }
            samples.append(
                gauge("db_tombstones", Double(database.tombstones), "Deletes kept until every replica saw them."))
            for (peer, lag) in database.replicationLag.sorted(by: { $0.key < $1.key }) {
                samples.append(
                    gauge(
                        "db_replication_lag_changes", Double(lag), "This replica's changes a peer has not confirmed.",
                        labels: [("peer", peer)]))
            }
        }
        return samples
    }
}
