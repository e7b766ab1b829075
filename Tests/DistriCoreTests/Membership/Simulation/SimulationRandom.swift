import DistriCore

/// The simulations' seeded generator.
typealias SimulationRandom = SplitMix64
