import MeshBase

extension SWIMMessage {
    /// LAN discovery: "a member of this mesh listens at `address`" (the mesh id is in the envelope).
    public struct Beacon: Sendable, Hashable {
        public var address: PeerAddress

        public init(address: PeerAddress) { self.address = address }

        func encode(into w: inout ByteWriter) { address.encode(into: &w) }

        static func decode(from r: inout ByteReader) throws(MembershipDecodeError) -> Beacon {
            Beacon(address: try PeerAddress.decode(from: &r))
        }
    }
}
