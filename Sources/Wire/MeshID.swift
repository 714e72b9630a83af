import MeshBase
import Sodium

/// Which mesh a datagram belongs to: BLAKE2b-256 of the mesh's canonical genesis bytes under
/// `DomainTag.meshID`. Every datagram carries it and its signature covers it, so a datagram
/// signed for one mesh is never accepted by another, even among the same keys.
public struct MeshID: Sendable, Hashable, CustomStringConvertible {
    public static let byteCount = 32

    public let digest: Digest32

    /// The id of the mesh whose genesis document encodes to `genesisBytes` (the genesis layer
    /// defines that canonical encoding; this only hashes it).
    public init(genesisBytes: [UInt8]) {
        digest = Blake2b256.hash(.meshID, genesisBytes)
    }

    /// An id as read from a datagram or a config file.
    public init(digest: Digest32) {
        self.digest = digest
    }

    public var bytes: [UInt8] { digest.bytes }
    public var hex: String { digest.hex }
    public var description: String { digest.hex }
}
