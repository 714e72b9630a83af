/// Every bound PruneMesh enforces, in one place.
///
/// Anything that comes from the network or from disk is checked against one of these before a
/// byte of it is trusted or any memory is sized from it. The relations between them (a chunk fits
/// in a datagram, the largest logical message fits in the chunks a reassembly buffer may hold, …)
/// are asserted by `Limits.checkRelations()` and by `LimitsTests`.
///
/// Names end in their unit: `_bytes`, `_count`, `_ms`.
public enum Limits {
    // MARK: Network

    /// No datagram we send or accept is larger: 1400 bytes keeps clear of IP fragmentation on any
    /// LAN (1500-byte Ethernet MTU minus IPv6 and UDP headers, with room for tunnels).
    public static let datagram_bytes_max = 1400

    /// Members (and so validators) a mesh may hold at once.
    public static let members_count_max = 256

    /// A logical message larger than one datagram is split into at most this many signed chunks.
    public static let chunks_per_message_max = 64

    /// The largest logical message (before chunking), in bytes.
    public static let message_bytes_max = 64 * 1024

    /// Reassembly buffers held at once per node (incomplete chunked messages); the oldest is
    /// evicted beyond this.
    public static let reassembly_buffers_count_max = 64

    /// Total bytes held by all reassembly buffers of one node.
    public static let reassembly_bytes_max = 2 * 1024 * 1024

    /// An incomplete chunked message is dropped this long after its first chunk arrived.
    public static let reassembly_timeout_ms = 5_000

    /// Width of the anti-replay window per sender, in sequence numbers.
    public static let replay_window_count = 1024

    /// Datagrams waiting to be sent by one node; beyond this, new sends are dropped and counted.
    public static let send_queue_count_max = 4096

    // MARK: Model and importance

    /// Prunable units (conv filters + hidden dense units) in one importance vector. Chosen so the
    /// worst-case release payload — a 33-byte header, every value a 5-byte varint and the 9-byte
    /// DP-SGD steps trailer — fits one message: 33 + 5 · 13,098 + 9 = 65,532 ≤ 65,536 (was 16,384,
    /// which privacy could build and the wire could not send; then 13,100 before the trailer).
    public static let importance_units_count_max = 13_098

    /// Layers in a model spec.
    public static let model_layers_count_max = 32

    /// Width (filters or units) of one layer.
    public static let layer_width_max = 8192

    /// Parameters in one model; bounds the size of a checkpoint file we agree to read.
    public static let model_params_count_max = 64 * 1024 * 1024

    /// Activations (floats) a network holds for one batch: the input and every layer's output,
    /// each for every sample. The default model at the largest batch needs about 4 × 10^8.
    public static let training_activation_floats_max = 1 << 30

    /// A model spec string.
    public static let model_spec_bytes_max = 512

    // MARK: Data

    /// Dimensions of one IDX array.
    public static let idx_dimensions_count_max = 4

    /// Size of one decoded IDX file (Fashion-MNIST train images are 47,040,016 bytes).
    public static let idx_bytes_max = 512 * 1024 * 1024

    /// Shards (simulated nodes) one data set may be partitioned into.
    public static let partition_nodes_count_max = members_count_max

    // MARK: Data (labels, partitions: data layer)

    /// Distinct labels a data set may have. Labels are bytes, and the classifier heads and the
    /// label-skew partitions are sized for the 10-class MNIST family.
    public static let dataset_classes_count_max = 10

    /// The Dirichlet concentration accepted by `dirichlet:α` partitions. Below 0.001 every class
    /// already lands on a single node; above 10^6 the split is IID to within sampling noise.
    public static let partition_dirichlet_alpha_min = 0.001
    public static let partition_dirichlet_alpha_max = 1_000_000.0

    // MARK: Wire (envelope, replay, reassembly, key files)

    /// Incomplete chunked messages held at once for ONE sender; beyond this that sender's oldest
    /// is evicted, so one member flooding chunks cannot evict everyone else's messages.
    public static let reassembly_buffers_per_sender_count_max = 8

    /// Distinct senders whose replay windows a node tracks (members plus joiners in flight).
    /// A new sender beyond this is rejected rather than evicting someone's window, which
    /// would reopen that sender's old datagrams to replay.
    public static let replay_senders_count_max = 2 * members_count_max

    /// A secret key file is a few lines of text; anything larger is refused before reading it.
    public static let key_file_bytes_max = 1024

    /// The boot-epoch file is two short lines.
    public static let epoch_file_bytes_max = 256

    /// A persisted replay snapshot: a header and one (key, high-water mark) row per sender.
    public static let replay_snapshot_bytes_max = 16 + replay_senders_count_max * 40

    // MARK: Sealed datagrams (Wire.SealedCodec, Wire.SealedGate: bulk model bytes)

    /// What a sealed datagram adds to its inner payload: the 79-byte header (magic 4, version 1,
    /// kind 1, flags 1, mesh id 32, sender 32, sequence 8) and the 16-byte Poly1305 tag.
    public static let sealed_overhead_bytes = 79 + 16

    /// The largest inner payload of one sealed datagram: 1400 − 95 = 1305 bytes, 50 more than a
    /// signed envelope carries (no 64-byte signature, no 2-byte length: the datagram's size gives it).
    public static let sealed_payload_bytes_max = datagram_bytes_max - sealed_overhead_bytes

    /// Pairs whose keys one node keeps derived (two key conversions and one X25519 exchange
    /// each, ~0.2 ms); beyond this the least recently used pair is dropped and derived again when
    /// next needed. Only members get a pair, so a member's pair is never pushed out by strangers.
    public static let sealed_pair_keys_count_max = members_count_max

