import Foundation
import Learner
import Membership
import MeshBase
import Sodium
import Testing
import Wire

@testable import MeshConfig

@Suite struct GenesisTests {
    @Test func yamlRoundTripKeepsEveryValueAndTheID() throws {
        let g = Fixtures.genesis()
        try g.validate()
        let parsed = try Genesis(yaml: g.yaml(), file: "g.yaml")
        #expect(parsed.canonicalBytes() == g.canonicalBytes())
        #expect(parsed.meshID == g.meshID)
        // Members come back sorted by key; otherwise equal.
        #expect(parsed.members == g.members.sorted { $0.publicKey < $1.publicKey })
        #expect(parsed.training == g.training && parsed.pruning == g.pruning && parsed.privacy == g.privacy)
        #expect(parsed.data == g.data && parsed.membership == g.membership && parsed.consensus == g.consensus)
        #expect(parsed.validators == g.validators && parsed.model == g.model && parsed.name == g.name)
    }

    @Test func meshIDIsBlake2bOfTheCanonicalBytesUnderTheMeshIDTag() {
        let g = Fixtures.genesis()
        #expect(g.meshID == MeshID(genesisBytes: g.canonicalBytes()))
        #expect(g.meshID.digest == Blake2b256.hash(.meshID, g.canonicalBytes()))
        #expect(g.meshID.digest != Blake2b256.hash(.genesis, g.canonicalBytes()))
    }

    @Test func canonicalBytesDecodeBackToTheSameGenesis() throws {
        let g = Fixtures.genesis()
        let bytes = g.canonicalBytes()
        let decoded = try Genesis(canonicalBytes: bytes)
        #expect(decoded.canonicalBytes() == bytes)
        #expect(decoded.members == g.members.sorted { $0.publicKey < $1.publicKey })
    }

    @Test func memberOrderInTheValueDoesNotChangeTheBytes() {
        var g = Fixtures.genesis()
        let before = g.canonicalBytes()
        g.members.reverse()
        #expect(g.canonicalBytes() == before)
    }

    /// The same genesis written differently: no comments, flow style, keys in another order,
    /// other quoting, numbers spelt differently, upper-case hex, members in another order.
    @Test func reformattedYAMLHasTheSameID() throws {
        let g = Fixtures.genesis()
        let keys = g.members.map(\.publicKey).sorted()
        let t = g.training, p = g.pruning, v = g.privacy, m = g.membership, c = g.consensus
        let text = """
            members:
            - {address: '10.99.0.3:7946', name: node-c, key: \(keys.first { $0 == Fixtures.key(3) }!.hex.uppercased())}
            - key: \(Fixtures.key(2).hex)
            - name: 'node-a'
              key: "\(Fixtures.key(1).hex)"
              address: "[fd00::1]:7946"
            validators: {remove_dead_after_ms: \(g.validators.removeDeadAfterMs)}
            consensus: {precommit_timeout_delta_ms: \(c.precommitTimeoutDeltaMs), precommit_timeout_ms: \(c.precommitTimeoutMs),
              prevote_timeout_delta_ms: \(c.prevoteTimeoutDeltaMs), prevote_timeout_ms: \(c.prevoteTimeoutMs),
              propose_timeout_delta_ms: \(c.proposeTimeoutDeltaMs), propose_timeout_ms: "\(c.proposeTimeoutMs)"}
            membership:
                awareness_max: \(m.awarenessMax)
                gossip_fanout: \(m.gossipFanout)
                gossip_interval_ms: \(m.gossipIntervalMs)
                dead_retention_ms: \(m.deadRetentionMs)
                beacon_interval_ms: \(m.beaconIntervalMs)
                push_pull_interval_ms: \(m.pushPullIntervalMs)
                retransmit_multiplier: \(m.retransmitMultiplier)
                suspicion_max_multiplier: \(m.suspicionMaxMultiplier)
                suspicion_min_multiplier: \(m.suspicionMinMultiplier)
                indirect_probes: \(m.indirectProbeCount)
                probe_timeout_ms: \(m.probeTimeoutMs)
                probe_interval_ms: \(m.probeIntervalMs)
            data: {seed: \(g.data.seed), partition: 'dirichlet:0.5'}
            privacy: {scale_log2: \(v.scaleLog2), epsilon_budget: 10.000, delta: 0.00001, noise_multiplier: 5.0, clip_bound: 6.4e1}
            pruning: {surgery: keep, finetune_epochs: \(p.finetuneEpochs), max_rounds: \(p.maxRounds), patience: \(p.patience), boundary: "keep:0.5"}
            training:
              init_seed: \(t.initSeed)
              augment: flip
              weight_decay: 5e-4
              momentum: 0.90
              optimizer: 'sgd'
              learning_rate: 2.0E-2
              batch_size: 64
              epochs_per_round: 1
            model: 28x28x1:conv5x32,relu,pool2,conv5x64,relu,pool2,dense2048,relu,dense10
            name: test-mesh
            format: 1
            """
        let parsed = try Genesis(yaml: text, file: "reformatted.yaml")
        #expect(parsed.meshID == g.meshID)
        #expect(parsed.canonicalBytes() == g.canonicalBytes())
    }

