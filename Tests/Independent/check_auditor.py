#!/usr/bin/env python3
"""Agreement tests: the independent auditor (auditor.py, written from the docs only)
against `prunemesh audit`.

    python3 check_auditor.py PRUNEMESH_BINARY SCRATCH_DIR

1. Runs four small real meshes with `prunemesh demo` (one at a time):
   A  federated with int8 updates (`federation.encoding: int8`), 4 genesis nodes (f = 1:
      the trimmed mean trims), a late joiner (admit), a small model;
   B  DP-SGD training (training_privacy) with release noise off (z = 0), federated with f32
      updates, 4 nodes, two phase-two model rounds: its model decisions carry every
      update's DP-SGD steps; boundary auto:0.5;
   C  DP-SGD training with release noise on, every node on its own model (--local-only),
      4 nodes, boundary auto2:1;
   D  neither DP-SGD nor federation (--local-only, 3 nodes, keep:0.5).
2. Audits every node's log with both auditors and requires the same verdict, entry count,
   head, per-entry details and per-node privacy rows (ε, and training_steps /
   record_epsilon with DP-SGD), and the demo's own ε figures.
3. Tampers with copies of the logs and genesis — raw file damage (flipped payload byte,
   truncated last record, record removed from the middle, flipped certificate signature,
   damaged length, zero tail), a genesis with a changed field, and forged but well-framed
   entries and decisions (re-chained, and re-signed with the demo's own node keys where a
   rule beyond the signatures is to be exercised: among them the training steps of model
   updates — missing, unexpected, decreasing, too few, over ε_max — and their per-kind
   readings), genesis encodings, and 60 + 40 seeded random mutations — and
   requires both auditors to refuse each at the same entry index with the same code (and
   byte offset for file damage).

A difference where the binary departs from its documentation (the auditor follows the docs)
is checked to be exactly that difference and printed as a BINARY BUG, not counted as
agreement (with binaries before 168421c: `audit --json` omits the privacy_spent rows of keys
whose DP-SGD steps come from model updates alone).

Exit 0 when everything agrees, 1 on any disagreement (each one printed), 2 when a demo
cannot be run. Deterministic: the demos run to completion; nothing waits on a timer.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, HERE)
import auditor as A  # noqa: E402  (codecs and hashes for forging; the binary is the oracle)

SMALL_MODEL = "28x28x1:conv3x8,relu,pool2,conv3x16,relu,pool2,dense32,relu,dense10"

_sodium = A._sodium
_sodium.crypto_sign_ed25519_seed_keypair.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
_sodium.crypto_sign_ed25519_detached.argtypes = [
    ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]

FAILURES: list[str] = []
WARNINGS: list[str] = []
# A difference where the binary departs from its documentation and the auditor follows the
# documentation: checked to be exactly that difference, reported on its own, not counted as
# agreement and not hidden.
BINARY_BUGS: list[str] = []
COUNTS = {"agree": 0, "cases": 0}


def fail(msg: str):
    FAILURES.append(msg)
    print(f"  DISAGREE: {msg}")


# ---------------------------------------------------------------------------------------
# Running the two auditors
# ---------------------------------------------------------------------------------------

def run_real(binary, log, gen):
    p = subprocess.run([binary, "audit", log, "--mesh", gen, "--json"], capture_output=True, text=True, timeout=120)
    return p.returncode, _json(p)


def run_mine(log, gen):
    p = subprocess.run([sys.executable, os.path.join(HERE, "auditor.py"), log, "--mesh", gen, "--json"],
                       capture_output=True, text=True, timeout=120)
    return p.returncode, _json(p)


def _json(p):
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"unparsable_stdout": p.stdout[-400:], "stderr": p.stderr[-400:]}


def same_float(a, b):
    """Record-level ε: the Privacy catalog ("The record-level accountant (DP-SGD), step by
    step") now fixes every binary64 operation, so the two must agree to the bit."""
    return a == b


def compare_privacy(label, r, m):
    """privacy_spent rows: keys, releases, ε and steps exactly; record-level ε within 1e-9."""
    bad = []
    rp, mp = r.get("privacy_spent", []), m.get("privacy_spent", [])
    if [x.get("key") for x in rp] != [x.get("key") for x in mp]:
        bad.append(f"privacy_spent keys differ: {[x.get('key') for x in rp]} vs {[x.get('key') for x in mp]}")
    for x, y in zip(rp, mp):
        if set(x) != set(y):
            bad.append(f"privacy_spent fields differ: {sorted(x)} vs {sorted(y)}")
        for k in set(x) | set(y):
            if k == "record_epsilon":
                if not same_float(x.get(k), y.get(k)):
                    bad.append(f"record_epsilon of {x['key'][:16]}: {x.get(k)!r} vs {y.get(k)!r}")
            elif x.get(k) != y.get(k):
                bad.append(f"privacy_spent.{k} of {x['key'][:16]}: {x.get(k)!r} vs {y.get(k)!r}")
    return bad


def compare_valid(binary, name, log, gen, demo_row=None):
    """Both auditors accept the log and report the same figures."""
    COUNTS["cases"] += 1
    (rc_r, r), (rc_m, m) = run_real(binary, log, gen), run_mine(log, gen)
    label = f"{name}: {os.path.relpath(log, os.path.dirname(os.path.dirname(log)))}"
    bad = []
    if rc_r != 0 or not r.get("ok"):
        bad.append(f"prunemesh audit refused it (rc {rc_r}: {r.get('first_error')})")
    if rc_m != 0 or not m.get("ok"):
        bad.append(f"auditor.py refused it (rc {rc_m}: {m.get('first_error') or m})")
    for k in ("entries", "verified", "head", "mesh_id", "epsilon_budget", "record_epsilon_max"):
        if r.get(k) != m.get(k):
            bad.append(f"{k}: prunemesh {r.get(k)!r} vs auditor.py {m.get(k)!r}")
    mp = m.get("privacy_spent", [])
    bad += compare_privacy(label, r, m)
    rd, md = r.get("entry_details", []), m.get("entry_details", [])
    if len(rd) != len(md):
        bad.append(f"entry_details: {len(rd)} vs {len(md)} rows")
    for x, y in zip(rd, md):
        if x != y:
            bad.append(f"entry_details[{x.get('index')}]: prunemesh {x} vs auditor.py {y}")
            break
    if demo_row is not None:
        eps, steps, reps = demo_row[:3]
        own = [x for x in mp if x["key"] == demo_row[3]] if len(demo_row) > 3 else []
        if own:
            row = own[0]
            made = demo_row[4] if len(demo_row) > 4 else None
            # The node's own account covers every release it made; the log's row is the count of
            # the latest release it holds (a round decided by a quorum that came first leaves a
            # late release out). When the counts differ, the node's ε must be exactly that of its
            # own count, and that count never below the log's (the budget failing open).
            if eps is not None and made is not None and made != row.get("releases"):
                g = A.Genesis(gen)
                want = A.gaussian_epsilon(A.z_eff(g.noise_multiplier, g.clip_bound, g.scale_log2, g.model.units),
                                          made, g.delta)
                if made < row.get("releases", 0) or eps != want:
                    bad.append(f"the demo reports ε {eps} over {made} releases (auditor.py: {want}), and the log "
                               f"{row['epsilon']} over {row.get('releases')}")
            elif eps is not None and row["epsilon"] != eps:
                bad.append(f"the demo reports ε {eps}, auditor.py {row['epsilon']}")
            if steps is not None and row.get("training_steps") != steps:
                bad.append(f"the demo reports training_steps {steps}, auditor.py {row.get('training_steps')}")
            if reps is not None and not same_float(row.get("record_epsilon"), reps):
                bad.append(f"the demo reports record_epsilon {reps}, auditor.py {row.get('record_epsilon')}")
    if bad:
        for b in bad:
            fail(f"{label}: {b}")
    else:
        COUNTS["agree"] += 1
        extra = ""
        if mp:
            extra = f", ε {mp[0]['epsilon']}"
            if "record_epsilon" in mp[0]:
                extra += f", steps {mp[0]['training_steps']}, record ε {mp[0]['record_epsilon']}"
        print(f"  ok   {label}: both accept, {m.get('entries')} entries, head {str(m.get('head'))[:16]}…{extra}")


def compare_refused(binary, name, log, gen, expect_code, expect_index="any"):
    """Both auditors refuse the log at the same entry index, with the same code."""
    COUNTS["cases"] += 1
    (rc_r, r), (rc_m, m) = run_real(binary, log, gen), run_mine(log, gen)
    fr, fm = r.get("first_error") or {}, m.get("first_error") or {}
    bad = []
    if rc_r != 1 or r.get("ok") is not False:
        bad.append(f"prunemesh audit did not refuse it (rc {rc_r}, ok {r.get('ok')})")
    if rc_m != 1 or m.get("ok") is not False:
        bad.append(f"auditor.py did not refuse it (rc {rc_m}, ok {m.get('ok')}, {m.get('stderr', '')})")
    for k in ("index", "code", "offset"):
        if fr.get(k) != fm.get(k):
            bad.append(f"first_error.{k}: prunemesh {fr.get(k)!r} vs auditor.py {fm.get(k)!r}")
    for k in ("entries", "verified", "head", "mesh_id", "entry_details"):
        if r.get(k) != m.get(k):
            bad.append(f"{k}: prunemesh {str(r.get(k))[:300]} vs auditor.py {str(m.get(k))[:300]}")
    bad += compare_privacy(name, r, m)
    where = f"index {fr.get('index')}" if "index" in fr else "the file header"
    if "offset" in fr:
        where += f", offset {fr['offset']}"
    if bad:
        for b in bad:
            fail(f"{name}: {b}  [prunemesh: {fr.get('reason')!r}; auditor.py: {fm.get('reason')!r}]")
        return
    COUNTS["agree"] += 1
    note = ""
    if fr.get("code") != expect_code or (expect_index != "any" and fr.get("index") != expect_index):
        note = f"   (NOTE: the case aimed at {expect_code} at index {expect_index})"
        WARNINGS.append(f"{name}: both say {fr.get('code')} at {where}; the case aimed at {expect_code} at {expect_index}")
    print(f"  ok   {name}: both refuse at {where}: {fr.get('code')}{note}")


# ---------------------------------------------------------------------------------------
# Demos
# ---------------------------------------------------------------------------------------

def run_demo(binary, directory, extra):
    shutil.rmtree(directory, ignore_errors=True)
    cmd = [binary, "demo", "--dir", directory, "--nodes", "3", "--rounds", "2", "--epochs-per-round", "1",
           "--finetune-epochs", "1", "--train-limit", "1000", "--test-limit", "300", "--model", SMALL_MODEL,
           "--timeout", "150", "--json"] + extra
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=200)
    if p.returncode != 0:
        print(f"demo failed (rc {p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
        sys.exit(2)
    rep = json.loads(p.stdout)
    print(f"demo {os.path.basename(directory)}: {len(rep['heights'])} nodes, heights {rep['heights']}, "
          f"decisions {rep.get('decisions')}, {time.time() - t0:.1f} s")
    return rep


def node_dirs(directory):
    return sorted(os.path.join(directory, d) for d in os.listdir(directory) if d.startswith("node-"))


# ---------------------------------------------------------------------------------------
# Forging: the log's codecs (the Ledger and Consensus catalogs) and the demo's own keys
# ---------------------------------------------------------------------------------------

class Keyring:
    def __init__(self):
        self.sk: dict[bytes, bytes] = {}

    def load(self, path):
        lines = open(path).read().split("\n")
        seed, pk = bytes.fromhex(lines[1]), bytes.fromhex(lines[2])
        pkb, skb = ctypes.create_string_buffer(32), ctypes.create_string_buffer(64)
        _sodium.crypto_sign_ed25519_seed_keypair(pkb, skb, seed)
        assert pkb.raw == pk, path
        self.sk[pk] = skb.raw

    def sign(self, key, tag, msg):
        m = bytes([len(tag)]) + tag + msg
        sig = ctypes.create_string_buffer(64)
        _sodium.crypto_sign_ed25519_detached(sig, None, m, len(m), self.sk[key])
        return sig.raw


def parse_log(data):
    mesh_id = data[16:48]
    o, entries = 80, []
    while o < len(data):
        L, = struct.unpack_from("<I", data, o + 4)
        body = data[o + 80:o + 80 + L]
        r = A.Reader(body)
        height, prev, dlen = r.u64(), r.take(32), r.u32()
        dec = r.take(dlen)
        cert = A.decode_certificate(r)
        entries.append(dict(height=height, prev=prev, dec=dec, cert=cert, offset=o))
        o += 80 + L
    return mesh_id, entries


def encode_cert(c):
    out = struct.pack("<QI", c["height"], c["round"]) + c["digest"] + struct.pack("<H", len(c["sigs"]))
    for idx, sig in c["sigs"]:
        out += struct.pack("<H", idx) + sig
    return out


def encode_body(height, prev, dec, cert_bytes):
    return struct.pack("<Q", height) + prev + struct.pack("<I", len(dec)) + dec + cert_bytes


def entry_hash(body):
    if len(body) < 44:  # a damaged body: what follows cannot chain to it anyway
        return bytes(32)
    dlen, = struct.unpack_from("<I", body, 40)
    return A.tagged_hash(A.TAG_LOG_ENTRY, body[:44 + dlen])


def frame(mesh_id, bodies):
    h = b"PMDECLOG" + struct.pack("<II", 1, 0) + mesh_id
    h += A.tagged_hash(A.TAG_LOG_RECORD, h)
    out, parent = bytearray(h), h[48:80]
    for i, b in enumerate(bodies):
        rec = b"PMLR" + struct.pack("<IQ", len(b), i) + parent
        ck = A.tagged_hash(A.TAG_LOG_RECORD, rec + b)
        out += rec + ck + b
        parent = ck
    return bytes(out)


def reframe(mesh_id, entries):
    """Entries (possibly edited) → file bytes, previous hashes recomputed."""
    bodies, prev = [], mesh_id
    for e in entries:
        body = e.get("raw") or encode_body(e["height"], prev, e["dec"], encode_cert(e["cert"]))
        bodies.append(body)
        prev = entry_hash(body)
    return frame(mesh_id, bodies)


def zigzag(v):
    u = ((v << 1) ^ (v >> 31)) & 0xFFFFFFFF
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        if u:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_release(rel):
    out = struct.pack("<QIddBI", rel["round"], rel["count"], rel["z"], rel["c"], rel["s"], rel["n"])
    out += b"".join(zigzag(v) for v in rel["values"])
    if rel["steps"] is not None:
        out += b"\x01" + struct.pack("<Q", rel["steps"])
    return out


def encode_vote(v):
    return v["voter"] + v["signed"] + v["sig"]


def encode_decision(d):
    k = d["kind"]
    if k == 1:
        out = struct.pack("<BQH", 1, d["round"], len(d["contributions"]))
        for c in d["contributions"]:
            out += c["key"] + struct.pack("<QI", c["round"], len(c["payload"])) + c["payload"] + c["sig"]
        out += struct.pack("<I", len(d["aggregate"])) + struct.pack(f"<{len(d['aggregate'])}i", *d["aggregate"])
        out += bytes([len(d["mask"])])
        for layer in d["mask"]:
            out += struct.pack(f"<H{len(layer)}H", len(layer), *layer)
        return out
    if k == 2:
        return bytes([2]) + d["member"] + d["invitee"] + d["inviter"] + struct.pack("<Q", d["valid_until"]) + d["invite_sig"]
    if k == 3:
        return bytes([3]) + d["member"] + bytes([d["reason"]])
    if k == 4:
        return bytes([4]) + struct.pack("<Q", d["round"])
    if k == 5:
        return bytes([5]) + encode_vote(d["votes"][0]) + encode_vote(d["votes"][1])
    if k == 6:
        out = bytes([6]) + struct.pack("<Q", d["round"]) + d["base"] + struct.pack("<H", len(d["updates"]))
        for u in d["updates"]:
            out += u["signed"] + u["sig"]
        return out
    raise ValueError(k)


def resign_decision(d, mesh_id, keys: Keyring):
    """Every signature inside the decision, made again (for edited contents or another mesh id)."""
    k = d["kind"]
    if k == 1:
        for c in d["contributions"]:
            c["sig"] = keys.sign(c["key"], A.TAG_CONTRIBUTION, mesh_id + struct.pack("<Q", c["round"]) + c["payload"])
    elif k == 2:
        d["invite_signed"] = d["invitee"] + d["inviter"] + struct.pack("<Q", d["valid_until"])
        d["invite_sig"] = keys.sign(d["inviter"], A.TAG_INVITE, mesh_id + d["invite_signed"])
    elif k == 5:
        for v in d["votes"]:
            v["sig"] = keys.sign(v["voter"], A.TAG_VOTE, mesh_id + v["signed"])
    elif k == 6:
        for u in d["updates"]:
            u["sig"] = keys.sign(u["key"], A.TAG_MODEL_UPDATE, mesh_id + u["signed"])
    return d


def rebuild(mesh_id, decisions, genesis_keys, keys: Keyring, signers=None):
    """A whole log from decision bytes: heights, links and certificates signed by every
    validator in force (or the first `signers` of them)."""
    vals = sorted(genesis_keys)
    bodies, prev = [], mesh_id
    for i, dec in enumerate(decisions):
        h = i + 1
        digest = A.tagged_hash(A.TAG_DECISION, dec)
        idxs = [j for j in (range(len(vals)) if signers is None else range(min(signers, len(vals))))
                if vals[j] in keys.sk]
        sigs = [(j, keys.sign(vals[j], A.TAG_VOTE, mesh_id + struct.pack("<QIBB", h, 0, 2, 1) + digest)) for j in idxs]
        body = encode_body(h, prev, dec, encode_cert(dict(height=h, round=0, digest=digest, sigs=sigs)))
        bodies.append(body)
        prev = entry_hash(body)
        if dec[0] == 2:
            vals = sorted(vals + [dec[1:33]])
        elif dec[0] == 3:
            vals = [v for v in vals if v != dec[1:33]]
    return frame(mesh_id, bodies)


def make_vote(keys, voter, mesh_id, height, rnd, typ, digest):
    signed = struct.pack("<QIBB", height, rnd, typ, 1 if digest else 0) + (digest or b"")
    return dict(voter=voter, signed=signed, sig=keys.sign(voter, A.TAG_VOTE, mesh_id + signed),
                digest=digest)


def evidence_decision(keys, voter, mesh_id, height):
    a = make_vote(keys, voter, mesh_id, height, 0, 1, None)            # nil prevote
    b = make_vote(keys, voter, mesh_id, height, 0, 1, b"\x42" * 32)    # prevote for a value
    return bytes([5]) + encode_vote(a) + encode_vote(b)


# ---------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------

class Mesh:
    def __init__(self, directory, scratch):
        self.dir = directory
        self.gen = os.path.join(directory, "genesis.yaml")
        self.log_path = os.path.join(directory, "node-0", "decisions.log")
        self.data = open(self.log_path, "rb").read()
        self.mesh_id, self.entries = parse_log(self.data)
        self.g = A.Genesis(self.gen)
        self.gkeys = [k for k, _, _ in self.g.members]
        self.keys = Keyring()
        for nd in node_dirs(directory):
            self.keys.load(os.path.join(nd, "node.key"))
        self.scratch = scratch
        os.makedirs(scratch, exist_ok=True)

    def decs(self):
        return [e["dec"] for e in self.entries]

    def idx(self, kind, nth=0):
        found = [i for i, e in enumerate(self.entries) if e["dec"][0] == kind]
        return found[nth] if nth < len(found) else None

    def write(self, name, data, text=False):
        path = os.path.join(self.scratch, name)
        with open(path, "w" if text else "wb") as fh:
            fh.write(data)
        return path

    def genesis_variant(self, name, old, new):
        text = open(self.gen).read()
        assert old in text, (old, self.gen)
        path = self.write(name + ".yaml", text.replace(old, new, 1), text=True)
        return path, A.Genesis(path).mesh_id

    def entries_copy(self):
        return [dict(e, cert=dict(e["cert"], sigs=list(e["cert"]["sigs"]))) for e in self.entries]


def check(binary, m: Mesh, name, data, expect, index="any", gen=None):
    compare_refused(binary, name, m.write(name + ".log", data), gen or m.gen, expect, index)


def file_cases(binary, m: Mesh, tag):
    d = m.data
    print(f"-- {tag}: file damage (raw bytes)")
    i = m.idx(1, 1) if m.idx(1, 1) is not None else 1
    o = m.entries[i]["offset"]
    L, = struct.unpack_from("<I", d, o + 4)
    b = bytearray(d); b[o + 80 + L // 2] ^= 0x01
    check(binary, m, f"{tag}-payload-byte-flipped", bytes(b), "corrupt_record", i)
    last = len(m.entries) - 1
    check(binary, m, f"{tag}-last-record-truncated", d[:-7], "torn_tail", last)
    nxt = m.entries[i + 1]["offset"] if i + 1 < len(m.entries) else len(d)
    check(binary, m, f"{tag}-record-removed-from-middle", d[:o] + d[nxt:], "corrupt_record", i)
    b = bytearray(d); b[o + 80 + L - 1] ^= 0x80  # last byte of the certificate's last signature
    check(binary, m, f"{tag}-certificate-signature-byte-flipped-raw", bytes(b), "corrupt_record", i)
    lo = m.entries[last]["offset"]
    Ll, = struct.unpack_from("<I", d, lo + 4)
    b = bytearray(d); struct.pack_into("<I", b, lo + 4, Ll + 64)
    check(binary, m, f"{tag}-last-length-field-damaged", bytes(b), "corrupt_record", last)
    check(binary, m, f"{tag}-never-written-zero-tail", d + bytes(96), "torn_tail", last + 1)
    check(binary, m, f"{tag}-record-duplicated-at-end", d + d[lo:], "corrupt_record", last + 1)
    b = bytearray(d); b[8] = 2
    check(binary, m, f"{tag}-header-version", bytes(b), "file", None)


def genesis_cases(binary, m: Mesh, tag, old, new, expect="wrong_mesh"):
    print(f"-- {tag}: a genesis with a changed field")
    text = open(m.gen).read()
    assert old in text, (old, m.gen)
    path = m.write(f"{tag}-genesis-changed.yaml", text.replace(old, new, 1), text=True)
    label = f"{tag}-genesis-changed ({(new.strip().splitlines() or ['no ' + old.split(':')[0]])[0]})"
    if expect is None:  # another spelling of the same value: the same mesh id
        compare_valid(binary, label, m.log_path, path)
    else:
        compare_refused(binary, label, m.log_path, path, expect, None)


def entry_cases(binary, m: Mesh, tag):
    print(f"-- {tag}: well-framed records, damaged entries and certificates")
    i = m.idx(1, 1) if m.idx(1, 1) is not None else 1

    es = m.entries_copy(); c = es[i]["cert"]; j, s = c["sigs"][0]
    c["sigs"][0] = (j, s[:10] + bytes([s[10] ^ 1]) + s[11:])
    check(binary, m, f"{tag}-certificate-signature-byte-flipped", reframe(m.mesh_id, es), "bad_vote_signature", i)

    # a byte of the first contribution's signature: the decision still decodes, its digest changes
    es = m.entries_copy(); dec = bytearray(es[i]["dec"])
    plen, = struct.unpack_from("<I", dec, 1 + 8 + 2 + 32 + 8)
    dec[1 + 8 + 2 + 32 + 8 + 4 + plen + 5] ^= 1; es[i]["dec"] = bytes(dec)
    check(binary, m, f"{tag}-decision-byte-flipped-reframed", reframe(m.mesh_id, es), "certificate_digest", i)

    # the last two mask indices swapped: lists have one canonical order, decoders refuse others
    es = m.entries_copy(); dec = bytearray(es[i]["dec"])
    dec[-4:] = dec[-2:] + dec[-4:-2]; es[i]["dec"] = bytes(dec)
    check(binary, m, f"{tag}-mask-indices-out-of-order", reframe(m.mesh_id, es), "malformed", i)

    es = m.entries_copy(); es[i]["height"] += 1
    check(binary, m, f"{tag}-entry-height", reframe(m.mesh_id, es), "height_mismatch", i)

    es = m.entries_copy(); es[i]["prev"] = bytes(32)
    check(binary, m, f"{tag}-previous-hash", _relink_except(m, es, i), "broken_link", i)

    es = m.entries_copy()
    body = encode_body(es[i]["height"], _prev_of(m, es, i), es[i]["dec"], encode_cert(es[i]["cert"])) + b"\x00"
    es[i]["raw"] = body
    check(binary, m, f"{tag}-trailing-byte", reframe(m.mesh_id, es), "malformed", i)

    es = m.entries_copy(); es[i]["cert"]["height"] += 1
    check(binary, m, f"{tag}-certificate-height", reframe(m.mesh_id, es), "certificate_height", i)

    es = m.entries_copy(); sg = es[i]["cert"]["sigs"]; es[i]["cert"]["sigs"] = [sg[0], sg[0]] + sg[1:]
    # the Audit article says duplicate_signer; the certificate format (strictly ascending,
    # decoders refuse any other order) and the binary say malformed
    check(binary, m, f"{tag}-duplicate-signer", reframe(m.mesh_id, es), "malformed", i)

    es = m.entries_copy(); sg = es[i]["cert"]["sigs"]; es[i]["cert"]["sigs"] = sg + [(300, sg[0][1])]
    check(binary, m, f"{tag}-signer-outside-set", reframe(m.mesh_id, es), "signer_outside_set", i)

    es = m.entries_copy(); q = A.MeshState.quorum_of(len(m.gkeys))
    es[i]["cert"]["sigs"] = es[i]["cert"]["sigs"][:q - 1]
    check(binary, m, f"{tag}-quorum-short", reframe(m.mesh_id, es), "quorum_short", i)


def _prev_of(m, es, i):
    prev = m.mesh_id
    for e in es[:i]:
        prev = entry_hash(encode_body(e["height"], prev, e["dec"], encode_cert(e["cert"])))
    return prev


def _relink_except(m, es, i):
    bodies, prev = [], m.mesh_id
    for k, e in enumerate(es):
        body = encode_body(e["height"], e["prev"] if k == i else prev, e["dec"], encode_cert(e["cert"]))
        bodies.append(body)
        prev = entry_hash(body)
    return frame(m.mesh_id, bodies)


def decision_cases(binary, m: Mesh, tag):
    """Edited decisions in logs rebuilt and re-signed with the demo's node keys."""
    print(f"-- {tag}: forged decisions (re-signed with the demo's own node keys)")
    mid, keys = m.mesh_id, m.keys
    base = m.decs()
    compare_valid(binary, f"{tag}-rebuilt-unchanged", m.write(f"{tag}-rebuilt.log", rebuild(mid, base, m.gkeys, keys)), m.gen)

    def variant(name, i, edit, expect, decisions=None, resign=True, gen=None, mesh=None):
        ds = list(decisions or base)
        d = A.decode_decision(ds[i])
        edit(d)
        if resign:
            resign_decision(d, mesh or mid, keys)
        ds[i] = encode_decision(d)
        check(binary, m, f"{tag}-{name}", rebuild(mesh or mid, ds, m.gkeys, keys), expect, i, gen)

    i2 = m.idx(1, 1)
    i1 = m.idx(1, 0)
    if i2 is not None:
        def agg(d): d["aggregate"][0] += 1
        variant("aggregate-changed", i2, agg, "wrong_aggregate")

        ds = list(base); d = A.decode_decision(ds[i2]); d["aggregate"][0] += 1; ds[i2] = encode_decision(d)
        check(binary, m, f"{tag}-bad-aggregate-then-torn-tail", rebuild(mid, ds, m.gkeys, keys) + bytes(64),
              "wrong_aggregate", i2)

        def mask_drop(d):
            layer = max(range(len(d["mask"])), key=lambda k: len(d["mask"][k]))
            d["mask"][layer] = d["mask"][layer][:-1]
        variant("mask-changed", i2, mask_drop, "wrong_mask")

        prev_mask = A.decode_decision(base[i1])["mask"]

        def grow(d):
            for k, layer in enumerate(d["mask"]):
                extra = [u for u in range(m.g.model.widths[k]) if u not in prev_mask[k]]
                if extra:
                    d["mask"][k] = sorted(layer + extra[:1])
                    return
        variant("mask-grows", i2, grow, "mask_grows")

        def invalid(d): d["mask"][0] = d["mask"][0] + [m.g.model.widths[0] + 5]
        variant("mask-invalid", i2, invalid, "mask_invalid")

        def rnd(d): d["round"] = 3
        variant("mask-round-skipped", i2, rnd, "mask_round")

        # ranges that are decoding rules (AgreementValues, "What decoding refuses")
        def agg_empty(d): d["aggregate"] = []
        variant("aggregate-empty", i2, agg_empty, "malformed")

        def layers33(d): d["mask"] = [[0]] * 33
        variant("mask-33-layers", i2, layers33, "malformed")

        def kept8193(d): d["mask"][0] = list(range(8193))
        variant("mask-kept-8193", i2, kept8193, "malformed")

        def few(d): d["contributions"] = d["contributions"][:A.MeshState.quorum_of(len(m.gkeys)) - 1]
        variant("too-few-contributions", i2, few, "too_few_contributions")

        def badsig(d):
            c = d["contributions"][-1]
            c["sig"] = bytes([c["sig"][0] ^ 1]) + c["sig"][1:]
        variant("contribution-signature", i2, badsig, "bad_contribution_signature", resign=False)

        def edit_release(fn):
            def e(d):
                c = d["contributions"][0]
                rel = A.decode_release(c["payload"])
                fn(rel, c)
                c["payload"] = encode_release(rel)
            return e

        # A count is "not increasing" only against a release of the same contributor earlier in
        # the log: a node admitted after the first mask, or one whose first release missed it,
        # may rightly send count 1 here. Repeat the latest earlier count of a contributor that has
        # one (skip the variant if none has).
        earlier = {}
        for k in range(i2):
            for c in A.decode_decision(base[k]).get("contributions") or []:
                earlier[c["key"]] = A.decode_release(c["payload"])["count"]
        d2 = A.decode_decision(base[i2])
        repeat = next((j for j, c in enumerate(d2["contributions"]) if c["key"] in earlier), None)
        if repeat is not None:
            def repeat_count(d):
                c = d["contributions"][repeat]
                rel = A.decode_release(c["payload"])
                rel["count"] = earlier[c["key"]]
                c["payload"] = encode_release(rel)
            variant("release-count-not-increasing", i2, repeat_count, "release_count")
        else:
            print(f"   {tag}-release-count-not-increasing: skipped, no contributor of mask 2 released before it")
        variant("release-z-not-pinned", i2, edit_release(lambda r, c: r.update(z=r["z"] * 2 if r["z"] else 1.0)),
                "release_not_pinned")

        def chg_round(d):
            d["contributions"][0]["round"] = 7
        variant("contribution-round", i2, chg_round, "contribution_height")

        def garbage(d):
            c = d["contributions"][0]
            c["payload"] = c["payload"] + b"\x07\x07"
        variant("release-payload-trailing-bytes", i2, garbage, "release_payload")

        if m.g.dp_sgd:
            def no_steps(r, c): r["steps"] = None
            variant("training-steps-missing", i2, edit_release(no_steps),
                    "release_payload" if m.g.noise_multiplier == 0 else "training_steps_missing")
            variant("training-steps-too-few", i2,
                    edit_release(lambda r, c: r.update(steps=r["count"] * m.g.steps_per_round - 1)),
                    "training_steps_too_few")
            # a contributor of mask 2 that released in mask 1 too (a quorum decides, so which
            # contributors each holds is a matter of timing)
            prev = {c["key"]: A.decode_release(c["payload"])["steps"]
                    for c in A.decode_decision(base[i1])["contributions"]}
            again = next((j for j, c in enumerate(d2["contributions"]) if c["key"] in prev), None)
            if again is not None:
                def decreasing(d):
                    c = d["contributions"][again]
                    rel = A.decode_release(c["payload"])
                    rel["steps"] = prev[c["key"]] - 1
                    c["payload"] = encode_release(rel)
                variant("training-steps-decreasing", i2, decreasing, "training_steps_decreasing")
            else:
                print(f"   {tag}-training-steps-decreasing: skipped, no contributor of mask 2 released in mask 1")
        else:
            variant("training-steps-unexpected", i2, edit_release(lambda r, c: r.update(steps=10 ** 6)),
                    "training_steps_unexpected")

        # the privacy budget: a genesis whose ε budget lies between one and two releases
        if m.g.noise_multiplier > 0:
            ze = A.z_eff(m.g.noise_multiplier, m.g.clip_bound, m.g.scale_log2, m.g.model.units)
            e1, e2 = A.gaussian_epsilon(ze, 1, m.g.delta), A.gaussian_epsilon(ze, 2, m.g.delta)
            budget = round((e1 + e2) / 2, 6)
            old = next(l for l in open(m.gen).read().split("\n") if l.strip().startswith("epsilon_budget:"))
            gpath, gid = m.genesis_variant(f"{tag}-budget", old, old.split(":")[0] + f": {budget}")
            ds = [encode_decision(resign_decision(A.decode_decision(x), gid, keys)) for x in base]
            check(binary, m, f"{tag}-privacy-budget-exceeded (ε budget {budget})", rebuild(gid, ds, m.gkeys, keys),
                  "privacy_budget_exceeded", i2, gpath)
        if m.g.dp_sgd:
            tp = m.g.training_privacy
            s1 = A.decode_release(A.decode_decision(base[i1])["contributions"][0]["payload"])["steps"]
            s2 = A.decode_release(A.decode_decision(base[i2])["contributions"][0]["payload"])["steps"]
            r1 = A.sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], s1, tp["delta"])
            r2 = A.sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], s2, tp["delta"])
            emax = round((r1 + r2) / 2, 6)
            old = next(l for l in open(m.gen).read().split("\n") if l.strip().startswith("epsilon_max:"))
            gpath, gid = m.genesis_variant(f"{tag}-record-budget", old, old.split(":")[0] + f": {emax}")
            ds = [encode_decision(resign_decision(A.decode_decision(x), gid, keys)) for x in base]
            # the first entry stating more steps than ε_max allows: the second mask decision,
            # or a model decision before it (their order in the log varies run to run)
            def stated(dec):
                d = A.decode_decision(dec)
                if d["kind"] == 1:
                    return [A.decode_release(c["payload"])["steps"] for c in d["contributions"]]
                return [u["steps"] for u in d["updates"]] if d["kind"] == 6 else []
            first = next(i for i, x in enumerate(base) if any(
                A.sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], st, tp["delta"]) > emax for st in stated(x)))
            check(binary, m, f"{tag}-training-budget-exceeded (epsilon_max {emax})", rebuild(gid, ds, m.gkeys, keys),
                  "training_budget_exceeded", first, gpath)

    # freeze rules
    fz = m.idx(4)
    if fz is not None and i2 is not None:
        freeze1 = bytes([4]) + struct.pack("<Q", 1)
        ds = base[:i2] + [freeze1] + base[i2:]
        check(binary, m, f"{tag}-mask-after-freeze", rebuild(mid, ds, m.gkeys, keys), "after_freeze", i2 + 1)
        ds = base[:fz + 1] + [base[fz]] + base[fz + 1:]
        check(binary, m, f"{tag}-freeze-twice", rebuild(mid, ds, m.gkeys, keys), "freeze_twice", fz + 1)
        ds = [bytes([4]) + struct.pack("<Q", 0)] + base
        check(binary, m, f"{tag}-freeze-before-mask", rebuild(mid, ds, m.gkeys, keys), "freeze_before_mask", 0)
        ds = list(base); ds[fz] = freeze1
        check(binary, m, f"{tag}-freeze-names-old-round", rebuild(mid, ds, m.gkeys, keys), "freeze_round", fz)

    # model decisions
    md = m.idx(6, 1)
    if md is not None:
        ds = base[:md + 1] + [base[md]] + base[md + 1:]
        check(binary, m, f"{tag}-model-round-repeated", rebuild(mid, ds, m.gkeys, keys), "model_round", md + 1)

        def base_chg(d):
            u = d["updates"][-1]
            s = bytearray(u["signed"]); s[40] ^= 1; u["signed"] = bytes(s)
        variant("update-base", md, base_chg, "update_base")

        def upd_sig(d):
            u = d["updates"][0]
            u["sig"] = bytes([u["sig"][0] ^ 1]) + u["sig"][1:]
        variant("update-signature", md, upd_sig, "bad_update_signature", resign=False)

        def few_upd(d): d["updates"] = d["updates"][:A.MeshState.quorum_of(len(m.gkeys)) - 1]
        variant("too-few-updates", md, few_upd, "too_few_updates")

        def upd_round(d):
            u = d["updates"][0]
            s = bytearray(u["signed"]); struct.pack_into("<Q", s, 32, 99); u["signed"] = bytes(s)
        variant("update-round", md, upd_round, "update_round")

    # membership: admit / remove / evidence
    last_h = len(base)
    member = m.gkeys[-1]
    ev = evidence_decision(keys, member, mid, 1)
    ok_ds = base + [ev, bytes([3]) + member + b"\x03"]
    compare_valid(binary, f"{tag}-evidence-then-removal-as-equivocated",
                  m.write(f"{tag}-evidence-ok.log", rebuild(mid, ok_ds, m.gkeys, keys)), m.gen)
    ds = base + [bytes([3]) + member + b"\x03"]
    check(binary, m, f"{tag}-remove-without-evidence", rebuild(mid, ds, m.gkeys, keys), "remove_without_evidence", last_h)
    # removals: a valid one, then the removed validator's update refused; the last validator
    n_models = len([e for e in m.entries if e["dec"][0] == 6])
    last_model = m.idx(6, n_models - 1) if n_models else None
    if last_model is not None:
        lm = A.decode_decision(base[last_model])
        victim = lm["updates"][0]["key"]
        removal = bytes([3]) + victim + b"\x02"
        compare_valid(binary, f"{tag}-removal-requested",
                      m.write(f"{tag}-removal-ok.log", rebuild(mid, base + [removal], m.gkeys, keys)), m.gen)
        nxt = A.decode_decision(base[last_model])
        nxt["round"] += 1
        for u in nxt["updates"]:
            sb = bytearray(u["signed"]); struct.pack_into("<Q", sb, 32, nxt["round"]); u["signed"] = bytes(sb)
        resign_decision(nxt, mid, keys)
        ds = base + [removal, encode_decision(nxt)]
        check(binary, m, f"{tag}-update-from-removed-validator", rebuild(mid, ds, m.gkeys, keys),
              "contributor_not_validator", len(ds) - 1)
    vals_now = sorted(m.gkeys)
    if m.idx(2) is not None:
        vals_now = sorted(vals_now + [A.decode_decision(base[m.idx(2)])["member"]])
    ds = base + [bytes([3]) + k + b"\x02" for k in vals_now[:-1]] + [bytes([3]) + vals_now[-1] + b"\x02"]
    check(binary, m, f"{tag}-remove-last-validator", rebuild(mid, ds, m.gkeys, keys), "remove_last_validator",
          len(ds) - 1)
    stranger = A.decode_decision(base[m.idx(2)])["member"] if m.idx(2) is not None else None
    outsider = bytes.fromhex("8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394")
    ds = base + [bytes([3]) + outsider + b"\x01"]
    check(binary, m, f"{tag}-remove-not-member", rebuild(mid, ds, m.gkeys, keys), "remove_not_member", last_h)
    ds = base + [evidence_decision(keys, member, mid, last_h + 5)]
    check(binary, m, f"{tag}-evidence-from-future", rebuild(mid, ds, m.gkeys, keys), "evidence_from_future", last_h)
    bad_ev = bytearray(ev); bad_ev[-1] ^= 1
    check(binary, m, f"{tag}-evidence-signature", rebuild(mid, base + [bytes(bad_ev)], m.gkeys, keys),
          "bad_evidence_signature", last_h)
    if i2 is not None:
        contributors = [c["key"] for c in A.decode_decision(base[i2])["contributions"]]
        ds = base[:i2] + [evidence_decision(keys, contributors[0], mid, 1)] + base[i2:]
        check(binary, m, f"{tag}-contribution-from-convicted", rebuild(mid, ds, m.gkeys, keys),
              "contributor_convicted", i2 + 1)
    ia = m.idx(2)
    if ia is not None:
        def expired(d): d["valid_until"] = ia  # the admit sits at height ia + 1
        variant("invite-expired", ia, expired, "invite_expired")

        def inv_sig(d): d["invite_sig"] = bytes([d["invite_sig"][0] ^ 1]) + d["invite_sig"][1:]
        variant("invite-signature", ia, inv_sig, "bad_invite_signature", resign=False)

        def already(d):
            d["member"] = d["invitee"] = m.gkeys[0]
        variant("admit-already-member", ia, already, "admit_already_member")

        def not_point(d):
            d["member"] = d["invitee"] = bytes(32)
        variant("admit-invalid-key", ia, not_point, "admit_invalid_key")

        def inviter(d):
            d["inviter"] = stranger  # the admitted key itself is no validator before its admission
        variant("inviter-not-validator", ia, inviter, "inviter_not_validator")


