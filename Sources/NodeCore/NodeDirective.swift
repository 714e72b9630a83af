import Consensus
import Learner
import Membership
import MeshBase
import Sodium
import Wire

/// What the node core asks its shell to do: one ordered bundle per event (`NodeCore.on…`).
///
/// ## The ordering contract
/// In the manner of etcd raft's `Ready`, the shell executes a bundle **in order**, and:
/// 1. `persistGuard`, `persistBudget`, `persistTrainingSteps` and `appendLog` are **durable**
///    (written and fsynced, the directory too where a file was replaced) before the next
///    directive of the bundle is executed. So a vote never leaves before the guard that records
///    it is on disk, a release never leaves before the budget that approved it is on disk, a
///    DP-SGD training job never starts before the steps it will take are on disk (so neither
///    does the release that reports them: it follows the training), a noise-free release never
///    leaves before its release count is on disk, and nothing of height h + 1
///    (a vote, a mask surgery, the next round's training) happens before entry h is in the log.
/// 2. If one of them fails, the shell executes nothing more of the bundle and stops the node
///    (exit 70): the node's promises are then unknown.
/// 3. `send` and `broadcastBeacon` are fire-and-forget (UDP); `train` and `applyMask` are queued
///    to the training thread in order, behind what is already queued, and come back as
///    `NodeCore.onTrained` / `onMaskApplied`.
/// 4. `admission` changes which keys the shell's receiver admits, from the next datagram on.
/// 5. `note` has no effect on the protocol: the shell logs it (and counts what it counts).
///
/// A crash may fall between any two directives: everything before the crash point that was
/// durable is found again at restart, nothing after it happened. The simulator
/// (`NodeSimulation`) crashes nodes at every such point.
public enum NodeDirective: Sendable {
    /// Replace `signing.guard` with these bytes, durably.
    case persistGuard([UInt8])
    /// Replace `privacy.budget` with these bytes, durably.
    case persistBudget([UInt8])
    /// Replace `own.contribution` with this node's signed contribution (`SignedContribution.encoded()`),
    /// durably, before it is sent: after a crash the node offers the same release again for a pruning
    /// round not yet decided, instead of spending ε on a new one (which peers holding its first could
    /// not even take: at most `Limits.contributions_per_contributor_round_max` per round).
    case persistOwnContribution([UInt8])
    /// Replace `training.steps` with these bytes (`TrainingStepsRecord`), durably: the node's
    /// cumulative DP-SGD steps including the training job that follows, and its noise-free
    /// release count including the release that follows.
    case persistTrainingSteps([UInt8])
    /// Append the encoded entry at `height` to the decision log, durably.
    case appendLog(height: UInt64, entry: [UInt8])
    /// Seal in an envelope (signed, chunked) and send.
    case send(kind: MessageKind, payload: [UInt8], to: PeerAddress)
    /// Send to the LAN discovery group, if discovery is on.
    case broadcastBeacon(kind: MessageKind, payload: [UInt8])
    /// The receiver admits `members` (every kind) and `readers` (`logRequest` only) from now on.
    case admission(members: Set<PublicKey>, readers: Set<PublicKey>)
    /// Train `epochs` local epochs (see `RoundDirective.train`); `logHeight` is the log height the
    /// checkpoint written after the job is in step with.
    case train(pruningRound: UInt64, epochs: Int, finetune: Bool, finetuneTotalEpochs: Int, logHeight: UInt64)
    /// Shrink the model to `mask` by surgery (after the queued training), then checkpoint.
    case applyMask(PruneMask, logHeight: UInt64)
    /// Federated: train `epochs` local epochs from the shared model for model round `modelRound`
    /// (`Rounds.FederatedDirective.train`), then offer the update's bytes (trained − shared) to
    /// the bulk store and report with `TrainedRound.update`.
    case trainRound(modelRound: UInt64, epochs: Int, finetune: Bool, scheduleEpoch: Int, finetuneTotalEpochs: Int, logHeight: UInt64)
    /// Federated, between the mesh part and the node core only (never reaches the shell): fetch
    /// the update blob `root` (`bytes` long) of `modelRound` from `sources` by bulk transfer.
    case fetchBlob(root: Digest32, bytes: UInt64, sources: [PublicKey], modelRound: UInt64)
    /// Federated, between the mesh part and the node core only: the update blob `root` is no
    /// longer wanted (its contributor announced another for the round); its fetch stops unless
    /// an advance waiting on its blobs names it.
    case forgetBlob(root: Digest32)
    /// Federated: seal `payload` (a `Bulk.BulkMessage`) for member `key` (the pair key of the two
    /// node keys, `Wire` sealed datagram) and send it to `to`. Low priority: after the control
    /// traffic queued with it, and dropped first when the send queue is full.
    case sendBulk(payload: [UInt8], to: PeerAddress, key: PublicKey)
    /// Federated: make `blob` (a `Learner.Checkpoint` encoding, verified against the root the log
    /// names) the shared model of `modelRound`, durably, and report `NodeCore.onModelAdvanced`.
    case loadSharedModel(modelRound: UInt64, blob: [UInt8])
    /// Federated: the next shared model. On the training thread, after what is queued: the
    /// shared model of `decision.modelRound − 1` plus `rule`'s aggregate of the decision's updates
    /// (their blobs, in canonical order), then surgery to `mask` if given; checkpoint it durably
    /// with its round, offer its canonical bytes as a blob, and report `NodeCore.onModelAdvanced`
    /// with its root. The shell refuses (exit 70) a decision that does not follow the shared model
    /// it holds: a round never applies twice, nor out of order.
    /// `updates` are the decision's update blobs in its order (the mesh part emits the directive
    /// without them; the node core fills them in from its bulk store, fetching what it lacks first).
    case advanceModel(ModelDecision, mask: PruneMask?, rule: AggregationRule, updates: [[UInt8]], logHeight: UInt64)
    /// Federated, between the mesh part and the node core only: fetch the shared model of
    /// `modelRound` by its root from `sources`; the node core then asks `loadSharedModel`.
    case fetchModel(modelRound: UInt64, root: Digest32, sources: [PublicKey])
    /// A received datagram's payload did not decode (the receiver counts it as a reject).
    case malformed(MessageKind)
    /// For the operator's log (and the figures); no effect on the protocol.
    case note(NodeNote)
}