    // MARK: Flood control (Wire.VerifyGate: signature verifications per second)

    // An Ed25519 verification costs ~55 µs (about 18,000 a second on one core), so a datagram
    // flood that reaches verification is a CPU attack. The receive path drops what it can on
    // cheap checks first (size, header, mesh id, claimed sender admitted, replay), then meters
    // what is left with token buckets before any verification. A source is an (IP, port,
    // claimed key); it is "proven" once one of its datagrams verified from an admitted key.

    /// Verifications a second for one proven source (a member at its address), and its burst.
    /// A member's normal traffic is tens of datagrams a second; a log-sync answer to a rejoining
    /// member is the largest burst (a 64 KiB message is 53 chunks; answers go out in messages).
    public static let verify_proven_source_rate_per_s = 8_000
    public static let verify_proven_source_burst_count = 16_000

    /// Verifications a second for all datagrams from one IP address that no proven source sent
    /// (strangers, spoofed member keys, a member's first datagram from a new address), and its burst.
    public static let verify_unproven_address_rate_per_s = 50
    public static let verify_unproven_address_burst_count = 100

    /// Verifications a second for all unproven datagrams together, whatever their address (an
    /// attacker with many addresses), and its burst.
    public static let verify_unproven_rate_per_s = 500
    public static let verify_unproven_burst_count = 500

    /// Verifications a second of every kind together: the node's whole verification budget
    /// (12,000 × 55 µs ≈ two thirds of one core), and its burst.
    public static let verify_total_rate_per_s = 12_000
    public static let verify_total_burst_count = 16_000

    /// IP addresses whose unproven datagrams are metered one by one; beyond this, new addresses
    /// share one bucket of the per-address rate until idle ones are swept out.
    public static let verify_gate_addresses_count_max = 1024

    /// Proven sources tracked (members, each perhaps at an old and a new address); beyond this
    /// the least recently used is forgotten (it is proven again by its next verified datagram).
    public static let verify_gate_proven_sources_count_max = 2 * members_count_max

    /// Idle per-address buckets (full again) are swept out of a full table at most this often.
    public static let verify_gate_sweep_interval_ms = 1_000

    /// The mesh socket's kernel receive buffer (SO_RCVBUF, which Linux doubles and caps at
    /// net.core.rmem_max; the default is 208 KiB, ~250 small datagrams). 512 KiB holds ~1,250 small
    /// datagrams: ~25 ms of a 50k/s flood, so a moment of descheduling does not push members'
    /// datagrams out. Not more: when a flood outruns the node for long, a deep queue delays every
    /// member's datagram by its length (4 MiB held ~10,000: seconds, and a starved node under a
    /// 20k/s flood was declared dead because it could not hear that it was suspected in time);
    /// SWIM rides out some loss far better than seconds of delay.
    public static let udp_receive_buffer_bytes = 512 * 1024

    /// Datagrams one recvmmsg(2) call reads (NIO vector reads): a flood costs fewer system calls.
    public static let udp_vector_read_count = 16

    // MARK: Privacy (differentially private importance release)

    /// The clip bound in grid units, C·2^s. Clipped values then need at most 28 bits, leaving
    /// room in an Int32 for noise of up to 64 standard deviations at the largest σ below.
    public static let privacy_clip_bound_grid_units_max = 1 << 28

    /// The discrete Gaussian's standard deviation in grid units, z·C·2^s. Keeps σ² = m²/2^16
    /// (m = σ·256) in 64 bits and the sampler's acceptance test in 128-bit integers.
    public static let privacy_noise_std_grid_units_max = 1 << 22

    /// Distinct effective noise multipliers one node's privacy budget tracks (releases at the
    /// same multiplier share one counter); bounds the persisted budget's size.
    public static let privacy_budget_noise_levels_count_max = 1024

    // MARK: Importance release payload (Wire.ImportanceRelease)

    /// Fixed header of an importance release payload, before the values.
    public static let importance_release_header_bytes = 33

    /// The longest zigzag LEB128 varint of an Int32 value.
    public static let importance_value_bytes_max = 5

    /// The optional trailer after the values of a release in a mesh with DP-SGD training:
    /// tag u8 ‖ cumulative DP-SGD steps u64.
    public static let importance_release_training_trailer_bytes = 9

    // MARK: Node runtime (the NIO shell)

    /// After a node's UDP socket closed unexpectedly and binding it again failed, the next
    /// attempt waits this long.
    public static let socket_rebind_retry_ms = 100

    /// Refused datagrams of one kind (another mesh, not a member, replayed) are warned about at
    /// most once per this interval …
    public static let reject_notice_interval_ms = 60_000
    /// … and only once this many arrived within it (stray datagrams and duplicates stay quiet).
    public static let reject_notice_count_min = 8

    /// The replay marks are persisted this often while running (and on clean shutdown), so a
    /// crashed node loses at most this much replay protection history.
    public static let replay_snapshot_interval_ms = 10_000

    /// One HTTP request to the control/metrics endpoint (request line and headers); larger
    /// requests are answered 431 and the connection closed.
    public static let control_request_bytes_max = 8 * 1024

    /// The control file (`<state_dir>/control.json`) `prunemesh status` reads.
    public static let control_file_bytes_max = 4 * 1024

    /// A control endpoint response `prunemesh status` accepts (members × a few hundred bytes).
    public static let control_response_bytes_max = 1024 * 1024

    /// Open connections to the control endpoint (and, apart, to the metrics endpoint) at once;
    /// one more replaces the connection idle longest, or, if every one has a request in flight,
    /// is answered 503 and closed. Far below a small fd limit (64): the node
    /// keeps descriptors for its sockets, files and event loops besides.
    public static let control_connections_count_max = 16

