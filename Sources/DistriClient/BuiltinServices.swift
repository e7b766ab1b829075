/// The services every node serves from the start.
public enum BuiltinServices {
    /// `Stats`: the node's own stats as JSON (`NodeStats`). Answered at once by the node
    /// asked, outside the capacity limit and without election.
    public static let stats = "Stats"
    /// `Echo`: returns its input. A cheap service for health checks and benchmarks.
    public static let echo = "Echo"
    /// `Locate`: the address of the node elected to run a task of the service named in the first
    /// parameter, so a client can send a large payload straight there.
    public static let locate = "Locate"
    /// `TaskStatus`: `known` when this node is running or recently ran the task id in the first
    /// parameter, else `unknown`. Asked by a node handling a retry, so a task runs at most once.
    public static let taskStatus = "TaskStatus"
    /// `Members`: the membership as this node sees it, as JSON (`[MemberSummary]`: id, address,
    /// status, ...; empty when the node is not in a cluster). Answered at once by the node asked,
    /// outside the capacity limit. Clients learn the cloud from it.
    public static let members = "Members"
}
