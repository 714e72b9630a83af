import MeshBase

extension SWIMMessage {
    /// The answer to a ping (forwarded by the helper of an indirect probe), or with probe id 0 an
    /// unsolicited gossip message carrying only updates.
    public struct Ack: Sendable, Hashable {
        public var probeID: UInt64
        public var updates: [MemberUpdate]

        /// probe id, update count.
        public static let fixedByteCount = 8 + 1

        public init(probeID: UInt64, updates: [MemberUpdate]) {
            self.probeID = probeID
            self.updates = updates
        }

        public var isGossip: Bool { probeID == 0 }

        func encode(into w: inout ByteWriter) {
            w.write(probeID)
            MemberUpdate.encodeList(updates, into: &w)
        }

        static func decode(from r: inout ByteReader) throws(MembershipDecodeError) -> Ack {
            let probeID = try MembershipDecodeError.reading { () throws(ByteReaderError) in try r.readUInt64("ack.probeID") }
            return Ack(probeID: probeID, updates: try MemberUpdate.decodeList(from: &r))
        }
    }
}
