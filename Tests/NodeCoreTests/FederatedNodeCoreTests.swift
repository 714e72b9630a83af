import Bulk
import Consensus
import Learner
import Ledger
import Membership
import MeshBase
import Privacy
import Rounds
import Sodium
import Testing
import Wire

@testable import NodeCore

/// The node core of a federated mesh on its own: a lone validator's model rounds as directive
/// bundles — every round trained from the shared model of the round before, announced, decided,
/// handed to the shell with the update's bytes, applied once and in order, both phases.
@Suite struct FederatedNodeCoreTests {
    let builder = CommitteeLogBuilder.demo(
        validators: 1, spareCount: 0, seed: 5, maskRounds: 2, federation: FederationTerms(aggregation: .fedAvg))

    @Test func aLoneValidatorAppliesEveryModelRoundOnceAndInOrder() throws {
        _ = try Self.run(builder)
    }

    /// With DP-SGD training in the genesis every update states the steps charged before its
    /// training (one round's each), and the log's recorded steps are the node's own.
    @Test func withDPTrainingEveryUpdateStatesItsChargedSteps() throws {
        let terms = TrainingPrivacyTerms(sampleRate: 0.01, noiseMultiplier: 1.1, delta: 1e-5, epsilonMax: 8, stepsPerRound: 100)
        let dp = CommitteeLogBuilder.demo(
            validators: 1, spareCount: 0, seed: 5, maskRounds: 2,
            privacy: .init(clipBound: 16, noiseMultiplier: 5, scaleLog2: 10, delta: 1e-5, epsilonBudget: 10, training: terms),
            federation: FederationTerms(aggregation: .fedAvg))
        let node = try Self.run(dp)
        let models = node.mesh!.entries.compactMap { bytes -> ModelDecision? in
            if case let .model(m)? = try? LogEntry.decode(bytes).decision { return m }
            return nil
        }
        let steps = models.map { $0.updates[0].trainingSteps }
        #expect(steps.count == 4 && steps.allSatisfy { $0 >= 100 && $0 % 100 == 0 }, "\(steps)")
        #expect(zip(steps, steps.dropFirst()).allSatisfy { $0 < $1 }, "one charged round between updates: \(steps)")
        let key = dp.genesis.validators.keys[0]
        #expect(node.mesh!.engine.state.trainingSteps[key] == steps.last)
        #expect(node.mesh!.engine.state.trainingEpsilon[key] == (try terms.epsilon(steps: steps.last!).epsilon))
        #expect(node.mesh!.trainingSteps >= steps.last!)
    }

