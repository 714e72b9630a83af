import MeshBase

extension SWIMMessage {
    /// A direct probe of `target` (also sent by a helper running an indirect probe).
    public struct Ping: Sendable, Hashable {
        public var probeID: UInt64
        /// The member this ping is meant for; anyone else ignores it (an address may have been reused).
        public var target: MemberID
        /// The sender's own incarnation: a ping is also the sender's claim to be alive.
        public var incarnation: UInt64
        public var updates: [MemberUpdate]

        /// probe id, target, incarnation, update count.
        public static let fixedByteCount = 8 + 32 + 8 + 1

        public init(probeID: UInt64, target: MemberID, incarnation: UInt64, updates: [MemberUpdate]) {
            precondition(probeID != 0, "probe id 0 is reserved for gossip")
            self.probeID = probeID
            self.target = target
            self.incarnation = incarnation
            self.updates = updates
        }

        func encode(into w: inout ByteWriter) {
            w.write(probeID)
            w.write(raw: target.bytes)
            w.write(incarnation)
            MemberUpdate.encodeList(updates, into: &w)
        }

        static func decode(from r: inout ByteReader) throws(MembershipDecodeError) -> Ping {
            let (probeID, target, incarnation) = try MembershipDecodeError.reading { () throws(ByteReaderError) in
                (try r.readUInt64("ping.probeID"), try r.readRaw(32, "ping.target"), try r.readUInt64("ping.incarnation"))
            }
            guard probeID != 0 else { throw .zeroProbeID }
            let updates = try MemberUpdate.decodeList(from: &r)
            return Ping(probeID: probeID, target: MemberID(storage: target), incarnation: incarnation, updates: updates)
        }
    }
}