    /// A control connection gets this long to deliver each complete request (and to take the
    /// answer); one idle or trickling longer is closed. `prunemesh start` takes a shorter value
    /// (hidden `--control-idle-timeout-ms`, at least `control_idle_timeout_ms_min`) for tests.
    public static let control_idle_timeout_ms = 10_000
    public static let control_idle_timeout_ms_min = 50

    /// Request body bytes the control endpoint reads (its requests carry none); more is answered
    /// 413 and the connection closed.
    public static let control_request_body_bytes_max = 4 * 1024

    /// `<state_dir>/control.token`: 64 hex digits and a newline.
    public static let control_token_bytes = 32
    public static let control_token_file_bytes_max = 256

    /// Refused control requests of one reason are logged at most this often (all are counted).
    public static let control_refusal_log_interval_ms = 1_000

    // MARK: Mesh genesis and node config (MeshConfig)

    /// A genesis YAML file: 256 members with names, addresses and comments take about 100 KB.
    public static let genesis_file_bytes_max = 256 * 1024

    /// A node config YAML file.
    public static let node_config_file_bytes_max = 64 * 1024

    /// Initial members a genesis may list (each is a member, so no more than a mesh may hold).
    public static let genesis_members_count_max = members_count_max

    /// A mesh's name, and a member's optional name, in UTF-8 bytes.
    public static let mesh_name_bytes_max = 64
    public static let member_name_bytes_max = 64

    /// A `host:port` text (a DNS name is at most 253 bytes; brackets, colon and port on top).
    public static let host_port_bytes_max = 263

    /// Seed peers (`join`) in one node config.
    public static let join_peers_count_max = 64

    /// Any protocol timing a genesis sets (membership, consensus, validators): at most a day.
    public static let genesis_timing_ms_max = 86_400_000

    /// Suspicion and retransmit multipliers a genesis may set.
    public static let genesis_multiplier_max = 64

    /// Training epochs per pruning round, and after the freeze.
    public static let training_epochs_count_max = 1000

    /// Training batch size.
    public static let training_batch_size_max = 4096

    /// `train --dp --clip`: DP-SGD's per-sample L2 clip bound C (typical values 0.1…10).
    public static let dp_clip_norm_max = 1e6

    /// The smallest DP-SGD clip bound C: the learner holds C as a Float, and a smaller Double
    /// (1e-320) would become 0 there (far below any useful bound either way).
    public static let dp_clip_norm_min = 1e-6

    /// `train --dp --noise-multiplier`: DP-SGD's z (noise std over C); below the noise solver's
    /// search cap of 2^40.
    public static let dp_noise_multiplier_max = 1e4

    /// The smallest positive DP-SGD z (a tool that allows z = 0 means no noise): the
    /// accountant's series divides by z², which must stay a normal number (z ≈ 1e-160 made it
    /// run a million terms per order for seconds); ε is astronomical long before this.
    public static let dp_noise_multiplier_min = 1e-6

    /// `train --dp --target-epsilon`: the record-level ε a DP-SGD run is fitted to.
    public static let dp_target_epsilon_max = 1e4

    /// The smallest DP-SGD sampling rate q a genesis may pin: one epoch is round(1/q) steps, so
    /// this bounds a round's steps at `training_epochs_count_max` · 10^6.
    public static let dp_sample_rate_min = 1e-6

    /// The largest record-level ε_max a genesis may set for DP-SGD training (the same bound as a
    /// target ε).
    public static let dp_epsilon_max_max = dp_target_epsilon_max
    /// `training_privacy.steps_per_round`: DP-SGD steps in one model round when rounds are not
    /// whole epochs (one step a round over 40 epochs at q = 1/29 is 1,160 rounds).
    public static let dp_steps_per_round_max = 10_000

    /// Pruning rounds a genesis may allow before the freeze (and the freeze patience).
    public static let pruning_rounds_count_max = 10_000

    /// Bits after the binary point of the mesh's fixed-point grid (`FixedPoint` accepts 0…24).
    public static let fixed_point_scale_log2_max = 24

    /// The node's timer tick: the shell drives the state machines this often.
    public static let node_tick_ms_min = 1
    public static let node_tick_ms_max = 1000

    // MARK: Membership (SWIM + Lifeguard; defaults are memberlist's LAN profile)

