import MeshBase
import Sodium

@testable import Wire

/// Fixed identities and a mesh so that failures reproduce exactly.
enum Fixtures {
    static let alice = try! SigningKey(seed: [UInt8](repeating: 1, count: 32))
    static let bob = try! SigningKey(seed: [UInt8](repeating: 2, count: 32))
    static let mesh = MeshID(genesisBytes: Array("test genesis".utf8))
    static let otherMesh = MeshID(genesisBytes: Array("other genesis".utf8))

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    /// One datagram of `kind` from `signer` with the given payload and sequence number.
    static func datagram(
        _ kind: MessageKind, _ payload: [UInt8], sequence: UInt64 = 1 << 32,
        signer: SigningKey = alice, mesh: MeshID = mesh
    ) -> [UInt8] {
        Envelope.seal(kind: kind, payload: payload, sequence: sequence, signer: signer, meshID: mesh)
    }

    static func decode(_ datagram: [UInt8], mesh: MeshID = mesh) -> RejectReason? {
        switch Envelope.decode(datagram: datagram, meshID: mesh) {
        case .success: nil
        case let .failure(reason): reason
        }
    }

    static func admitAll(_: PublicKey, _: MessageKind) -> Bool { true }
}
