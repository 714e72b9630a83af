import MeshBase

extension SWIMMessage {
    /// A graceful departure of the sender, at its (already bumped) incarnation.
    public struct Leave: Sendable, Hashable {
        public var incarnation: UInt64

        public init(incarnation: UInt64) { self.incarnation = incarnation }

        func encode(into w: inout ByteWriter) { w.write(incarnation) }

        static func decode(from r: inout ByteReader) throws(MembershipDecodeError) -> Leave {
            Leave(incarnation: try MembershipDecodeError.reading { () throws(ByteReaderError) in try r.readUInt64("leave.incarnation") })
        }
    }
}