    /// Default protocol period: one probe of one member per period.
    public static let swim_probe_interval_ms_default = 1_000
    /// Default wait for a direct ack before asking others to probe indirectly.
    public static let swim_probe_timeout_ms_default = 500
    /// Default number of members asked to probe indirectly (pingReq).
    public static let swim_indirect_probes_count_default = 3
    /// Upper bound a configuration may ask for.
    public static let swim_indirect_probes_count_max = 16
    /// Lifeguard suspicion: min = this × max(1, log10 n) × probe interval.
    public static let swim_suspicion_min_multiplier_default = 4
    /// Lifeguard suspicion: max = this × min.
    public static let swim_suspicion_max_multiplier_default = 6
    /// Each membership update is piggybacked this × ceil(log10(n + 1)) times.
    public static let swim_retransmit_multiplier_default = 4
    /// Full-state push-pull with one random member this often.
    public static let swim_push_pull_interval_ms_default = 30_000
    /// LAN discovery beacon period (0 turns beacons off).
    public static let swim_beacon_interval_ms_default = 2_000
    /// Dead and left records are kept (and gossiped) this long, then reaped.
    public static let swim_dead_retention_ms_default = 60_000
    /// Pending updates are also gossiped on their own this often (memberlist GossipInterval) …
    public static let swim_gossip_interval_ms_default = 200
    /// … to this many random members (memberlist GossipNodes).
    public static let swim_gossip_fanout_count_default = 3
    /// Lifeguard local health (awareness): probe interval and timeout are scaled by up to
    /// this factor while the node's own probes keep failing.
    public static let swim_awareness_max = 8
    /// Updates one ping/ack/gossip may carry; a decoder refuses more.
    public static let swim_piggyback_updates_count_max = 32
    /// The largest encoded member update: key 32, incarnation 8, status 1, address 1 + 16 + 2,
    /// then the accuser's key 32 (suspect) or the member's signature 64 (alive, left).
    public static let swim_member_update_bytes_max = 124
    /// Indirect probes this node runs for others at once; more pingReqs are dropped and counted.
    public static let swim_pending_forwards_count_max = 64
    /// Extra probes of a member held suspect, one period apart with another member's probe
    /// between, while the suspicion lasts: its own ack can bring the refutation that gossip missed.
    public static let swim_suspect_reprobes_max = 3
    /// Members told directly of a graceful leave (the rest learn it by gossip).
    public static let swim_leave_announce_count_max = 8
    /// The highest incarnation a membership claim may name; a claim above it is ignored and
    /// counted (`SWIMCounters.incarnationsRefused`). An honest incarnation grows by one per
    /// refutation or leave and never comes near it, while a claim at `UInt64.max` would make
    /// the member it names overflow when it refutes (`u.incarnation + 1`).
    public static let swim_incarnation_max: UInt64 = UInt64.max / 2
    /// How far one claim about a node may raise that node's own incarnation (an honest one does
    /// after a restart: the node's earlier life stated it); further is ignored and counted. A
    /// claim about another member cannot raise its incarnation at all unless the member signed
    /// it (Membership's Joining.md, "Merging updates").
    public static let swim_incarnation_step_max: UInt64 = 1 << 16

    // MARK: Agreement and the decision log (Consensus, Ledger)

    /// Signed contributions one mask decision records (at most one per validator).
    public static let decision_contributions_count_max = members_count_max

    /// Precommit signatures one commit certificate carries (at most one per validator).
    public static let certificate_signatures_count_max = members_count_max

    /// One signed model-update announcement (`Consensus.SignedUpdate`): key 32, round 8, base 32,
    /// root 32, bytes 8, samples 4, DP-SGD steps 8, signature 64. Fits one datagram with its envelope.
    public static let signed_update_bytes = 188
    /// Updates one model decision records (at most one per validator): 2 + 8 + 32 + 256 · 188 ≈ 48 KB.
    public static let model_decision_updates_count_max = members_count_max
    /// The bytes one model update may claim (a 64 M-parameter f32 model: `model_params_count_max` · 4).
    public static let model_update_bytes_max: UInt64 = UInt64(model_params_count_max) * 4
    /// The samples one model update may claim to have trained on (its FedAvg weight).
    public static let model_update_samples_max: UInt32 = 1 << 30
    /// Model rounds ahead of the next one for which update announcements are kept.
    public static let model_update_rounds_ahead_max = 1
    /// Distinct updates (roots) one contributor's announcements may name for one model round: a
    /// restarted node trains and announces anew; more are refused, and each replaced one's fetch
    /// stops (unless a proposal or another contributor names it), so one member cannot hold the
    /// node's fetch slots (`bulk_fetches_count_max`).
    public static let model_update_announcements_per_round_max = 4

    /// A remove decision's free-text note (why the member was removed), in UTF-8 bytes.
    public static let decision_note_bytes_max = 256

    /// One log entry's encoding (height, previous hash, decision, certificate). The largest is a
    /// mask decision recording every validator's largest release with the full aggregate and
    /// mask: 256 × (108 + 65,536) + 4 · 13,100 + 32 · (2 + 2 · 8,192) ≈ 17.4 MB.
    public static let log_entry_bytes_max = 20 * 1024 * 1024

    /// Entries one log file may hold (a height per decision; bounds what an audit reads).
    public static let log_entries_count_max = 100_000_000

    // MARK: Agreement engine

    /// Digests one contribution request may name (2 + 32 · 32 = 1,026 bytes: one datagram with its
    /// envelope; 64 would not fit, and `checkRelations` refused it).
    public static let contribution_request_digests_count_max = 32
    /// Contributions the engine holds per contributor and pruning round (a second, different one
    /// is kept only so that a proposal naming it can be checked).
    public static let contributions_per_contributor_round_max = 2
    /// Pruning rounds ahead of the next one for which contributions are accepted and kept.
    public static let contribution_rounds_ahead_max = 1
    /// Messages for the next height held until this height commits.
    public static let consensus_future_messages_count_max = 4 * members_count_max
    /// … of which one sender may have this many (a proposer relays its proposal's proof of lock,
    /// up to one prevote per member, besides its own votes).
    public static let consensus_future_messages_per_sender_max = members_count_max + 16
    /// Rounds of votes kept below the current round (older ones are dropped, except the lock's
    /// and the valid value's round).
    public static let consensus_vote_rounds_kept_max = 8
    /// Rounds above the current one whose votes are stored (higher ones only count towards the
    /// skip rule, one latest round per validator).
    public static let consensus_vote_rounds_ahead_max = 16
    /// Rounds whose own votes the signing guard keeps: the guard's round and the ones just below
    /// it. A restarted validator sends them to peers still in those rounds, which may be waiting
    /// for exactly those votes (it does not vote there again; it resumes after the guard's round).
    public static let consensus_guard_vote_rounds_max = 8
    /// A vote's encoding: voter (32) ‖ height (8) ‖ round (4) ‖ type (1) ‖ has digest (1) ‖ digest (32) ‖ signature (64).
    public static let vote_bytes_max = 142
    /// The signing guard: its header, the lock (the locked proposal, at most one message, and a
    /// quorum of prevotes for it) and the own votes of `consensus_guard_vote_rounds_max` rounds.
    public static let signing_guard_bytes_max = 128 * 1024
    /// Votes kept per validator and slot beyond the first, each for another value (an
    /// equivocator's): they count for their value, so that its prevote cannot be hidden from a
    /// proof of lock by its other vote arriving first.
    public static let consensus_conflicting_votes_per_slot_max = 2
    /// Decisions waiting to be proposed (invites, removals, evidence, freeze).
    public static let consensus_pending_decisions_count_max = 64
    /// Equivocations held until recorded.
    public static let consensus_pending_evidence_count_max = 16
    /// A log-sync response carries an entry in pieces of at most this many bytes (plus a
    /// 20-byte header), so that one piece is one message.
    public static let log_sync_piece_bytes_max = 60 * 1024
    /// Entries one log-sync request may ask for (the answer is bounded by the sender's queue too).
    public static let log_sync_entries_per_request_max = 64
    /// Each requester's log-sync window (`SyncServeMeter`): within it, heights already sent to
    /// it are not sent again, and …
    public static let log_sync_serve_window_ms = 500
    /// … at most this many entries go to it in all.
    public static let log_sync_served_entries_per_window_max = 64
    /// Requesters whose windows a node holds at once (members and removed members may ask).
    public static let log_sync_requesters_count_max = 2 * members_count_max

