import NIOCore
import Wire

/// A state machine hosted by the node beside membership (`MeshService`: the agreement, the
/// decision log and the training rounds). Its methods run on the node's event loop, like
/// everything that touches protocol state: do no heavy work in them — hand it to another thread
/// and come back with `Node.execute` when it is done.
public protocol NodeService: AnyObject {
    /// The message kinds this service takes (membership kinds are the node's own).
    var messageKinds: [MessageKind] { get }
    /// An accepted message (verified, admitted, new, reassembled) of one of `messageKinds`.
    func onMessage(_ message: InboundMessage, from address: SocketAddress, nowMs: UInt64, node: Node)
    /// Every tick of the node's timer.
    func onTick(nowMs: UInt64, node: Node)
}
