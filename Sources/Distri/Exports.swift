// The layers below the node that appear in its API: the pure types (NodeStats, WireLimits,
// ErrorCode, ...), the client (Client, NodeAddress, ClusterTLS, ...), the server side (ServiceRegistry,
// ServiceRequest, PeerEndpoint, ...) and durable files (FileIO).
@_exported import DistriClient
@_exported import DistriCore
@_exported import DistriServer
@_exported import DistriStorage
@_exported import DistriWire
