import MeshBase
import Sodium

extension SWIMMessage {
    /// A graceful departure of the sender, at its (already bumped) incarnation: its signed
    /// `left` statement (`MemberUpdate.statement`), passed on by gossip as it is.
    public struct Leave: Sendable, Hashable {
        public var incarnation: UInt64
        public var address: PeerAddress
        public var signature: Signature

        public init(incarnation: UInt64, address: PeerAddress, signature: Signature) {
            self.incarnation = incarnation
            self.address = address
            self.signature = signature
        }

        /// The leave carrying `statement`, the sender's own left statement.
        public init(statement: MemberUpdate) {
            precondition(statement.status == .left, "a leave carries its sender's left statement")
            self.init(incarnation: statement.incarnation, address: statement.address, signature: statement.signature!)
        }

        /// The sender's leave, as an update about `sender`.
        public func statement(of sender: MemberID) -> MemberUpdate {
            MemberUpdate(id: sender, address: address, incarnation: incarnation, status: .left, signature: signature)
        }

        func encode(into w: inout ByteWriter) {
            w.write(incarnation)
            address.encode(into: &w)
            w.write(raw: signature.bytes)
        }

        static func decode(from r: inout ByteReader) throws(MembershipDecodeError) -> Leave {
            let incarnation = try MembershipDecodeError.reading { () throws(ByteReaderError) in try r.readUInt64("leave.incarnation") }
            let address = try PeerAddress.decode(from: &r)
            return Leave(incarnation: incarnation, address: address, signature: try MemberUpdate.readSignature(from: &r, "leave.signature"))
        }
    }
}