/// Things worth a line in the node's log. The shell chooses the level and the wording.
public enum NodeNote: Sendable {
    case memberChanged(MemberRecord, previous: MemberStatus?)
    case roundsStarted(height: UInt64, mask: PruneMask)
    case training(pruningRound: UInt64, epochs: Int, finetune: Bool)
    case releaseWaitsForPeer(pruningRound: UInt64)
    case releaseRefused(pruningRound: UInt64, why: String)
    /// The release persisted before a restart is offered again (no new ε spent).
    case releaseOfferedAgain(pruningRound: UInt64, releaseCount: UInt32)
    /// DP-SGD training: the next round's steps would bring this node's record-level ε above the
    /// genesis training ε_max, so it neither trains nor releases any more (it still follows the
    /// log: masks, freeze, fine-tuning).
    case trainingBudgetExhausted(pruningRound: UInt64, steps: UInt64, epsilonIfTrained: Double, epsilonMax: Double)
    case releaseFailed(pruningRound: UInt64, why: String)
    /// `trainingSteps`: with DP-SGD training, the cumulative steps the release reports.
    case released(pruningRound: UInt64, releaseCount: UInt32, epsilonSpent: Double, bytes: Int, trainingSteps: UInt64?)
    case committed(
        height: UInt64, kind: String, consensusRound: UInt32, signers: Int, mask: PruneMask,
        msAfterLastContribution: UInt64?)
    case removedSelf(height: UInt64, reason: String)
    case proposingRemoval(member: PublicKey, reason: String, afterMs: UInt64)
    case equivocation(offender: PublicKey, height: UInt64, round: UInt32, type: String)
    case syncedEntryRefused(from: PublicKey, height: UInt64, why: String)
    case malformedMeshMessage(kind: MessageKind, from: PublicKey, why: String)
    case cannotServeLog(height: UInt64)
    /// Federated: this node announced its update for a model round.
    case contributedUpdate(modelRound: UInt64, bytes: UInt64, samples: UInt32)
    /// Federated: an update announcement was refused (why).
    case updateRefused(from: PublicKey, modelRound: UInt64, why: String)
    /// Federated: this node asks the mesh to decide a model round over these many updates.
    case submittedModel(modelRound: UInt64, updates: Int)
    /// Federated: the shared model of a model round is in place.
    case modelAdvanced(modelRound: UInt64, root: Digest32)
    case finished
}
