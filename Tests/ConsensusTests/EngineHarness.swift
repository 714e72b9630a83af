import Consensus
import Ledger
import MeshBase
import Sodium
import Testing
import Wire

/// An etcd-raft-style scripted harness for `ConsensusEngine`: n engines over the committee of
/// `CommitteeLogBuilder.demo` (real Ed25519 keys from fixed seeds), messages held in flight until
/// a test delivers or drops them, time advanced explicitly. Every message goes through the real
/// codec (`encodedPayload` → `decode(kind:payload:)`); the outputs of each event are executed in
/// order, and the harness checks the ordering contract: a node's own vote is broadcast only after
/// a guard covering its slot was persisted.
///
/// Node i is validator `keys[i]` (ascending key order, as the validator set orders them), so the
/// proposer of (height h, round r) is node (h + r) mod n.
struct EngineCluster {
    struct InFlight {
        let from: Int
        let to: Int
        let kind: MessageKind
        let payload: [UInt8]
        var message: ConsensusMessage { try! ConsensusMessage.decode(kind: kind, payload: payload) }
    }

    var builder: CommitteeLogBuilder
    let keys: [PublicKey]
    let config: ConsensusConfig
    var engines: [ConsensusEngine?]
    var nowMs: UInt64 = 0
    var inflight: [InFlight] = []
    /// Committed decisions per node, in order (the node's log).
    var logs: [[CommittedDecision]]
    /// The last persisted guard per node (survives a crash).
    var guards: [SigningGuard?]
    /// Every own vote that some persisted guard of the node has held (what has been durable).
    var guardedVotes: [Set<Vote>]
    /// The guard each node last restarted from (nil before its first restart).
    var restartGuards: [SigningGuard?]
    var equivocations: [[Equivocation]]
    var syncRequests: [(node: Int, fromHeight: UInt64, peer: Int)] = []
    var syncPushes: [(node: Int, fromHeight: UInt64, peer: Int)] = []
    /// Updates each node asked to fetch (a model proposal named blobs it lacks).
    var fetchRequests: [[SignedUpdate]]
    /// Every vote each node signed (in every life).
    var signedVotes: [[Vote]]
    /// Every output of the last event per node.
    var lastOutputs: [[ConsensusDirective]]
    /// Every output per node since its last (re)start.
    var allOutputs: [[ConsensusDirective]]

    static let quickConfig = ConsensusConfig()

    init(
        count: Int, running: Int? = nil, seed: UInt64 = 1, config: ConsensusConfig = EngineCluster.quickConfig,
        federation: FederationTerms? = nil
    ) {
        builder = CommitteeLogBuilder.demo(validators: count, seed: seed, maskRounds: 10, federation: federation)
        keys = builder.genesis.validators.keys
        self.config = config
        let state = builder.genesis.initialState
        let keysCopy = keys, b = builder
        engines = (0..<count).map { i in
            i < (running ?? count) ? ConsensusEngine(config: config, signer: b.signingKey(keysCopy[i]), state: state) : nil
        }
        logs = Array(repeating: [], count: count)
        guards = Array(repeating: nil, count: count)
        guardedVotes = Array(repeating: [], count: count)
        restartGuards = Array(repeating: nil, count: count)
        equivocations = Array(repeating: [], count: count)
        signedVotes = Array(repeating: [], count: count)
        lastOutputs = Array(repeating: [], count: count)
        allOutputs = Array(repeating: [], count: count)
        fetchRequests = Array(repeating: [], count: count)
    }

    var count: Int { keys.count }
    var meshID: MeshID { builder.genesis.meshID }
    var genesisState: MeshState { builder.genesis.initialState }

    subscript(_ i: Int) -> ConsensusEngine { engines[i]! }

    func index(_ key: PublicKey) -> Int { keys.firstIndex(of: key)! }

    func signer(_ i: Int) -> SigningKey { builder.signingKey(keys[i]) }

    // MARK: Outputs

