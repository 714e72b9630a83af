import MeshBase

extension SWIMMessage {
    /// Push-pull: the sender's full member list (itself included). A request (`isReply == false`)
    /// is answered with the receiver's list. May exceed one datagram: the shell chunks it.
    public struct Sync: Sendable, Hashable {
        public var isReply: Bool
        public var members: [MemberUpdate]

        public init(isReply: Bool, members: [MemberUpdate]) {
            precondition(members.count <= Limits.members_count_max, "sync of \(members.count) members")
            self.isReply = isReply
            self.members = members
        }

        func encode(into w: inout ByteWriter) {
            w.write(UInt8(isReply ? 1 : 0))
            w.write(UInt16(members.count))
            for m in members { m.encode(into: &w) }
        }

        static func decode(from r: inout ByteReader) throws(MembershipDecodeError) -> Sync {
            let (flag, count16) = try MembershipDecodeError.reading { () throws(ByteReaderError) in
                (try r.readUInt8("sync.isReply"), try r.readUInt16("sync.count"))
            }
            guard flag <= 1 else { throw .badFlag(field: "sync.isReply", value: flag) }
            let count = Int(count16)
            guard count <= Limits.members_count_max else {
                throw .countOverLimit(field: "sync.members", count: count, limit: Limits.members_count_max)
            }
            guard count * MemberUpdate.encodedBytesMin <= r.remaining else { throw .truncated(field: "sync.members") }
            var members: [MemberUpdate] = []
            members.reserveCapacity(count)
            for _ in 0..<count { members.append(try MemberUpdate.decode(from: &r)) }
            return Sync(isReply: flag == 1, members: members)
        }
    }
}