    /// Every field changed on its own gives a valid genesis with a mesh id of its own.
    static let mutations: [(String, @Sendable (inout Genesis) -> Void)] = [
        ("name", { $0.name = "test-mesh2" }),
        ("model", { $0.model = try! ModelSpec(parsing: "28x28x1:conv5x16,relu,pool2,dense64,relu,dense10") }),
        ("epochs_per_round", { $0.training.epochsPerRound = 2 }),
        ("batch_size", { $0.training.batchSize = 32 }),
        ("learning_rate", { $0.training.learningRate = 0.021 }),
        ("learning_rate ulp", { $0.training.learningRate = $0.training.learningRate.nextUp }),
        ("optimizer", { $0.training.optimizer = .adam }),
        ("momentum", { $0.training.momentum = 0.8 }),
        ("weight_decay", { $0.training.weightDecay = 0 }),
        ("augment", { $0.training.augment = .none }),
        ("init_seed", { $0.training.initSeed = 2 }),
        ("boundary", { $0.pruning.boundary = .keep(fractionMicro: 500_001) }),
        ("boundary kind", { $0.pruning.boundary = .auto(kMilli: 500) }),
        ("boundary auto2", { $0.pruning.boundary = .auto2(kMilli: 500) }),
        ("patience", { $0.pruning.patience = 3 }),
        ("max_rounds", { $0.pruning.maxRounds = 6 }),
        ("finetune_epochs", { $0.pruning.finetuneEpochs = 0 }),
        ("surgery", { $0.pruning.surgery = .reinit }),
        ("clip_bound", { $0.privacy.clipBound = 32 }),
        ("noise_multiplier", { $0.privacy.noiseMultiplier = 4 }),
        ("delta", { $0.privacy.delta = 1e-6 }),
        ("epsilon_budget", { $0.privacy.epsilonBudget = 9 }),
        ("scale_log2", { $0.privacy.scaleLog2 = 11 }),
        ("partition", { $0.data.partition = "iid" }),
        ("partition seed", { $0.data.seed = 2 }),
        ("probe_interval_ms", { $0.membership.probeIntervalMs += 1 }),
        ("probe_timeout_ms", { $0.membership.probeTimeoutMs += 1 }),
        ("indirect_probes", { $0.membership.indirectProbeCount += 1 }),
        ("suspicion_min_multiplier", { $0.membership.suspicionMinMultiplier += 1 }),
        ("suspicion_max_multiplier", { $0.membership.suspicionMaxMultiplier += 1 }),
        ("retransmit_multiplier", { $0.membership.retransmitMultiplier += 1 }),
        ("push_pull_interval_ms", { $0.membership.pushPullIntervalMs += 1 }),
        ("beacon_interval_ms", { $0.membership.beaconIntervalMs = 0 }),
        ("dead_retention_ms", { $0.membership.deadRetentionMs += 1 }),
        ("gossip_interval_ms", { $0.membership.gossipIntervalMs += 1 }),
        ("gossip_fanout", { $0.membership.gossipFanout += 1 }),
        ("awareness_max", { $0.membership.awarenessMax -= 1 }),
        ("propose_timeout_ms", { $0.consensus.proposeTimeoutMs += 1 }),
        ("propose_timeout_delta_ms", { $0.consensus.proposeTimeoutDeltaMs += 1 }),
        ("prevote_timeout_ms", { $0.consensus.prevoteTimeoutMs += 1 }),
        ("prevote_timeout_delta_ms", { $0.consensus.prevoteTimeoutDeltaMs += 1 }),
        ("precommit_timeout_ms", { $0.consensus.precommitTimeoutMs += 1 }),
        ("precommit_timeout_delta_ms", { $0.consensus.precommitTimeoutDeltaMs += 1 }),
        ("remove_dead_after_ms", { $0.validators.removeDeadAfterMs += 1 }),
        ("member key", { $0.members[2].publicKey = Fixtures.key(9) }),
        ("member added", { $0.members.append(GenesisMember(publicKey: Fixtures.key(9))) }),
        ("member removed", { $0.members.removeLast() }),
        ("member name", { $0.members[0].name = "node-z" }),
        ("member name removed", { $0.members[0].name = nil }),
        ("member name added", { $0.members[2].name = "node-b" }),
        ("member address", { $0.members[0].address = HostPort(parsing: "10.99.0.3:7947") }),
        ("member address removed", { $0.members[0].address = nil }),
        (
            "member name moved to another key",
            {
                $0.members[2].name = $0.members[0].name
                $0.members[0].name = nil
            }
        ),
    ]

