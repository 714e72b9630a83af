import MeshBase
import Sodium

extension SWIMMessage {
    /// A direct probe of `target` (also sent by a helper running an indirect probe).
    public struct Ping: Sendable, Hashable {
        public var probeID: UInt64
        /// The member this ping is meant for; anyone else ignores it (an address may have been reused).
        public var target: MemberID
        /// The sender's own incarnation, address and signature of "alive at that incarnation and
        /// address" (`MemberUpdate.statement`): a ping is also the sender's claim to be alive.
        public var incarnation: UInt64
        public var address: PeerAddress
        public var signature: Signature
        public var updates: [MemberUpdate]

        /// The most a ping takes besides its updates: probe id, target, incarnation, an IPv6
        /// address, signature, update count.
        public static let fixedByteCountMax = 8 + 32 + 8 + 19 + Signature.byteCount + 1

        public init(
            probeID: UInt64, target: MemberID, incarnation: UInt64, address: PeerAddress, signature: Signature, updates: [MemberUpdate]
        ) {
            precondition(probeID != 0, "probe id 0 is reserved for gossip")
            self.probeID = probeID
            self.target = target
            self.incarnation = incarnation
            self.address = address
            self.signature = signature
            self.updates = updates
        }

        /// A ping carrying `statement`, the sender's own alive statement.
        public init(probeID: UInt64, target: MemberID, statement: MemberUpdate, updates: [MemberUpdate]) {
            precondition(statement.status == .alive, "a ping carries its sender's alive statement")
            self.init(
                probeID: probeID, target: target, incarnation: statement.incarnation, address: statement.address,
                signature: statement.signature!, updates: updates)
        }

        /// The sender's claim to be alive, as an update about `sender`.
        public func statement(of sender: MemberID) -> MemberUpdate {
            MemberUpdate(id: sender, address: address, incarnation: incarnation, status: .alive, signature: signature)
        }

        func encode(into w: inout ByteWriter) {
            w.write(probeID)
            w.write(raw: target.bytes)
            w.write(incarnation)
            address.encode(into: &w)
            w.write(raw: signature.bytes)
            MemberUpdate.encodeList(updates, into: &w)
        }

        static func decode(from r: inout ByteReader) throws(MembershipDecodeError) -> Ping {
            let (probeID, target, incarnation) = try MembershipDecodeError.reading { () throws(ByteReaderError) in
                (try r.readUInt64("ping.probeID"), try r.readRaw(32, "ping.target"), try r.readUInt64("ping.incarnation"))
            }
            guard probeID != 0 else { throw .zeroProbeID }
            let address = try PeerAddress.decode(from: &r)
            let signature = try MemberUpdate.readSignature(from: &r, "ping.signature")
            let updates = try MemberUpdate.decodeList(from: &r)
            return Ping(
                probeID: probeID, target: MemberID(storage: target), incarnation: incarnation, address: address,
                signature: signature, updates: updates)
        }
    }
}