    // MARK: Model aggregation (federated averaging, Learner's `Aggregation`)

    /// Contributions one aggregate combines: at most one per member.
    public static let aggregation_contributions_count_max = members_count_max

    /// Training samples one contribution may claim (its FedAvg weight). Far beyond any shard;
    /// the sum over every contributor stays below 2^53, so it is exact in a Double.
    public static let aggregation_contribution_samples_max = 1 << 32

    /// Bytes of a contributor's ordering key (an Ed25519 public key or a BLAKE2b digest is 32).
    public static let aggregation_key_bytes_max = 64

    /// Iterations of an iterative robust rule (`cclip:L`, `geomed:T`): each is one pass over
    /// every contribution, so this bounds an aggregate's work at a few hundred passes.
    public static let aggregation_iterations_max = 100

    /// `dev fedavg --rounds`: federated rounds of one in-process run (one-step DP-SGD rounds
    /// take ~1/q rounds an epoch: 40 epochs at q = 1/29 are 1,172 rounds).
    public static let fedavg_rounds_count_max = 10_000

    // MARK: Command line (every count, size, time and port a `prunemesh` flag takes)

    /// Threads a learner command (`train`, `prune`, `bench`) or `start --threads` may ask for.
    public static let cli_threads_count_max = 256

    /// A node's training threads (`start --threads`, the config's `threads`; 0 = all cores).
    public static let node_threads_count_max = 1024

    /// A node's training thread's nice value (`start --training-nice`, the config's
    /// `training_nice`): 0 (as the event loop) … 19; by default 10, below the loop, so that
    /// heartbeats and votes are scheduled first on a busy machine.
    public static let node_training_nice_max = 19
    public static let node_training_nice_default = 10

    /// `prune --rounds`: pruning rounds one local run may take (a mesh may allow more, see
    /// `pruning_rounds_count_max`; locally each is at least one epoch of training).
    public static let prune_rounds_count_max = 100

    /// `bench … --seconds`: time spent on one measurement.
    public static let bench_seconds_max = 600

    /// `bench infer --runs`: single-sample runs for the latency median.
    public static let bench_runs_count_max = 100_000

    /// `privacy --releases`: releases the accountant is asked about (a node releases at most
    /// once per pruning round; far beyond any budget, yet exact in a Double).
    public static let privacy_releases_count_max = 1 << 40

    /// `privacy --steps`: DP-SGD steps the accountant is asked about (a billion: far beyond any
    /// training run on a node's data, yet exact in a Double).
    public static let privacy_steps_count_max = 1_000_000_000

    /// `simulate --seeds`: seeds in one run. Results are streamed (memory does not grow with the
    /// count); this bounds the run's length and keeps `--first-seed + seeds` from wrapping.
    public static let simulate_seeds_count_max = 1_000_000_000

    /// `simulate --jobs`: worker threads.
    public static let simulate_jobs_count_max = cli_threads_count_max

    /// `simulate --partitions`, `--crashes`: faults one seed may draw of each kind.
    public static let simulate_faults_count_max = 1_000

    /// `simulate --mask-rounds`: pruning rounds before the freeze in one simulated run.
    public static let simulate_mask_rounds_count_max = 1_000

    /// `simulate --delay-max-ms`: the largest one-way delay a seed may draw.
    public static let simulate_delay_ms_max = 60_000

    /// `simulate --fault-phase-ms`, `--liveness-bound-ms`: virtual time spans (a day, like any
    /// protocol timing a genesis sets).
    public static let simulate_time_ms_max = genesis_timing_ms_max

    /// `demo --nodes`: node processes one demo starts on this machine.
    public static let demo_nodes_count_max = 16

    /// `demo --timeout`, `leave --timeout`/`--linger`: seconds a command waits at most (a day).
    public static let cli_wait_seconds_max = 86_400

    /// `dev bench-audit --entries`: the synthetic log is built in memory.
    public static let dev_bench_audit_entries_count_max = 1_000_000

    /// The largest UDP or TCP port number.
    public static let port_max = 65_535

    // MARK: Bulk transfer (Bulk: model updates as content-addressed pieces)

    /// One bulk message (the plaintext of one sealed datagram). The sealed datagram's own
    /// overhead is at most `bulk_datagram_overhead_bytes_max`, so a bulk message never fragments.
    public static let bulk_message_bytes_max = 1200