    @Test func everyFieldChangeGivesADifferentID() throws {
        let base = Fixtures.genesis()
        var ids: [MeshID: String] = [base.meshID: "base"]
        for (label, mutate) in Self.mutations {
            var g = base
            mutate(&g)
            do { try g.validate() } catch {
                Issue.record("mutation \(label) is not valid: \(error)")
                continue
            }
            if let other = ids.updateValue(label, forKey: g.meshID) {
                Issue.record("mutation \(label) has the same id as \(other)")
            }
            // And each survives both encodings.
            let viaYAML = try Genesis(yaml: g.yaml(), file: label)
            #expect(viaYAML.meshID == g.meshID, "\(label)")
            let viaBytes = try Genesis(canonicalBytes: g.canonicalBytes())
            #expect(viaBytes.meshID == g.meshID, "\(label)")
        }
        #expect(ids.count == Self.mutations.count + 1)
    }

    @Test func everyTruncationOfTheCanonicalBytesIsRefusedWithoutACrash() {
        let bytes = Fixtures.genesis().canonicalBytes()
        for n in 0..<bytes.count {
            #expect(throws: ConfigError.self) { try Genesis(canonicalBytes: Array(bytes.prefix(n))) }
        }
        #expect(throws: ConfigError.self) { try Genesis(canonicalBytes: bytes + [0]) }
    }

    @Test func seededByteFlipsNeverCrashAndAnAcceptedFlipIsAnotherMesh() {
        let bytes = Fixtures.genesis().canonicalBytes()
        let id = Fixtures.genesis().meshID
        var rng = SeededGenerator(seed: 42)
        var accepted = 0
        for _ in 0..<2000 {
            var b = bytes
            let i = Int.random(in: 0..<b.count, using: &rng)
            b[i] ^= UInt8.random(in: 1...255, using: &rng)
            if let g = try? Genesis(canonicalBytes: b) {
                accepted += 1
                #expect(g.meshID != id)
                #expect(g.canonicalBytes() == b)
            }
        }
        // Flips inside seeds, keys and counters are valid other meshes; most others are not.
        #expect(accepted > 0 && accepted < 2000)
    }

    @Test func nonCanonicalBytesAreRefused() throws {
        let g = Fixtures.genesis()
        // Members written out of key order.
        var w = ByteWriter()
        let canonical = g.canonicalBytes()
        var reordered = g
        reordered.members.sort { $0.publicKey > $1.publicKey }
        let memberStart =
            canonical.count
            - g.members.reduce(0) { total, m in
                total + 32 + 2 + (m.name?.utf8.count ?? 0) + 2 + (m.address?.description.utf8.count ?? 0)
            }
        w.write(raw: canonical.prefix(memberStart))
        for m in reordered.members {
            w.write(raw: m.publicKey.bytes)
            w.write(string: m.name ?? "")
            w.write(string: m.address?.description ?? "")
        }
        #expect(w.bytes.count == canonical.count && w.bytes != canonical)
        let error = try #require(throws: ConfigError.self) { try Genesis(canonicalBytes: w.bytes) }
        #expect(error.description.contains("canonical"), "\(error)")

        // Duplicate member: same key twice.
        var dup = g
        dup.members.append(GenesisMember(publicKey: g.members[0].publicKey))
        let e2 = try #require(throws: ConfigError.self) { try Genesis(canonicalBytes: dup.canonicalBytes()) }
        #expect(e2.field.hasPrefix("members["), "\(e2)")

        // Wrong magic.
        var bad = canonical
        bad[0] ^= 1
        let e3 = try #require(throws: ConfigError.self) { try Genesis(canonicalBytes: bad) }
        #expect(e3.field == "magic")
    }