def _set_update_steps(u, steps):
    """An update announcement's training steps (bytes 116 … 123 of the 188)."""
    sb = bytearray(u["signed"]); struct.pack_into("<Q", sb, 116, steps); u["signed"] = bytes(sb)
    u["steps"] = steps


def update_steps_cases(binary, m: Mesh, tag):
    """The training steps of model updates (Consensus catalog, "Model rounds", "The model
    decision"): judged like release steps, per kind; the recorded steps are the most any
    release or update stated."""
    mds = [i for i, e in enumerate(m.entries) if e["dec"][0] == 6]
    # the model decisions with the membership decisions they may depend on (admit 2, remove 3,
    # evidence 5), in log order: a joiner's updates count only once its admit is in the log,
    # and whether the demo admitted it before a model round is a matter of timing
    mds_with_members = [i for i, e in enumerate(m.entries) if e["dec"][0] in (2, 3, 5, 6)]
    if not mds:
        return
    print(f"-- {tag}: the training steps of model updates (forged, re-signed)")
    mid, keys = m.mesh_id, m.keys
    base = m.decs()
    g = m.g

    def forged(name, edits, expect, index="any", gen=None, mesh=None, valid=False):
        """edits: {decision index: fn(decoded decision)}; every edited decision re-signed."""
        ds = list(base)
        for i, fn in edits.items():
            d = A.decode_decision(ds[i])
            fn(d)
            resign_decision(d, mesh or mid, keys)
            ds[i] = encode_decision(d)
        if mesh is not None:  # another mesh id: every decision re-signed for it
            ds = [x if i in edits else encode_decision(resign_decision(A.decode_decision(x), mesh, keys))
                  for i, x in enumerate(ds)]
        data = rebuild(mesh or mid, ds, m.gkeys, keys)
        if valid:
            compare_valid(binary, f"{tag}-{name}", m.write(f"{tag}-{name}.log", data), gen or m.gen)
        else:
            check(binary, m, f"{tag}-{name}", data, expect, index, gen)

    def at(d, field, j):
        """j: a position in the decision's list, or a contributor's key (bytes)."""
        xs = d[field]
        return xs[j] if isinstance(j, int) else next(x for x in xs if x["key"] == j)

    def has(i, field, k):
        return any(x["key"] == k for x in A.decode_decision(base[i])[field])

    def steps_of(i, j=0):
        return at(A.decode_decision(base[i]), "updates", j)["steps"]

    def upd(j, steps):
        def e(d): _set_update_steps(at(d, "updates", j), steps)
        return e

    if not g.dp_sgd:
        forged("update-steps-unexpected", {mds[0]: upd(0, 5)}, "training_steps_unexpected", mds[0])
        # the same log under a genesis whose training_privacy is present but disabled: updates
        # state 0 steps (accepted), and any other number is refused
        text = open(m.gen).read()
        gpath = m.write(f"{tag}-dp-disabled.yaml", text + "\ntraining_privacy:\n  enabled: false\n  clip_norm: 1\n"
                        "  noise_multiplier: 1.1\n  sample_rate: 0.05\n  delta: 1e-05\n  epsilon_max: 8\n", text=True)
        gid = A.Genesis(gpath).mesh_id
        forged("dp-disabled-unchanged", {}, None, gen=gpath, mesh=gid, valid=True)
        forged("dp-disabled-update-steps-unexpected", {mds[1]: upd(0, 20)}, "training_steps_unexpected", mds[1],
               gen=gpath, mesh=gid)
        # a log of its model decisions alone: which privacy rows updates make without DP-SGD
        ds = [base[i] for i in mds_with_members]
        compare_valid(binary, f"{tag}-model-decisions-only",
                      m.write(f"{tag}-models-only.log", rebuild(mid, ds, m.gkeys, keys)), m.gen)
        return

    spr = g.steps_per_round
    tp = g.training_privacy
    i_masks = [i for i, e in enumerate(m.entries) if e["dec"][0] == 1]
    # One contributor followed through the decisions below: a quorum decides, so which
    # contributors a decision holds (and in which order) is a matter of timing. k0 is the key of
    # the first model decision found in most of the first three model decisions and the first two
    # mask decisions; each case below runs only where its decisions hold k0.
    wanted = [(i, "updates") for i in mds[:3]] + [(i, "contributions") for i in i_masks[:2]]
    k0 = max((u["key"] for u in A.decode_decision(base[mds[0]])["updates"]),
             key=lambda k: sum(has(i, f, k) for i, f in wanted))
    # how many of the first model / mask decisions, in a row, hold k0
    in_mds = next((n for n, i in enumerate(mds) if not has(i, "updates", k0)), len(mds))
    in_masks = next((n for n, i in enumerate(i_masks) if not has(i, "contributions", k0)), len(i_masks))

    def skipped(case):
        WARNINGS.append(f"{tag}: {case} skipped: no contributor is in every decision it needs "
                        f"(timing: a quorum decided without it)")

    # the honest log: update k of each contributor states k rounds' steps or more
    forged("update-steps-missing", {mds[0]: upd(k0, 0)}, "training_steps_missing", mds[0])
    forged("update-steps-missing-last", {mds[-1]: upd(-1, 0)}, "training_steps_missing", mds[-1])
    if in_mds > 1:
        forged("update-steps-decreasing", {mds[1]: upd(k0, steps_of(mds[0], k0) - 1)},
               "training_steps_decreasing", mds[1])
        forged("update-steps-too-few", {mds[1]: upd(k0, 2 * spr - 1)}, "training_steps_too_few", mds[1])
    else:
        skipped("update-steps-decreasing/too-few")
    if in_mds > 2:  # a phase-two update (no release beside it)
        forged("update-steps-too-few-phase-two", {mds[2]: upd(k0, 3 * spr - 1)}, "training_steps_too_few", mds[2])
    elif len(mds) > 2:
        skipped("update-steps-too-few-phase-two")
    forged("update-steps-over-epsilon-max", {mds[0]: upd(0, 10 ** 7)}, "training_budget_exceeded", mds[0])
    # the order inside one decision: every update's signature before any update's steps (the
    # binary's order; ModelRounds does not say whether the two run in one pass)
    def steps_then_sig(d):
        _set_update_steps(d["updates"][0], 0)
    ds = list(base); d = A.decode_decision(ds[mds[0]]); steps_then_sig(d); resign_decision(d, mid, keys)
    d["updates"][1]["sig"] = bytes([d["updates"][1]["sig"][0] ^ 1]) + d["updates"][1]["sig"][1:]
    ds[mds[0]] = encode_decision(d)
    check(binary, m, f"{tag}-update-signatures-before-steps", rebuild(mid, ds, m.gkeys, keys),
          "bad_update_signature", mds[0])

    # ε_max between what the releases stated and what the last updates stated: only an update
    # (phase two's) exceeds it
    rel_steps = [A.decode_release(c["payload"])["steps"] for i, e in enumerate(m.entries) if e["dec"][0] == 1
                 for c in A.decode_decision(base[i])["contributions"]]
    upd_max = max(u["steps"] for i in mds for u in A.decode_decision(base[i])["updates"])
    if upd_max > max(rel_steps):
        r_rel = A.sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], max(rel_steps), tp["delta"])
        r_upd = A.sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], upd_max, tp["delta"])
        emax = round((r_rel + r_upd) / 2, 6)
        old = next(l for l in open(m.gen).read().split("\n") if l.strip().startswith("epsilon_max:"))
        gpath, gid = m.genesis_variant(f"{tag}-update-budget", old, old.split(":")[0] + f": {emax}")
        first = next(i for i in mds if any(
            A.sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], u["steps"], tp["delta"]) > emax
            for u in A.decode_decision(base[i])["updates"]))
        print(f"  (a genesis with epsilon_max {emax}: above every release's record-level ε, below the last updates')")
        forged("update-over-epsilon-max-genesis", {}, "training_budget_exceeded", first,
               gen=gpath, mesh=gid)
    else:
        WARNINGS.append(f"{tag}: no update stated more steps than every release; the ε_max-between case was skipped")

    # per kind: an update's steps are compared with the contributor's previous update's, a
    # release's with its previous release's; the recorded steps are the most of all of them
    def rel_steps_to(steps):
        def e(d):
            c = at(d, "contributions", k0)
            rel = A.decode_release(c["payload"]); rel["steps"] = steps; c["payload"] = encode_release(rel)
        return e
    if in_masks > 1 and in_mds > 1:
        s2 = A.decode_release(at(A.decode_decision(base[i_masks[1]]), "contributions", k0)["payload"])["steps"]
        forged("update-above-the-next-release-per-kind",
               {mds[0]: upd(k0, s2 + 1), mds[1]: upd(k0, max(s2 + 1, steps_of(mds[1], k0)))}, None, valid=True)
        forged("release-above-the-next-update-per-kind", {i_masks[0]: rel_steps_to(s2)}, None, valid=True)
        # the recorded steps: the most stated, a release's here (above every update)
        top = upd_max + spr
        r_top = A.sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], top, tp["delta"])
        if r_top <= tp["epsilon_max"]:
            forged("recorded-steps-from-a-release", {i_masks[1]: rel_steps_to(top)}, None, valid=True)
    elif len(i_masks) > 1 and len(mds) > 1:
        skipped("the per-kind cases")
    # "its updates so far": the contributor's own count, not the model round
    q = A.MeshState.quorum_of(len(m.gkeys))
    n0 = len(A.decode_decision(base[mds[0]])["updates"])
    if n0 > q and in_mds > 1:
        def drop_k0(d): d["updates"] = [u for u in d["updates"] if u["key"] != k0]
        forged("update-count-per-contributor", {mds[0]: drop_k0, mds[1]: upd(k0, spr)}, None, valid=True)
        forged("update-count-per-contributor-too-few", {mds[0]: drop_k0, mds[1]: upd(k0, spr - 1)},
               "training_steps_too_few", mds[1])
    elif n0 > q and len(mds) > 1:
        skipped("update-count-per-contributor")
    # a log of its model decisions alone: contributors with updates and no release (as a node
    # admitted after the freeze is). Their steps are recorded and judged, and with DP-SGD
    # privacy_spent has a row for each (releases 0, ε 0; Commands, `prunemesh audit`)
    ds = [base[i] for i in mds_with_members]
    update_only_rows(binary, f"{tag}-model-decisions-only",
                     m.write(f"{tag}-models-only.log", rebuild(mid, ds, m.gkeys, keys)), m.gen)