    /// What sealing a bulk message into a datagram may add at most (header, nonce, tag): 1400 −
    /// 145 is the largest plaintext a sealed datagram carries.
    public static let bulk_datagram_overhead_bytes_max = 145

    /// A piece's bytes: the piece message's 39-byte header plus a piece is 1,063 ≤ 1,200.
    public static let bulk_piece_bytes = 1024

    /// Pieces in one segment (the unit of request, verification and repair). A piece request names
    /// the wanted pieces of one segment in a 64-bit bitmap, so at most 64.
    public static let bulk_segment_pieces = 64

    /// Bytes of one full segment (the last segment of a blob may be shorter).
    public static let bulk_segment_bytes = bulk_piece_bytes * bulk_segment_pieces

    /// The largest blob: a full f32 model update of the default model (26 MB) fits with room.
    public static let bulk_blob_bytes_max = 64 * 1024 * 1024

    /// Segments of the largest blob, and so the longest manifest (1,024 × 32 bytes = 32 KiB).
    public static let bulk_segments_count_max = bulk_blob_bytes_max / bulk_segment_bytes

    /// Segment hashes one manifest part carries: 55-byte header + 32 × 32 = 1,079 ≤ 1,200.
    public static let bulk_manifest_part_hashes_max = 32

    /// Blobs a node holds and serves at once (its own offers and the blobs it fetched): one
    /// update per member.
    public static let bulk_blobs_held_max = members_count_max

    /// Bytes of all blobs held plus the buffers of fetches under way (16 updates of 26 MB fit).
    public static let bulk_held_bytes_max = 512 * 1024 * 1024

    /// Fetches (wants) under way at once.
    public static let bulk_fetches_count_max = 32

    /// Sources one fetch may name (every member at most).
    public static let bulk_sources_count_max = members_count_max

    /// One fetch's window, in segments' worth of pieces still missing (a config may not set more).
    public static let bulk_fetch_window_segments_max = 16

    /// Segments one fetch has asked for and not yet verified: the window counts missing pieces,
    /// so segments waiting for a few repaired pieces let others start, up to this many.
    public static let bulk_fetch_segments_in_flight_max = 8 * bulk_fetch_window_segments_max

    /// Segment and manifest requests outstanding over all fetches of one node.
    public static let bulk_outstanding_requests_max = 256

    /// Requests a node has accepted to serve and not yet served; beyond this a new one is dropped
    /// and counted (its requester times out and asks again, or asks another source).
    public static let bulk_serve_queue_count_max = 256

    /// Of those, requests from one requester: one member asking for many segments at once cannot
    /// take the whole queue from the others.
    public static let bulk_serve_queue_per_requester_count_max = 64

    /// The serve-side rate (bytes a second of bulk messages a node sends) and its burst: an
    /// eighth of a gigabit LAN, so that membership and agreement are never crowded out, and a
    /// pruned model's 2 MB update reaches three peers in under half a second (at 8 MiB/s the
    /// last update of a round took a second, a tenth of the demo's round).
    public static let bulk_serve_rate_bytes_per_s_default = 16 * 1024 * 1024
    public static let bulk_serve_burst_bytes_default = 256 * 1024
    /// The largest serve rate and burst a configuration may set (benchmarks run unlimited within it).
    public static let bulk_serve_rate_bytes_per_s_max = 1 << 40
    public static let bulk_serve_burst_bytes_max = 1 << 30

    /// The longest a request waits without progress (no piece, no part) before its missing pieces
    /// are asked for again (the adaptive repair timeout, 2 × round trip + grace, is capped here
    /// and starts here), and the unit of silence after which a source is left.
    public static let bulk_request_idle_timeout_ms_default = 250
    /// Pieces still missing when the last piece of a request arrives are asked for again this much
    /// later: longer than a LAN (or the simulator's 1–20 ms delays) reorders datagrams.
    public static let bulk_reorder_grace_ms_default = 25
    /// A source that sent nothing for a request for this many idle timeouts is left for another
    /// (when there is one).
    public static let bulk_switch_after_timeouts_default = 3
    /// A source that said "don't have" is not asked again for that blob for this long.
    public static let bulk_dont_have_retry_ms_default = 1_000
    /// A want with no deadline of its own fails this long after it was made.
    public static let bulk_want_deadline_ms_default = 120_000
    /// One fetch's window by default, in segments' worth of expected pieces (8 × 64 = 512 pieces,
    /// about 60 ms at the default serve rate: several LAN round trips).
    public static let bulk_fetch_window_segments_default = 8

    // MARK: Process memory

    /// Allocations of at least this many bytes get their own mapping, returned to the system
    /// when freed (glibc `M_MMAP_THRESHOLD`, fixed instead of sliding): a node's tensors and
    /// buffers shrink when its model is pruned, and its resident size should shrink with them.
    public static let heap_mmap_threshold_bytes = 256 * 1024
    /// At most this many malloc arenas per node process (the event loop, the training thread and
    /// the kernels' workers would otherwise each grow a heap of their own).
    public static let heap_arenas_count_max = 2

    // MARK: Relations

    /// Asserts how the limits relate; called once at start-up of every command (a build whose
    /// limits contradict each other must not run).
    public static func checkRelations() {
        let violated = violatedRelations
        precondition(violated.isEmpty, "the limits contradict each other: " + violated.joined(separator: "; "))
    }

