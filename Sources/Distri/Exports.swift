// The types of the pure layers that appear in Distri's API (NodeStats, WireLimits, ErrorCode, ...).
@_exported import DistriCore
@_exported import DistriWire