def update_only_rows(binary, name, log, gen):
    """compare_valid, except that a binary that omits exactly the privacy_spent rows of keys
    with updates alone (releases 0) is reported as the binary bug it is (fixed in 168421c:
    "audit --json lists a DP node with recorded steps but no release")."""
    (rc_r, r), (rc_m, mm) = run_real(binary, log, gen), run_mine(log, gen)
    mine = mm.get("privacy_spent", [])
    if rc_r == 0 and rc_m == 0 and r.get("privacy_spent") != mine and \
            r.get("privacy_spent") == [x for x in mine if x["releases"] > 0] and \
            all(r.get(k) == mm.get(k) for k in ("ok", "entries", "verified", "head", "entry_details")):
        COUNTS["cases"] += 1
        extra = [x for x in mine if x["releases"] == 0]
        BINARY_BUGS.append(
            f"{name}: `prunemesh audit --json` has no privacy_spent row for the {len(extra)} keys whose DP-SGD "
            f"steps come from model updates alone (auditor.py: releases 0, training_steps "
            f"{[x['training_steps'] for x in extra]}); Commands.md (`prunemesh audit`) documents one row for "
            f"each (releases 0, epsilon 0). Fixed upstream in 168421c; this binary predates it")
        print(f"  BINARY BUG {name}: same verdict and entries; the binary omits {len(extra)} update-only privacy rows")
        return
    compare_valid(binary, name, log, gen)