    mutating func collect(_ i: Int, _ outputs: [ConsensusDirective]) {
        lastOutputs[i] = outputs
        allOutputs[i] += outputs
        for o in outputs {
            switch o {
            case let .persistGuard(g):
                if let old = guards[i] {
                    #expect(
                        g.height > old.height || (g.height == old.height && g.round >= old.round),
                        "node \(i): guard went back from \(old) to \(g)")
                }
                guards[i] = g
                guardedVotes[i].formUnion(g.votes)
            case let .broadcast(m):
                noteOwnVote(i, m)
                for j in 0..<count where j != i { enqueue(from: i, to: j, m) }
            case let .send(m, to):
                noteOwnVote(i, m)
                // A key outside the cluster (an admitted newcomer with no engine here) gets nothing.
                if let j = keys.firstIndex(of: to) { enqueue(from: i, to: j, m) }
            case let .commit(c):
                #expect(c.height == UInt64(logs[i].count + 1), "node \(i) committed height \(c.height) after \(logs[i].count)")
                logs[i].append(c)
            case let .equivocation(e):
                equivocations[i].append(e)
            case let .requestSync(h, peer):
                if let j = keys.firstIndex(of: peer) { syncRequests.append((i, h, j)) }
            case let .pushSync(h, peer):
                if let j = keys.firstIndex(of: peer) { syncPushes.append((i, h, j)) }
            case let .fetchUpdates(updates):
                fetchRequests[i].append(contentsOf: updates)
            }
        }
    }

    /// The ordering contract: an own vote goes out only after a guard holding that very vote
    /// (same slot, same value, same signature) was persisted — not merely a guard of a later
    /// round, which would also let a vote out that no durable record knows of.
    /// The one documented exception (`SigningGuard`): after a restart, nil votes closing the
    /// guard's round for the slots that guard holds no vote in (they conflict with nothing
    /// signed, and re-signing them after another crash gives the same bytes).
    mutating func noteOwnVote(_ i: Int, _ m: ConsensusMessage) {
        guard case let .vote(v) = m, v.voter == keys[i] else { return }
        let closesRestartRound =
            restartGuards[i].map { g in
                v.decisionDigest == nil && v.height == g.height && v.round == g.round
                    && !g.votes.contains { $0.round == v.round && $0.type == v.type }
            } ?? false
        #expect(
            guardedVotes[i].contains(v) || closesRestartRound,
            "node \(i) sent a vote for (\(v.height), \(v.round), \(v.type)) that no persisted guard held; last guard \(String(describing: guards[i]))"
        )
        if !signedVotes[i].contains(v) { signedVotes[i].append(v) }
    }

    mutating func enqueue(from: Int, to: Int, _ m: ConsensusMessage) {
        let payload = m.encodedPayload()
        #expect((try? ConsensusMessage.decode(kind: m.kind, payload: payload)) == m, "codec round trip of \(m.kind)")
        inflight.append(InFlight(from: from, to: to, kind: m.kind, payload: payload))
    }

    // MARK: Events

    /// Node i's honest contribution for pruning round `round` (release count = round).
    func contribution(_ i: Int, round: UInt64, values: [Int32]? = nil) -> SignedContribution {
        builder.contribution(by: keys[i], pruningRound: round, releaseCount: UInt32(round), values: values)
    }

    @discardableResult
    mutating func contribute(_ i: Int, round: UInt64) -> SignedContribution {
        let c = contribution(i, round: round)
        collect(i, engines[i]!.onOwnContribution(c, nowMs: nowMs))
        return c
    }

    mutating func contributeAll(round: UInt64) {
        for i in 0..<count where engines[i] != nil { contribute(i, round: round) }
    }

    mutating func submit(_ i: Int, _ d: Decision) { collect(i, engines[i]!.submit(d, nowMs: nowMs)) }

    /// Node i's membership view reports `down` (indices) dead or gone.
    mutating func membership(_ i: Int, down: [Int]) {
        collect(i, engines[i]!.onMembership(down: Set(down.map { keys[$0] }), nowMs: nowMs))
    }

    /// Hands `message` to node i as if sent by `from` (a key the test may sign for).
    mutating func inject(_ i: Int, _ message: ConsensusMessage, from: PublicKey) {
        let decoded = try! ConsensusMessage.decode(kind: message.kind, payload: message.encodedPayload())
        collect(i, engines[i]!.onMessage(decoded, from: from, nowMs: nowMs))
    }

    /// Delivers the messages in flight now that match (not what they produce), in order; drops
    /// those to stopped nodes. Returns how many were delivered.
    @discardableResult
    mutating func deliver(where match: (InFlight) -> Bool = { _ in true }) -> Int {
        let batch = inflight.filter(match)
        inflight.removeAll(where: match)
        var n = 0
        for d in batch where engines[d.to] != nil {
            collect(d.to, engines[d.to]!.onMessage(d.message, from: keys[d.from], nowMs: nowMs))
            n += 1
        }
        return n
    }

    mutating func drop(where match: (InFlight) -> Bool) { inflight.removeAll(where: match) }

    /// Delivers until nothing is in flight (at most `passes` rounds of delivery).
    mutating func stabilize(passes: Int = 50, where match: (InFlight) -> Bool = { _ in true }) {
        for _ in 0..<passes {
            let delivered = deliver(where: match)
            drop(where: { !match($0) })
            if delivered == 0 && inflight.isEmpty { return }
        }
    }

    mutating func tick(_ i: Int) { if engines[i] != nil { collect(i, engines[i]!.onTick(nowMs: nowMs)) } }

    mutating func tickAll() { for i in 0..<count { tick(i) } }

    /// Advances the clock in `stepMs` steps up to `ms` later, ticking every node and delivering
    /// the matching messages after each step (the others are dropped).
    mutating func run(
        ms: UInt64, stepMs: UInt64 = 10, where match: (InFlight) -> Bool = { _ in true },
        until done: (EngineCluster) -> Bool = { _ in false }
    ) {
        let end = nowMs + ms
        while nowMs < end {
            nowMs += stepMs
            tickAll()
            stabilize(where: match)
            if done(self) { return }
        }
    }

    // MARK: Crash, restart, sync

    mutating func crash(_ i: Int) {
        engines[i] = nil
        inflight.removeAll { $0.to == i }
    }

    /// Rebuilds node i from its log (replaying the decisions into a fresh state) and its last
    /// persisted guard.
    mutating func restart(_ i: Int) {
        var state = genesisState
        for c in logs[i] { try! state.apply(c.decision) }
        engines[i] = ConsensusEngine(config: config, signer: signer(i), state: state, guard: guards[i])
        restartGuards[i] = guards[i]
        allOutputs[i] = []
    }

    /// Answers every sync request and push so far: the entries of the peer that has them are
    /// fed to the lagging node through `onCommittedEntry`.
    mutating func serveSync() {
        let requests = syncRequests.map { ($0.node, $0.fromHeight, $0.peer) } // node asks peer
        let pushes = syncPushes.map { ($0.peer, $0.fromHeight, $0.node) } // node pushes to peer
        syncRequests = []
        syncPushes = []
        for (lagging, from, source) in requests + pushes where engines[lagging] != nil {
            for c in logs[source] where c.height >= from {
                guard c.height == engines[lagging]!.height else { continue }
                if case let .success(out) = engines[lagging]!.onCommittedEntry(
                    decision: c.decision, certificate: c.certificate,
                    nowMs: nowMs)
                {
                    collect(lagging, out)
                }
            }
        }
    }

    // MARK: Reading outputs

    static func votes(_ outputs: [ConsensusDirective]) -> [Vote] {
        outputs.compactMap { o in
            if case let .broadcast(.vote(v)) = o { return v }
            return nil
        }
    }

    static func proposals(_ outputs: [ConsensusDirective]) -> [Proposal] {
        outputs.compactMap { o in
            if case let .broadcast(.proposal(p)) = o { return p }
            return nil
        }
    }

    /// The messages in flight of one kind from one node.
    func inFlight(from: Int? = nil, kind: MessageKind) -> [InFlight] {
        inflight.filter { ($0.from == from || from == nil) && $0.kind == kind }
    }

    /// A vote signed by validator i (the test holds every key).
    func vote(_ i: Int, height: UInt64 = 1, round: UInt32, _ type: VoteType, _ digest: Digest32?) -> Vote {
        Vote.sign(height: height, round: round, type: type, decisionDigest: digest, meshID: meshID, signer: signer(i))
    }

    /// The honest mask decision over the contributions of `nodes` to `pruningRound` against `state`.
    func mask(pruningRound: UInt64, of nodes: [Int], state: MeshState? = nil) -> MaskDecision {
        let s = state ?? genesisState
        return try! MaskDecision.make(
            pruningRound: pruningRound, contributions: nodes.map { contribution($0, round: pruningRound) },
            trim: s.validators.maxFaulty, current: s.mask, rule: s.rules.maskRule)
    }
}
