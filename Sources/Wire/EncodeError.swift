/// Why a message could not be turned into datagrams. These are the caller's mistakes or an
/// exhausted epoch, never network input.
public enum EncodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The logical payload exceeds `Limits.message_bytes_max`.
    case messageTooLarge(bytes: Int, limit: Int)
    /// `chunk` is produced by the codec itself and cannot be sent directly.
    case kindNotSendable(MessageKind)
    /// The sequence allocator's epoch cannot supply the numbers needed; advance the epoch.
    case sequenceExhausted(needed: Int)
    /// A payload field is outside what its format allows (payload codecs).
    case invalidField(String)

    public var description: String {
        switch self {
        case let .messageTooLarge(bytes, limit): "message of \(bytes) bytes exceeds the limit of \(limit)"
        case let .kindNotSendable(kind): "kind \(kind) cannot be sent directly"
        case let .sequenceExhausted(needed): "the boot epoch has fewer than \(needed) sequence numbers left"
        case let .invalidField(what): "invalid field: \(what)"
        }
    }
}