def fuzz_cases(binary, m: Mesh, tag, count=60, seed=1):
    """Seeded random damage inside well-framed entries (bit flips, cuts, appended bytes): both
    auditors must give the same verdict, code, index, entry count and head."""
    import random
    print(f"-- {tag}: {count} seeded random mutations of one entry's bytes (re-framed)")
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    for n in range(count):
        es = m.entries_copy()
        i = rng.randrange(len(es))
        body = bytearray(encode_body(es[i]["height"], _prev_of(m, es, i), es[i]["dec"], encode_cert(es[i]["cert"])))
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            if op < 0.6:
                body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
            elif op < 0.8:
                del body[rng.randrange(1, len(body)):]
            else:
                body += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        es[i]["raw"] = bytes(body)
        path = m.write(f"{tag}-fuzz.log", reframe(m.mesh_id, es))
        COUNTS["cases"] += 1
        (rc_r, r), (rc_m, mm) = run_real(binary, path, m.gen), run_mine(path, m.gen)
        fr, fm = r.get("first_error") or {}, mm.get("first_error") or {}
        got = (rc_r, fr.get("code"), fr.get("index"), r.get("entries"), r.get("head"))
        mine = (rc_m, fm.get("code"), fm.get("index"), mm.get("entries"), mm.get("head"))
        if got != mine:
            fail(f"{tag}-fuzz #{n} (entry {i}): prunemesh {got} [{fr.get('reason')!r}] vs auditor.py {mine} [{fm.get('reason')!r}]")
        else:
            COUNTS["agree"] += 1
            seen[str(fr.get("code"))] = seen.get(str(fr.get("code")), 0) + 1
    print(f"  ok   {tag}-fuzz: verdicts agreed on {sum(seen.values())} of {count}: {dict(sorted(seen.items()))}")


