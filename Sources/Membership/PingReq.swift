import MeshBase

extension SWIMMessage {
    /// "Please ping `target` at `targetAddress` for me and forward its ack with `probeID`."
    public struct PingReq: Sendable, Hashable {
        public var probeID: UInt64
        public var target: MemberID
        public var targetAddress: PeerAddress

        public init(probeID: UInt64, target: MemberID, targetAddress: PeerAddress) {
            precondition(probeID != 0, "probe id 0 is reserved for gossip")
            self.probeID = probeID
            self.target = target
            self.targetAddress = targetAddress
        }

        func encode(into w: inout ByteWriter) {
            w.write(probeID)
            w.write(raw: target.bytes)
            targetAddress.encode(into: &w)
        }

        static func decode(from r: inout ByteReader) throws(MembershipDecodeError) -> PingReq {
            let (probeID, target) = try MembershipDecodeError.reading { () throws(ByteReaderError) in
                (try r.readUInt64("pingReq.probeID"), try r.readRaw(32, "pingReq.target"))
            }
            guard probeID != 0 else { throw .zeroProbeID }
            let address = try PeerAddress.decode(from: &r)
            return PingReq(probeID: probeID, target: MemberID(storage: target), targetAddress: address)
        }
    }
}