    /// Every relation below that does not hold, as its reason and line (empty when all hold).
    /// Tests report these instead of trapping, so a broken limit names itself.
    public static var violatedRelations: [String] {
        var violated: [String] = []
        func relation(_ holds: Bool, _ why: String = "relation", line: Int = #line) {
            if !holds { violated.append("\(why) (Limits.swift:\(line))") }
        }
        relation(datagram_bytes_max <= 1400, "datagrams must not fragment on a 1500-byte MTU LAN")
        relation(
            chunks_per_message_max * (datagram_bytes_max - 256) >= message_bytes_max,
            "the largest message must fit in the chunks allowed for it, with 256 bytes of envelope each")
        relation(
            reassembly_buffers_count_max * message_bytes_max >= reassembly_bytes_max
                || reassembly_bytes_max >= message_bytes_max,
            "at least one whole message must fit in the reassembly budget")
        relation(
            reassembly_bytes_max >= 2 * message_bytes_max,
            "reassembly must hold two of the largest messages at once")
        relation(replay_window_count % 64 == 0, "the replay bitmap is made of 64-bit words")
        relation(
            importance_units_count_max * 4 <= message_bytes_max,
            "a full importance vector of 32-bit fixed-point values must fit in one message")
        relation(
            importance_release_header_bytes + importance_units_count_max * importance_value_bytes_max
                + importance_release_training_trailer_bytes <= message_bytes_max,
            "a full importance release with every value a 5-byte varint and the DP-SGD steps trailer must fit in one message")
        relation(partition_nodes_count_max <= members_count_max)
        relation(aggregation_contributions_count_max <= members_count_max, "one contribution per member at most")
        relation(
            Double(aggregation_contributions_count_max) * Double(aggregation_contribution_samples_max) < 9_007_199_254_740_992,
            "the total sample count of an aggregate must be exact in a Double (below 2^53)")
        relation(layer_width_max <= importance_units_count_max)
        relation(
            reassembly_buffers_per_sender_count_max <= reassembly_buffers_count_max,
            "one sender's reassembly share is part of the node's")
        relation(chunks_per_message_max <= 64, "a reassembly buffer tracks its chunks in one 64-bit mask")
        relation(replay_senders_count_max >= members_count_max, "every member's replay window fits")
        relation(
            dataset_classes_count_max >= 2 && dataset_classes_count_max <= 256,
            "a classifier needs two classes, and labels are stored as bytes")
        relation(
            partition_dirichlet_alpha_min > 0 && partition_dirichlet_alpha_min < partition_dirichlet_alpha_max,
            "Dirichlet concentration must be positive")
        relation(
            privacy_clip_bound_grid_units_max + 64 * privacy_noise_std_grid_units_max <= Int(Int32.max),
            "a clipped value plus 64 noise standard deviations must fit a 32-bit fixed-point value")
        relation(
            privacy_noise_std_grid_units_max <= 1 << 22,
            "σ·256 must stay within 2^30 so that the exact variance m²/2^16 fits 64 bits")
        relation(genesis_members_count_max <= members_count_max, "every genesis member is a member")
        relation(fixed_point_scale_log2_max <= 24, "FixedPoint accepts scales 2^0…2^-24")
        relation(node_tick_ms_min >= 1 && node_tick_ms_min <= node_tick_ms_max)
        relation(node_training_nice_default >= 0 && node_training_nice_default <= node_training_nice_max)
        relation(
            mesh_name_bytes_max <= Int(UInt16.max) && member_name_bytes_max <= Int(UInt16.max)
                && host_port_bytes_max <= Int(UInt16.max), "genesis strings carry a 16-bit length")
        relation(
            swim_probe_timeout_ms_default < swim_probe_interval_ms_default,
            "a direct probe must time out within its period, leaving room for indirect probes")
        relation(
            swim_suspicion_min_multiplier_default >= 1 && swim_suspicion_max_multiplier_default >= 1,
            "suspicion timeouts are positive and max ≥ min")
        relation(swim_indirect_probes_count_default <= swim_indirect_probes_count_max)
        relation(
            9 + members_count_max * swim_member_update_bytes_max <= message_bytes_max,
            "a full membership sync (flag, count, every member) must fit in one message")
        relation(swim_piggyback_updates_count_max <= Int(UInt8.max), "piggyback counts are one byte")
        relation(swim_awareness_max >= 1)
        relation(
            swim_incarnation_max <= UInt64.max - 2,
            "a node's incarnation is at most a claim's + 1 (refutation), then + 1 (leave)")
        relation(
            swim_incarnation_step_max >= 1 << 10 && swim_incarnation_step_max < swim_incarnation_max / (1 << 40),
            "an honest lag fits one step, and the ceiling lies 2⁴⁰ steps away")
        relation(
            log_entry_bytes_max >= 96 + decision_contributions_count_max * (108 + message_bytes_max)
                + 4 * importance_units_count_max + model_layers_count_max * (2 + 2 * layer_width_max)
                + certificate_signatures_count_max * 66 + 64,
            "the largest mask decision (every validator's largest release, full aggregate and mask) fits one log entry")
        relation(log_entry_bytes_max <= Int(UInt32.max), "a log record's length is a u32")
        relation(
            2 + contribution_request_digests_count_max * 32 <= datagram_bytes_max - 256,
            "a contribution request fits one datagram")
        relation(20 + log_sync_piece_bytes_max <= message_bytes_max, "a log-sync piece with its header fits one message")
        relation(
            log_sync_served_entries_per_window_max >= log_sync_entries_per_request_max,
            "one whole request fits a requester's window")
        relation(log_sync_serve_window_ms >= 1 && log_sync_requesters_count_max >= members_count_max)
        relation(contribution_request_digests_count_max >= 1 && contributions_per_contributor_round_max >= 1)
        relation(
            consensus_future_messages_count_max >= 3 * members_count_max,
            "a whole next height's proposal, prevotes and precommits can wait")
        relation(
            consensus_future_messages_per_sender_max >= members_count_max + 3
                && consensus_future_messages_per_sender_max < consensus_future_messages_count_max,
            "one sender's proposal, proof of lock and votes can wait, and it cannot take the whole buffer")
        relation(
            consensus_guard_vote_rounds_max >= 1 && consensus_guard_vote_rounds_max <= consensus_vote_rounds_kept_max + 1,
            "the guard keeps the interrupted round's votes, and no round the engine would already have dropped")
        relation(2 * consensus_guard_vote_rounds_max <= Int(UInt8.max), "the guard's vote count is one byte")
        relation(
            13 + 4 + 4 + message_bytes_max + 2 + members_count_max * vote_bytes_max + 1
                + 2 * consensus_guard_vote_rounds_max * vote_bytes_max <= signing_guard_bytes_max,
            "the largest signing guard (a lock on a one-message proposal with a prevote of every validator, two votes per kept round) fits its file limit"
        )
        relation(layer_width_max <= Int(UInt16.max), "mask indices are stored as u16")
        relation(
            certificate_signatures_count_max <= Int(UInt16.max) && members_count_max <= Int(UInt16.max),
            "validator indices and counts are stored as u16")
        relation(simulate_jobs_count_max <= cli_threads_count_max, "simulate's workers are threads like the learner's")
        relation(simulate_delay_ms_max < simulate_time_ms_max, "a delay fits in a simulated span")
        relation(
            demo_nodes_count_max <= members_count_max && demo_nodes_count_max <= port_max / 2,
            "every demo node is a member, and its ports fit above a base port")
        relation(prune_rounds_count_max <= pruning_rounds_count_max, "a local run allows no more rounds than a mesh")
        relation(
            sealed_payload_bytes_max + sealed_overhead_bytes == datagram_bytes_max,
            "the largest sealed datagram is exactly the largest datagram")
        relation(
            sealed_payload_bytes_max >= datagram_bytes_max - 256,
            "a sealed datagram carries at least what a chunk of a signed message does (256 bytes of envelope each)")
        relation(sealed_pair_keys_count_max >= members_count_max, "every member's pair keys fit the cache")
        relation(
            sealed_overhead_bytes <= bulk_datagram_overhead_bytes_max && bulk_message_bytes_max <= sealed_payload_bytes_max,
            "a bulk message fits one sealed datagram")
        relation(privacy_releases_count_max <= 1 << 53, "release counts are exact in a Double")
        relation(privacy_steps_count_max <= 1 << 53, "step counts are exact in a Double")
        relation(
            bulk_message_bytes_max <= datagram_bytes_max - bulk_datagram_overhead_bytes_max,
            "a bulk message sealed into one datagram does not fragment")
        relation(39 + bulk_piece_bytes <= bulk_message_bytes_max, "a piece message fits one bulk message")
        relation(
            55 + 32 * bulk_manifest_part_hashes_max <= bulk_message_bytes_max, "a full manifest part fits one bulk message")
        relation(bulk_segment_pieces >= 1 && bulk_segment_pieces <= 64, "a piece request's bitmap is one u64")
        relation(bulk_piece_bytes >= 1 && bulk_piece_bytes <= Int(UInt16.max), "a piece's length is a u16")
        relation(
            bulk_segments_count_max * bulk_segment_bytes >= bulk_blob_bytes_max, "the largest blob fits its segments")
        relation(bulk_blob_bytes_max >= 32 * 1024 * 1024, "a full f32 update of the default model (26 MB) is one blob")
        relation(
            bulk_blob_bytes_max / bulk_piece_bytes <= Int(UInt32.max) && bulk_segments_count_max <= Int(UInt32.max),
            "piece and segment indices are u32")
        relation(bulk_held_bytes_max >= 2 * bulk_blob_bytes_max, "a node holds its own largest blob and fetches another")
        relation(bulk_fetches_count_max <= bulk_blobs_held_max, "every fetch can end in a held blob")
        relation(model_update_announcements_per_round_max >= 2, "a restarted node's new update is taken")
        relation(bulk_sources_count_max <= members_count_max, "sources are members")
        relation(
            bulk_fetch_window_segments_default >= 1 && bulk_fetch_window_segments_default <= bulk_fetch_window_segments_max
                && bulk_fetch_window_segments_max <= bulk_fetch_segments_in_flight_max
                && bulk_fetch_segments_in_flight_max <= bulk_outstanding_requests_max,
            "one fetch's window fits its segments in flight, and those the node's outstanding requests")
        relation(
            bulk_serve_queue_per_requester_count_max >= 2 * bulk_fetch_window_segments_max
                && bulk_serve_queue_per_requester_count_max <= bulk_serve_queue_count_max / 4,
            "a server queues two whole windows of one requester, and at least four requesters")
        relation(
            bulk_serve_burst_bytes_default >= bulk_message_bytes_max && bulk_serve_burst_bytes_default <= bulk_serve_burst_bytes_max
                && bulk_serve_rate_bytes_per_s_default <= bulk_serve_rate_bytes_per_s_max,
            "the serve burst admits the largest message (else nothing is ever served)")
        relation(
            bulk_serve_rate_bytes_per_s_max <= Int.max / 1000 && bulk_serve_burst_bytes_max <= Int.max / 1000,
            "the serve bucket counts bytes in thousandths")
        relation(
            bulk_request_idle_timeout_ms_default >= 1 && bulk_switch_after_timeouts_default >= 1
                && bulk_dont_have_retry_ms_default >= 1 && bulk_want_deadline_ms_default > bulk_request_idle_timeout_ms_default
                && bulk_reorder_grace_ms_default <= bulk_request_idle_timeout_ms_default,
            "bulk timings are positive and a want outlives a repair")
        return violated
    }
}