def agreement_on_logs(binary, directory, rep, tag):
    print(f"-- {tag}: every node's log, both auditors")
    keys_by_node = {}
    for nd in node_dirs(directory):
        keys_by_node[nd] = open(os.path.join(nd, "node.key")).read().split("\n")[2]
    for pos, nd in enumerate(node_dirs(directory)):
        log = os.path.join(nd, "decisions.log")
        i = rep["node_indices"].index(int(nd.rsplit("-", 1)[1])) if "node_indices" in rep else pos
        row = (rep["epsilon"][i] if rep.get("epsilon") and rep["epsilon"][i] else None,
               rep["training_steps"][i] if rep.get("training_steps") else None,
               rep["record_epsilon"][i] if rep.get("record_epsilon") else None,
               keys_by_node[nd],
               rep["releases"][i] if rep.get("releases") else None)
        compare_valid(binary, tag, log, os.path.join(directory, "genesis.yaml"), row)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 64
    binary, scratch = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(scratch, exist_ok=True)
    t0 = time.time()

    da = os.path.join(scratch, "mesh-A-federated")
    # (no --leave: with it the demo itself fails when the leaver's shared model falls behind;
    # removals are forged below instead)
    ra = run_demo(binary, da, ["--nodes", "4", "--join-late", "--finetune-epochs", "2", "--encoding", "int8"])
    agreement_on_logs(binary, da, ra, "A")
    ma = Mesh(da, os.path.join(scratch, "cases-A"))
    file_cases(binary, ma, "A")
    genesis_cases(binary, ma, "A", "learning_rate: 0.03", "learning_rate: 0.031")
    # federation.encoding: int8 is tag 3 in the canonical bytes; f32 (or no field) is not encoded
    genesis_cases(binary, ma, "A", 'encoding: "int8"', "encoding: f32")
    genesis_cases(binary, ma, "A", 'encoding: "int8"', "")
    genesis_cases(binary, ma, "A", 'encoding: "int8"', "encoding: int8  # unquoted", None)
    genesis_cases(binary, ma, "A", 'encoding: "int8"', "encoding: INT8", "genesis")
    genesis_cases(binary, ma, "A", 'encoding: "int8"', "encoding: ~", "wrong_mesh")  # null: absent, f32
    # other clarified genesis spellings (GenesisAndMeshID, "The string fields")
    genesis_cases(binary, ma, "A", 'address: "127.0.0.1:', 'address: "127.0.0.01:', "genesis")
    genesis_cases(binary, ma, "A", 'partition: "dirichlet:0.5"', 'partition: "labels:11"', "genesis")
    entry_cases(binary, ma, "A")
    decision_cases(binary, ma, "A")
    update_steps_cases(binary, ma, "A")
    fuzz_cases(binary, ma, "A")

    db = os.path.join(scratch, "mesh-B-dp-noisefree")
    # 4 nodes (a quorum of 3: an update can be left out), two phase-two model rounds (their
    # updates state more steps than any release), f32 updates (no encoding tag)
    rb = run_demo(binary, db, ["--nodes", "4", "--finetune-epochs", "2", "--encoding", "f32",
                               "--dp-sample-rate", "0.05", "--dp-noise-multiplier", "1.0",
                               "--dp-epsilon-max", "20", "--noise-multiplier", "0", "--boundary", "auto:0.5"])
    agreement_on_logs(binary, db, rb, "B")
    mb = Mesh(db, os.path.join(scratch, "cases-B"))
    file_cases(binary, mb, "B")
    genesis_cases(binary, mb, "B", "enabled: true", "enabled: false", "genesis")  # z = 0 needs DP-SGD
    genesis_cases(binary, mb, "B", "delta: 1e-05\n  # No node", "delta: 2e-05\n  # No node")
    genesis_cases(binary, mb, "B", 'encoding: "f32"', "", None)  # f32 is the default, not encoded
    genesis_cases(binary, mb, "B", 'encoding: "f32"', "encoding: int8")
    decision_cases(binary, mb, "B")
    update_steps_cases(binary, mb, "B")
    fuzz_cases(binary, mb, "B", count=40, seed=2)

    dc = os.path.join(scratch, "mesh-C-dp-local")
    rc = run_demo(binary, dc, ["--local-only", "--nodes", "4", "--dp-sample-rate", "0.05",
                               "--dp-noise-multiplier", "1.0", "--dp-epsilon-max", "20", "--boundary", "auto2:1",
                               "--noise-multiplier", "3", "--clip-bound", "16"])
    agreement_on_logs(binary, dc, rc, "C")
    mc = Mesh(dc, os.path.join(scratch, "cases-C"))
    genesis_cases(binary, mc, "C", "sample_rate: 0.05", "sample_rate: 5.0000000000000003e-2", None)  # same double
    genesis_cases(binary, mc, "C", "sample_rate: 0.05", "sample_rate: 0.05000000000000001")  # one ulp more
    decision_cases(binary, mc, "C")
    # a model decision in a mesh without federation: mesh A's model decision, re-signed for C
    if ma.idx(6) is not None:
        dec = A.decode_decision(ma.decs()[ma.idx(6)])
        dec["updates"] = []
        for k in sorted(mc.gkeys):
            signed = bytearray(124); signed[0:32] = k; struct.pack_into("<Q", signed, 32, 1)
            struct.pack_into("<Q", signed, 104, 4096); struct.pack_into("<I", signed, 112, 100)
            dec["updates"].append(dict(key=k, signed=bytes(signed), sig=b""))
        resign_decision(dec, mc.mesh_id, mc.keys)
        ds = mc.decs() + [encode_decision(dec)]
        check(binary, mc, "C-model-decision-without-federation", rebuild(mc.mesh_id, ds, mc.gkeys, mc.keys),
              "model_not_federated", len(ds) - 1)

    # D: neither DP-SGD nor federation (the oldest kind of mesh)
    dd = os.path.join(scratch, "mesh-D-plain-local")
    rd = run_demo(binary, dd, ["--local-only", "--boundary", "keep:0.5"])
    agreement_on_logs(binary, dd, rd, "D")
    md_ = Mesh(dd, os.path.join(scratch, "cases-D"))
    file_cases(binary, md_, "D")
    decision_cases(binary, md_, "D")

    print()
    print(f"{COUNTS['agree']} of {COUNTS['cases']} cases agree; {len(FAILURES)} disagreements; "
          f"{len(BINARY_BUGS)} known binary bugs; {time.time() - t0:.0f} s")
    for w in dict.fromkeys(WARNINGS):
        print(f"note: {w}")
    for b in BINARY_BUGS:
        print(f"BINARY BUG (the binary departs from its documentation; the auditor follows the docs): {b}")
    if FAILURES:
        print("FAILED: the independent auditor and `prunemesh audit` disagree:")
        for f in FAILURES:
            print(f"  - {f}")
        return 1
    if BINARY_BUGS:
        print(f"OK, but for {len(BINARY_BUGS)} known binary bug(s) above: the independent auditor agrees with "
              f"`prunemesh audit` on every verdict")
    else:
        print("OK: the independent auditor agrees with `prunemesh audit` on every log and every tampered copy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
