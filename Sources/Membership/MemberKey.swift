/// A member's key as a dictionary key that hashes 8 bytes instead of 32 (`PublicKey` hashes
/// every byte, which dominated the simulator's profile). Equality still compares all 32 bytes;
/// keys are uniformly random, so 8 bytes spread them as well as 32.
struct MemberKey: Hashable, Sendable {
    let id: MemberID
    let prefix: UInt64

    @inline(__always)
    init(_ id: MemberID) {
        self.id = id
        self.prefix = id.bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    }

    @inline(__always)
    static func == (a: MemberKey, b: MemberKey) -> Bool { a.prefix == b.prefix && a.id.bytes == b.id.bytes }

    @inline(__always)
    func hash(into hasher: inout Hasher) { hasher.combine(prefix) }
}
