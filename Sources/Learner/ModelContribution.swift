/// One contributor's update to the shared model (trained weights − shared weights, flattened in
/// `Model.flatParameters()` order), with what orders and weighs it.
public struct ModelContribution: Sendable, Equatable {
    /// Orders the contributions (lexicographically by bytes): in the mesh, the contributor's
    /// public key. Unique within an aggregate.
    public let key: [UInt8]
    /// Training samples behind the update: its FedAvg weight.
    public let samples: Int
    public let update: [Float]

    public init(key: [UInt8], samples: Int, update: [Float]) {
        self.key = key
        self.samples = samples
        self.update = update
    }
}