    /// One validator naming root after root for a round cannot hold the node's fetch slots: a
    /// replaced announcement's fetch stops, and after `model_update_announcements_per_round_max`
    /// roots the rest are refused. Before, each of 40 roots started a fetch that held one of the
    /// 32 slots for its 120 s deadline, and the honest validator's update got `.tooManyFetches`.
    @Test func oneValidatorNamingRootAfterRootDoesNotStarveTheOthersFetches() throws {
        let three = CommitteeLogBuilder.demo(
            validators: 3, spareCount: 0, seed: 5, maskRounds: 2, federation: FederationTerms(aggregation: .fedAvg))
        let keys = three.genesis.validators.keys
        let attacker = three.signingKey(keys[1]), honest = three.signingKey(keys[2])
        let sharedBlob = [UInt8](repeating: 7, count: 5_000)
        var (node, _) = try Self.started(three, members: Set(keys), sharedBlob: sharedBlob)
        let root0 = try #require(BulkManifest(blob: sharedBlob)).root
        func announce(_ signer: SigningKey, root: Digest32, at nowMs: UInt64) -> [NodeDirective] {
            let u = SignedUpdate.sign(
                modelRound: 1, base: root0, root: root, bytes: 3_000, samples: 100, meshID: three.genesis.rules.meshID, signer: signer)
            let message = InboundMessage(
                sender: signer.publicKey, kind: .modelUpdate, sequence: nowMs, payload: u.encoded(), wasChunked: false)
            return node.onMessage(message, from: PeerAddress(ipv4: (10, 0, 0, 2), port: 7946), nowMs: nowMs)
        }
        let junk = (0..<40).map { i in Digest32(storage: [UInt8(i), 0xEE] + [UInt8](repeating: 1, count: 30)) }
        var refused = 0
        for (i, root) in junk.enumerated() {
            for d in announce(attacker, root: root, at: 100 + UInt64(i)) {
                if case .note(.updateRefused(_, 1, _)) = d { refused += 1 }
            }
        }
        let fetching = junk.filter { node.bulkPart!.transfer.isFetching($0) }
        #expect(fetching == [junk[Limits.model_update_announcements_per_round_max - 1]], "only the last root taken is fetched")
        #expect(refused == junk.count - Limits.model_update_announcements_per_round_max)
        let good = Digest32(storage: [UInt8](repeating: 0x42, count: 32))
        _ = announce(honest, root: good, at: 200)
        #expect(node.bulkPart!.transfer.isFetching(good))
        // Ticks to well past the fetch deadline: the honest fetch is still wanted, the junk ones not.
        var now: UInt64 = 200
        while now < 200_000 {
            now += 1_000
            _ = node.onTick(nowMs: now)
        }
        #expect(node.bulkPart!.wanted[good] != nil)
        // A root a proposal named, or another contributor's announcement names too, keeps its
        // fetch when the attacker moves on (round 2: a fresh budget of roots).
        func announce2(_ signer: SigningKey, root: Digest32) {
            let u = SignedUpdate.sign(
                modelRound: 2, base: root0, root: root, bytes: 3_000, samples: 100, meshID: three.genesis.rules.meshID, signer: signer)
            let message = InboundMessage(
                sender: signer.publicKey, kind: .modelUpdate, sequence: now, payload: u.encoded(), wasChunked: false)
            _ = node.onMessage(message, from: PeerAddress(ipv4: (10, 0, 0, 2), port: 7946), nowMs: now)
        }
        let copied = Digest32(storage: [UInt8](repeating: 0x43, count: 32))
        announce2(honest, root: copied)
        announce2(attacker, root: copied)
        announce2(attacker, root: Digest32(storage: [UInt8](repeating: 0x44, count: 32)))
        #expect(node.bulkPart!.transfer.isFetching(copied), "the honest validator still names it")
        let proposed = Digest32(storage: [UInt8](repeating: 0x45, count: 32))
        announce2(attacker, root: proposed)
        var meshPart = node.mesh!
        let named = SignedUpdate.sign(
            modelRound: 2, base: root0, root: proposed, bytes: 3_000, samples: 100, meshID: three.genesis.rules.meshID, signer: attacker)
        let outs = meshPart.onUpdate(named, nowMs: now, fromProposal: true)
        node.mesh = meshPart
        _ = node.route(outs, nowMs: now)
        announce2(attacker, root: Digest32(storage: [UInt8](repeating: 0x46, count: 32)))
        #expect(node.bulkPart!.transfer.isFetching(proposed), "a proposal named it")
        // A replaced root is not taken back: a replay of two announcements in turn would
        // restart both fetches without end.
        let newer = Digest32(storage: [UInt8](repeating: 0x47, count: 32))
        announce2(honest, root: newer)
        announce2(honest, root: copied)
        #expect(node.mesh!.federation!.updates[2]![honest.publicKey]!.root == newer)
        #expect(node.bulkPart!.transfer.isFetching(newer))
        #expect(
            junk.dropLast(junk.count - Limits.model_update_announcements_per_round_max + 1).allSatisfy { node.bulkPart!.wanted[$0] == nil })
    }

    /// Validator 0 of `builder`'s genesis, started at time 0 on the shared model `sharedBlob` of
    /// round 0, with `members` admitted (itself alone by default); and the start's directives.
    static func started(_ builder: CommitteeLogBuilder, members: Set<PublicKey>? = nil, sharedBlob: [UInt8]) throws
        -> (NodeCore, [NodeDirective])
    {
        let key = builder.signingKey(builder.genesis.validators.keys[0])
        let config = MeshCoreConfig(
            ledger: builder.genesis, consensus: ConsensusConfig(timings: .lan),
            rounds: .init(epochsPerRound: 1, maxRounds: 2, patience: 2, finetuneEpochs: 2),
            removeDeadAfterMs: 60_000)
        let root0 = try #require(BulkManifest(blob: sharedBlob)).root
        let mesh = MeshCore(
            config: config, signer: key, log: try MeshCore.VerifiedLog.verify([], genesis: builder.genesis),
            guard: nil, budget: try #require(builder.genesis.rules.freshBudget), finetuneEpochsDone: 0,
            noise: .insecureSeeded(seed: 9, acknowledged: .testsAndSimulationOnly), allowInsecureSeededNoise: true,
            sharedModel: SharedModelState(modelRound: 0, root: root0))
        var node = NodeCore(
            config: NodeCoreConfig(
                swim: .lan, signer: key, meshID: builder.genesis.meshID, address: PeerAddress(ipv4: (10, 0, 0, 1), port: 7946),
                members: members ?? [key.publicKey], seeds: [], memberHints: [:], swimRandomSeed: 1),
            nowMs: 0)
        let start = node.start(mesh: mesh, nowMs: 0, sharedModelBlob: sharedBlob)
        return (node, start)
    }

    static func run(_ builder: CommitteeLogBuilder) throws -> NodeCore {
        var sharedBlob = [UInt8](repeating: 7, count: 5_000)
        var (node, bundle) = try started(builder, sharedBlob: sharedBlob)
        var mask = PruneMask.full(builder.genesis.model)
        var applied: [UInt64] = []
        var offered: [UInt64: [UInt8]] = [:]
        var now: UInt64 = 0
        for _ in 0..<3_000 {
            now += 20
            var next: [NodeDirective] = []
            for d in bundle {
                switch d {
                case let .trainRound(round, epochs, _, _, _, _):
                    let importance = mask.kept.enumerated().map { layer, units in units.map { Float(layer * 100 + $0 + 1) } }
                    var t = TrainedRound(pruningRound: round, epochs: epochs, importance: importance, mask: mask, samples: 100)
                    let blob = [UInt8](repeating: UInt8(round), count: 3_000)
                    offered[round] = blob
                    t.updateBlob = blob
                    next += node.onTrained(t, nowMs: now)
                case let .advanceModel(decision, m, rule, updates, _):
                    #expect(rule == .fedAvg)
                    #expect(decision.modelRound == UInt64(applied.count) + 1, "round \(decision.modelRound) after \(applied)")
                    #expect(
                        decision.base == (try #require(BulkManifest(blob: sharedBlob))).root,
                        "the decision starts from the shared model held")
                    #expect(updates == [offered[decision.modelRound]!], "the shell gets the update's bytes")
                    applied.append(decision.modelRound)
                    if let m { mask = m }
                    sharedBlob = [UInt8](repeating: UInt8(100 + decision.modelRound), count: 5_000)
                    next += node.onModelAdvanced(modelRound: decision.modelRound, blob: sharedBlob, nowMs: now)
                case .fetchBlob, .forgetBlob, .fetchModel:
                    Issue.record("a mesh-internal fetch reached the shell")
                default: break
                }
            }
            bundle = next + node.onTick(nowMs: now)
            if node.mesh!.finished { break }
        }
        #expect(node.mesh!.finished)
        // Two pruning rounds and two phase-two rounds, each applied once, in order.
        #expect(applied == [1, 2, 3, 4])
        let kinds = node.mesh!.entries.compactMap { try? LogEntry.decode($0).decision.kind }
        #expect(kinds.filter { $0 == .model }.count == 4 && kinds.filter { $0 == .mask }.count == 2 && kinds.contains(.freeze), "\(kinds)")
        #expect(node.mesh!.engine.modelGate.sharedRoots[4] == (try #require(BulkManifest(blob: sharedBlob))).root)
        return node
    }
}