    @Test func derivedQuorumAndFaultTolerance() {
        #expect(Genesis.maxFaulty(validators: 1) == 0 && Genesis.quorum(validators: 1) == 1)
        #expect(Genesis.maxFaulty(validators: 3) == 0 && Genesis.quorum(validators: 3) == 3)
        #expect(Genesis.maxFaulty(validators: 4) == 1 && Genesis.quorum(validators: 4) == 3)
        #expect(Genesis.maxFaulty(validators: 7) == 2 && Genesis.quorum(validators: 7) == 5)
        #expect(Genesis.maxFaulty(validators: 10) == 3 && Genesis.quorum(validators: 10) == 7)
        for n in 1...Limits.members_count_max {
            let f = Genesis.maxFaulty(validators: n), q = Genesis.quorum(validators: n)
            #expect(3 * f < n && 3 * (f + 1) >= n) // the largest f with f < n/3
            #expect(3 * q > 2 * n && 3 * (q - 1) <= 2 * n) // the smallest q with q > 2n/3
        }
    }

    @Test func consensusTimeoutsGrowPerRoundAndSaturate() {
        let c = ConsensusTimings.lan
        #expect(c.proposeTimeoutMs(round: 0) == 300 && c.proposeTimeoutMs(round: 3) == 600)
        #expect(c.prevoteTimeoutMs(round: 2) == 300 && c.precommitTimeoutMs(round: 1) == 200)
        #expect(ConsensusTimings.grow(.max - 1, 2, 1) == ConsensusTimings.saturatedMs)
        #expect(ConsensusTimings.grow(1, .max, 3) == ConsensusTimings.saturatedMs)
        #expect(ConsensusTimings.grow(UInt64.max / 2 - 10, 4, 2) == UInt64.max / 2 - 2)
    }

    @Test func privacyParametersBuildThePinnedBudget() throws {
        let g = Fixtures.genesis()
        let pinned = try g.privacyBudget()
        #expect(pinned.pinned.dimension == g.importanceDimension)
        #expect(g.importanceDimension == 32 + 64 + 2048)
        #expect(pinned.pinned.clipBound == g.privacy.clipBound)
        #expect(pinned.budget.epsilonMax == g.privacy.epsilonBudget)
    }

    @Test func checkedInGenesisExampleParsesAndMatchesItsOwnYAML() throws {
        let path = Fixtures.netconfig.appendingPathComponent("genesis.example.yaml").path
        let g = try Genesis.load(path: path)
        #expect(g.members.count == 4)
        #expect(g.members.allSatisfy { $0.name != nil && $0.address != nil })
        #expect(g.membership == .lan && g.consensus == .lan)
        // Every field the writer documents is in the example (same keys, in the same order).
        let example = try String(contentsOfFile: path, encoding: .utf8)
        func keys(_ text: String) -> [String] {
            text.split(separator: "\n").compactMap { line in
                let t = line.trimmingCharacters(in: .whitespaces)
                guard !t.hasPrefix("#"), let colon = t.firstIndex(of: ":") else { return nil }
                return String(t[..<colon])
            }
        }
        #expect(keys(example) == keys(g.yaml()))
        // Every field line of the example has a comment above it (or is a member entry).
        let lines = example.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var inMembers = false
        for (i, line) in lines.enumerated()
        where !line.isEmpty && !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") {
            if line.hasPrefix("members:") { inMembers = true }
            if inMembers && line.hasPrefix(" ") { continue }
            // Mapping headers and fields: the previous non-field line is a comment, or the
            // field shares a commented pair (x_ms then x_delta_ms).
            let previous = lines[..<i].last { !$0.isEmpty } ?? ""
            let documented =
                previous.trimmingCharacters(in: .whitespaces).hasPrefix("#")
                || line.contains("_delta_ms:")
            #expect(documented, "line \(i + 1) has no comment: \(line)")
        }
    }
}

@Suite struct MembershipTimingsTests {
    @Test func lanDefaultsAreTheSWIMDefaultsAndConvertBothWays() {
        #expect(MembershipTimings.lan.swimConfig == SWIMConfig.lan)
        #expect(MembershipTimings(SWIMConfig.lan) == .lan)
        var t = MembershipTimings.lan
        t.probeIntervalMs = 700
        t.gossipFanout = 5
        #expect(MembershipTimings(t.swimConfig) == t)
        #expect(t.swimConfig.probeIntervalMs == 700 && t.swimConfig.gossipFanout == 5)
    }

    @Test func hostPortsConvertToPeerAddressesWhenNumeric() {
        #expect(HostPort(parsing: "10.99.0.1:7946")!.peerAddress == PeerAddress(parsing: "10.99.0.1:7946"))
        #expect(HostPort(parsing: "[fd00::1]:7946")!.peerAddress == PeerAddress(parsing: "[fd00::1]:7946"))
        #expect(HostPort(parsing: "node.lan:7946")!.peerAddress == nil)
    }
}
