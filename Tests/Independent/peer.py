#!/usr/bin/env python3
"""An independent PruneMesh membership peer, written from the documentation alone.

Sources used (and nothing else): README.md, the DocC catalogs (Wire: Envelope, LocalFiles,
SealedDatagrams; Membership: Payloads, Joining; MeshConfig: GenesisAndMeshID; PruneMeshCLI:
Operations, Commands), netconfig/ and `prunemesh help`. Where the documents left something
open, the choice made here is marked `GAP:` and listed in /tmp/indep/peer-gaps.md.

Python 3.11 standard library plus libsodium through ctypes.

    peer.py --key n3.key --genesis genesis.yaml --listen 127.0.0.1:0 --join 127.0.0.1:7001 \
            --state-dir peer-state --duration 30 --leave --summary out.json

It joins a live mesh of `prunemesh start` nodes as a member (SWIM with Lifeguard's local
health): signed envelopes with its own boot epoch, join by sync request, pings and acks,
indirect probes (pingReq), gossip and push-pull syncs, merging and refutation, and an optional
`leave` at the end. Agreement, log sync and bulk traffic are verified (signatures; sealed
datagrams opened with the pair key) and counted by kind, never acted on.
`peer.py --self-test` recomputes the worked examples of the catalogs.
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import json
import math
import os
import random
import re
import select
import socket
import stat
import struct
import sys
import time

# ---------------------------------------------------------------------------------------------
# libsodium
# ---------------------------------------------------------------------------------------------


class Sodium:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libsodium.so.23")
        if self.lib.sodium_init() < 0:
            raise RuntimeError("sodium_init failed")
        L = self.lib
        c_ull = ctypes.c_ulonglong
        L.crypto_sign_seed_keypair.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]
        L.crypto_sign_detached.argtypes = [ctypes.c_char_p, ctypes.POINTER(c_ull), ctypes.c_char_p,
                                           c_ull, ctypes.c_char_p]
        L.crypto_sign_verify_detached.argtypes = [ctypes.c_char_p, ctypes.c_char_p, c_ull,
                                                  ctypes.c_char_p]
        L.crypto_generichash.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, c_ull,
                                         ctypes.c_char_p, ctypes.c_size_t]
        L.crypto_sign_ed25519_pk_to_curve25519.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        L.crypto_sign_ed25519_sk_to_curve25519.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        L.crypto_kx_client_session_keys.argtypes = [ctypes.c_char_p] * 5
        L.crypto_kx_server_session_keys.argtypes = [ctypes.c_char_p] * 5
        L.crypto_aead_xchacha20poly1305_ietf_decrypt.argtypes = [
            ctypes.c_char_p, ctypes.POINTER(c_ull), ctypes.c_char_p, ctypes.c_char_p, c_ull,
            ctypes.c_char_p, c_ull, ctypes.c_char_p, ctypes.c_char_p]
        L.crypto_aead_xchacha20poly1305_ietf_encrypt.argtypes = [
            ctypes.c_char_p, ctypes.POINTER(c_ull), ctypes.c_char_p, c_ull, ctypes.c_char_p,
            c_ull, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p]

    def seed_keypair(self, seed: bytes) -> tuple[bytes, bytes]:
        pk = ctypes.create_string_buffer(32)
        sk = ctypes.create_string_buffer(64)
        if self.lib.crypto_sign_seed_keypair(pk, sk, seed) != 0:
            raise RuntimeError("crypto_sign_seed_keypair failed")
        return pk.raw, sk.raw

    def sign(self, sk: bytes, msg: bytes) -> bytes:
        sig = ctypes.create_string_buffer(64)
        self.lib.crypto_sign_detached(sig, None, msg, len(msg), sk)
        return sig.raw

    def verify(self, pk: bytes, msg: bytes, sig: bytes) -> bool:
        return self.lib.crypto_sign_verify_detached(sig, msg, len(msg), pk) == 0

    def blake2b(self, data: bytes, outlen: int = 32, key: bytes | None = None) -> bytes:
        out = ctypes.create_string_buffer(outlen)
        self.lib.crypto_generichash(out, outlen, data, len(data), key, len(key) if key else 0)
        return out.raw

    def tagged_hash(self, tag: str, msg: bytes, key: bytes | None = None) -> bytes:
        t = tag.encode()
        return self.blake2b(bytes([len(t)]) + t + msg, 32, key)

    def ed_pk_to_x(self, pk: bytes) -> bytes | None:
        out = ctypes.create_string_buffer(32)
        if self.lib.crypto_sign_ed25519_pk_to_curve25519(out, pk) != 0:
            return None
        return out.raw

    def ed_sk_to_x(self, sk64: bytes) -> bytes:
        out = ctypes.create_string_buffer(32)
        self.lib.crypto_sign_ed25519_sk_to_curve25519(out, sk64)
        return out.raw

    def kx(self, client: bool, own_xpk: bytes, own_xsk: bytes, peer_xpk: bytes):
        rx = ctypes.create_string_buffer(32)
        tx = ctypes.create_string_buffer(32)
        f = (self.lib.crypto_kx_client_session_keys if client
             else self.lib.crypto_kx_server_session_keys)
        if f(rx, tx, own_xpk, own_xsk, peer_xpk) != 0:
            return None
        return rx.raw, tx.raw

    def xchacha_open(self, key: bytes, nonce: bytes, ct: bytes, ad: bytes) -> bytes | None:
        if len(ct) < 16:
            return None
        out = ctypes.create_string_buffer(len(ct))
        olen = ctypes.c_ulonglong(0)
        r = self.lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
            out, ctypes.byref(olen), None, ct, len(ct), ad, len(ad), nonce, key)
        return out.raw[:olen.value] if r == 0 else None

    def xchacha_seal(self, key: bytes, nonce: bytes, pt: bytes, ad: bytes) -> bytes:
        out = ctypes.create_string_buffer(len(pt) + 16)
        olen = ctypes.c_ulonglong(0)
        self.lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
            out, ctypes.byref(olen), pt, len(pt), ad, len(ad), None, nonce, key)
        return out.raw[:olen.value]


SODIUM: Sodium | None = None


def sodium() -> Sodium:
    global SODIUM
    if SODIUM is None:
        SODIUM = Sodium()
    return SODIUM


# ---------------------------------------------------------------------------------------------
# Constants (Wire catalog, "The datagram"; Membership catalog, "Payloads")
# ---------------------------------------------------------------------------------------------

MAGIC = b"PMSH"
VERSION = 1
HEADER = 81
SIG = 64
DATAGRAM_MAX = 1400
PAYLOAD_MAX = 1255
MESSAGE_MAX = 65536
CHUNK_HEADER = 17
CHUNK_DATA = PAYLOAD_MAX - CHUNK_HEADER  # 1238
CHUNKS_MAX = 64
REPLAY_WINDOW = 1024
SEALED_HEADER = 79
SEALED_MIN = 95

KINDS = {
    0x01: "chunk", 0x10: "beacon", 0x11: "ping", 0x12: "ack", 0x13: "pingReq",
    0x14: "membershipSync", 0x16: "leave", 0x20: "importanceRelease", 0x21: "contribution",
    # GAP: 0x22 modelUpdate is named only in the Consensus catalog ("Model rounds"), not in the
    # Wire catalog's kind table.
    0x22: "modelUpdate",
    0x30: "proposal", 0x31: "prevote", 0x32: "precommit", 0x33: "contributionRequest",
    0x34: "contributionHave", 0x40: "logRequest", 0x41: "logResponse",
}
KIND = {v: k for k, v in KINDS.items()}
SEALED_KIND = 0x50

ALIVE, SUSPECT, DEAD, LEFT = 0, 1, 2, 3
STATUS_NAMES = {ALIVE: "alive", SUSPECT: "suspect", DEAD: "dead", LEFT: "left"}

# GAP: Limits.swim_piggyback_updates_count_max, Limits.members_count_max and
# Limits.swim_leave_announce_count_max are named but their values are given only in Limits.swift.
# Measured black-box against a node: an update list of 32 is accepted, 33 refused
# (malformedPayload), also when chunked; a sync of 256 members is accepted, 257 refused.
# The leave fan-out cannot be measured with a small mesh: 8 is a guess.
PIGGYBACK_MAX = 32
MEMBERS_MAX = 256
LEAVE_ANNOUNCE_MAX = 8
UPDATE_MIN_BYTES = 48  # GAP: Payloads.md says 49; an IPv4 update without accuser is 48 bytes.


class Reject(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# Little helpers
# ---------------------------------------------------------------------------------------------

def u8(b, o): return b[o]
def u16(b, o): return struct.unpack_from("<H", b, o)[0]
def u32(b, o): return struct.unpack_from("<I", b, o)[0]
def u64(b, o): return struct.unpack_from("<Q", b, o)[0]


def fingerprint(pk: bytes) -> str:
    h = sodium().tagged_hash("prunemesh/v1/key-fingerprint", pk)[:8].hex()
    return "-".join(h[i:i + 4] for i in range(0, 16, 4))


# ---------------------------------------------------------------------------------------------
# Key file and boot-epoch file (Wire catalog, "Local files of the wire layer")
# ---------------------------------------------------------------------------------------------

KEY_HEADER = "prunemesh-ed25519-secret-key v1"


def load_key(path: str) -> tuple[bytes, bytes, bytes]:
    """Returns (seed, public key, 64-byte libsodium secret key)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SystemExit(f"{path}: not a regular file")
        if st.st_mode & 0o077:
            raise SystemExit(f"{path}: permissions {oct(st.st_mode & 0o777)} let group or others "
                             f"access the secret key; run 'chmod 600 {path}'")
        if st.st_size > 1024:
            raise SystemExit(f"{path}: larger than 1024 bytes")
        raw = os.read(fd, 2048)
    finally:
        os.close(fd)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise SystemExit(f"{path}: non-ASCII bytes")
    if not text.endswith("\n"):
        raise SystemExit(f"{path}: missing final newline")
    lines = text[:-1].split("\n")
    if len(lines) != 3:
        raise SystemExit(f"{path}: expected 3 lines, found {len(lines)}")
    if lines[0] != KEY_HEADER:
        raise SystemExit(f"{path}: wrong header line")
    vals = []
    for ln in lines[1:]:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", ln):
            raise SystemExit(f"{path}: a line is not 32 bytes of hex")
        vals.append(bytes.fromhex(ln))
    seed, pub = vals
    pk, sk = sodium().seed_keypair(seed)
    if pk != pub:
        raise SystemExit(f"{path}: the public key does not belong to the seed")
    return seed, pk, sk


def advance_boot_epoch(state_dir: str) -> int:
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, "boot-epoch")
    epoch = 0
    if os.path.exists(path):
        with open(path, "r", encoding="ascii") as f:
            text = f.read()
        m = re.fullmatch(r"prunemesh-boot-epoch v1\n([1-9][0-9]*)\n", text)
        if not m:
            raise SystemExit(f"{path}: not a boot-epoch file")
        epoch = int(m.group(1))
    epoch += 1
    if epoch > 0xFFFFFFFF:
        raise SystemExit(f"{path}: boot epoch exhausted")
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"prunemesh-boot-epoch v1\n{epoch}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return epoch


# ---------------------------------------------------------------------------------------------
# Genesis: a strict reader for the documented YAML subset, canonical bytes, mesh id
# (MeshConfig catalog, "The genesis and the mesh id")
# ---------------------------------------------------------------------------------------------

class YamlError(Exception):
    pass


def _strip_comment(line: str) -> str:
    out, q, i = [], None, 0
    while i < len(line):
        c = line[i]
        if q is None:
            if c == "#" and (i == 0 or line[i - 1] in " \t"):
                break
            if c in "\"'" and (not out or "".join(out).rstrip().endswith((":", "-")) or
                               "".join(out).strip() == ""):
                q = c
        elif q == '"':
            if c == "\\":
                out.append(c)
                i += 1
                if i < len(line):
                    out.append(line[i])
                i += 1
                continue
            if c == '"':
                q = None
        elif q == "'":
            if c == "'":
                if i + 1 < len(line) and line[i + 1] == "'":
                    out.append("''")
                    i += 2
                    continue
                q = None
        out.append(c)
        i += 1
    return "".join(out).rstrip()


class Scalar:
    def __init__(self, text: str, quoted: bool, line: int, col: int):
        self.text, self.quoted, self.line, self.col = text, quoted, line, col


def _scalar(raw: str, fname: str, line: int, col: int) -> Scalar:
    raw = raw.strip()
    if raw.startswith(("&", "*", "!", "|", ">", "{", "[")):
        raise YamlError(f"{fname}:{line}:{col}: anchors, aliases, tags, block and flow "
                        f"scalars are not accepted")
    if raw.startswith('"'):
        if not raw.endswith('"') or len(raw) < 2:
            raise YamlError(f"{fname}:{line}:{col}: unterminated string")
        body, out, i = raw[1:-1], [], 0
        esc = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "/": "/", "0": "\0", "r": "\r"}
        while i < len(body):
            c = body[i]
            if c == "\\":
                i += 1
                if i >= len(body):
                    raise YamlError(f"{fname}:{line}:{col}: bad escape")
                e = body[i]
                if e in esc:
                    out.append(esc[e])
                elif e in "xuU":
                    n = {"x": 2, "u": 4, "U": 8}[e]
                    out.append(chr(int(body[i + 1:i + 1 + n], 16)))
                    i += n
                else:
                    raise YamlError(f"{fname}:{line}:{col}: bad escape \\{e}")
            elif c == '"':
                raise YamlError(f"{fname}:{line}:{col}: stray quote")
            else:
                out.append(c)
            i += 1
        return Scalar("".join(out), True, line, col)
    if raw.startswith("'"):
        if not raw.endswith("'") or len(raw) < 2:
            raise YamlError(f"{fname}:{line}:{col}: unterminated string")
        return Scalar(raw[1:-1].replace("''", "'"), True, line, col)
    return Scalar(raw, False, line, col)


def parse_yaml_subset(text: str, fname: str):
    """Block mappings, block sequences of mappings, and scalars. Returns nested dict/list of
    Scalar; refuses duplicate keys, tabs, anchors, aliases and flow collections."""
    lines = []
    for n, ln in enumerate(text.split("\n"), 1):
        if "\t" in ln[:len(ln) - len(ln.lstrip())]:
            raise YamlError(f"{fname}:{n}:1: tab in indentation")
        s = _strip_comment(ln)
        if s.strip() == "" or s.strip() in ("---",):
            continue
        if s.strip() == "...":
            break
        lines.append((n, len(s) - len(s.lstrip(" ")), s.strip()))
    pos = 0

    def parse_block(indent: int):
        nonlocal pos
        if pos >= len(lines):
            raise YamlError(f"{fname}: unexpected end")
        n, ind, s = lines[pos]
        if s.startswith("- ") or s == "-":
            return parse_seq(ind)
        return parse_map(ind)

    def parse_map(indent: int, first: tuple | None = None):
        nonlocal pos
        result: dict = {}
        while pos < len(lines) or first:
            if first:
                n, ind, s = first
                first = None
            else:
                n, ind, s = lines[pos]
                if ind < indent:
                    break
                if ind > indent:
                    raise YamlError(f"{fname}:{n}:{ind + 1}: unexpected indentation")
                if s.startswith("-"):
                    break
                pos += 1
            m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s+(.*))?$", s)
            if not m:
                raise YamlError(f"{fname}:{n}:{ind + 1}: expected KEY: VALUE")
            key, rest = m.group(1), (m.group(2) or "").strip()
            if key in result:
                raise YamlError(f"{fname}:{n}:{ind + 1}: {key}: duplicate key")
            if rest == "":
                if pos < len(lines) and (lines[pos][1] > ind or
                                         (lines[pos][1] == ind and lines[pos][2].startswith("-"))):
                    result[key] = parse_block(lines[pos][1])
                else:
                    result[key] = Scalar("", False, n, ind + 1)
            else:
                result[key] = _scalar(rest, fname, n, ind + len(key) + 3)
        return result

    def parse_seq(indent: int):
        nonlocal pos
        result = []
        while pos < len(lines):
            n, ind, s = lines[pos]
            if ind < indent or not (s.startswith("- ") or s == "-"):
                if ind > indent:
                    raise YamlError(f"{fname}:{n}:{ind + 1}: unexpected indentation")
                break
            if ind > indent:
                raise YamlError(f"{fname}:{n}:{ind + 1}: unexpected indentation")
            pos += 1
            body = s[1:].lstrip(" ")
            inner = ind + (len(s) - len(body))
            if body == "":
                result.append(parse_block(lines[pos][1]))
            elif re.match(r"[A-Za-z_][A-Za-z0-9_]*\s*:(\s|$)", body):
                result.append(parse_map(inner, first=(n, inner, body)))
            else:
                result.append(_scalar(body, fname, n, inner + 1))
        return result

    if not lines:
        raise YamlError(f"{fname}: empty")
    doc = parse_block(lines[0][1])
    if pos != len(lines):
        n, ind, _ = lines[pos]
        raise YamlError(f"{fname}:{n}:{ind + 1}: unexpected content")
    return doc


U8, U32, U64, F64, STR, BOOL = "u8", "u32", "u64", "f64", "str", "bool"

GENESIS_SCHEMA = [
    ("training", [("epochs_per_round", U32), ("batch_size", U32), ("learning_rate", F64),
                  ("optimizer", ("enum", {"sgd": 0, "adam": 1})), ("momentum", F64),
                  ("weight_decay", F64), ("augment", ("enum", {"none": 0, "flip": 1})),
                  ("init_seed", U64)]),
    ("pruning", [("boundary", "boundary"), ("patience", U32), ("max_rounds", U32),
                 ("finetune_epochs", U32), ("surgery", ("enum", {"keep": 0, "reinit": 1}))]),
    ("privacy", [("clip_bound", F64), ("noise_multiplier", F64), ("delta", F64),
                 ("epsilon_budget", F64), ("scale_log2", U8)]),
    ("data", [("partition", "partition"), ("seed", U64)]),
    ("membership", [("probe_interval_ms", U64), ("probe_timeout_ms", U64),
                    ("indirect_probes", U32), ("suspicion_min_multiplier", U32),
                    ("suspicion_max_multiplier", U32), ("retransmit_multiplier", U32),
                    ("push_pull_interval_ms", U64), ("beacon_interval_ms", U64),
                    ("dead_retention_ms", U64), ("gossip_interval_ms", U64),
                    ("gossip_fanout", U32), ("awareness_max", U32)]),
    ("consensus", [("propose_timeout_ms", U64), ("propose_timeout_delta_ms", U64),
                   ("prevote_timeout_ms", U64), ("prevote_timeout_delta_ms", U64),
                   ("precommit_timeout_ms", U64), ("precommit_timeout_delta_ms", U64)]),
    ("validators", [("remove_dead_after_ms", U64)]),
]
TRAINING_PRIVACY_SCHEMA = [("enabled", BOOL), ("clip_norm", F64), ("noise_multiplier", F64),
                           ("sample_rate", F64), ("delta", F64), ("epsilon_max", F64)]
FEDERATION_SCHEMA = [("aggregation", "aggregation")]


def _enc_string(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) > 0xFFFF:
        raise ValueError("string too long")
    return struct.pack("<H", len(b)) + b


def _decimal_fixed(text: str, places: int, where: str) -> int:
    m = re.fullmatch(r"([0-9]+)(?:\.([0-9]*))?", text)
    if not m:
        raise YamlError(f"{where}: not a decimal number: {text!r}")
    frac = (m.group(2) or "").rstrip("0")
    if len(frac) > places:
        raise YamlError(f"{where}: more than {places} decimals: {text!r}")
    return int(m.group(1)) * 10 ** places + int((frac + "0" * places)[:places] or "0")


def _write_fixed(v: int, places: int) -> str:
    ip, fp = divmod(v, 10 ** places)
    frac = str(fp).rjust(places, "0").rstrip("0")
    # GAP: "the integer part plus `.` and the fraction without trailing zeros, if any" leaves
    # open whether a whole number is written `1` or `1.0`; tested black-box: see gaps file.
    return f"{ip}.{frac}" if frac else f"{ip}"


def canonical_boundary(text: str, where: str) -> str:
    m = re.fullmatch(r"(auto|auto2|keep):(.+)", text)
    if not m:
        raise YamlError(f"{where}: expected auto:K, auto2:K or keep:F (got {text!r})")
    kind, rest = m.groups()
    if kind == "keep":
        parts = rest.split("/")
        if len(parts) != 1 and not 2 <= len(parts) <= 6:
            raise YamlError(f"{where}: keep:F1/F2/… takes 2-6 fractions")
        vals = [_decimal_fixed(p, 6, where) for p in parts]
        if any(not 0 < v <= 1_000_000 for v in vals):
            raise YamlError(f"{where}: FRACTION must be in (0, 1]")
        return "keep:" + "/".join(_write_fixed(v, 6) for v in vals)
    k = _decimal_fixed(rest, 3, where)
    if k > 10_000:
        raise YamlError(f"{where}: K must be in 0…10")
    return f"{kind}:{_write_fixed(k, 3)}"


def _scalar_value(sc, typ, where: str):
    if isinstance(sc, (dict, list)):
        raise YamlError(f"{where}: expected a value")
    t = sc.text
    if typ in (U8, U32, U64):
        if not re.fullmatch(r"[0-9]+", t):
            raise YamlError(f"{sc.line}:{sc.col}: {where}: expected an integer (got {t!r})")
        v = int(t)
        lim = {U8: 0xFF, U32: 0xFFFFFFFF, U64: 0xFFFFFFFFFFFFFFFF}[typ]
        if v > lim:
            raise YamlError(f"{where}: out of range")
        return v
    if typ == F64:
        if not re.fullmatch(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", t):
            raise YamlError(f"{sc.line}:{sc.col}: {where}: expected a number (got {t!r})")
        v = float(t)
        if not math.isfinite(v):
            raise YamlError(f"{where}: not finite")
        return 0.0 if v == 0 else v
    if typ == BOOL:
        if t not in ("true", "false"):
            raise YamlError(f"{where}: expected true or false")
        return t == "true"
    return t


def _mapping(node, fname: str, where: str, allowed) -> dict:
    """`node` if it is a mapping of only `allowed` keys, else a YamlError naming the field."""
    if not isinstance(node, dict):
        raise YamlError(f"{fname}: {where}: expected a mapping")
    for k in node:
        if k not in allowed:
            raise YamlError(f"{fname}: {where}.{k}: unknown field")
    return node


def genesis_from_yaml(text: str, fname: str = "genesis.yaml") -> dict:
    doc = parse_yaml_subset(text, fname)
    if not isinstance(doc, dict):
        raise YamlError(f"{fname}: top level must be a mapping")
    allowed = {"format", "name", "model", "members", "training_privacy", "federation"} | \
        {s for s, _ in GENESIS_SCHEMA}
    for k in doc:
        if k not in allowed:
            raise YamlError(f"{fname}: {k}: unknown field")
    g: dict = {}
    for k in ("format", "name", "model", "members"):
        if k not in doc:
            raise YamlError(f"{fname}: {k}: required field is missing")
    g["format"] = _scalar_value(doc["format"], U32, "format")
    g["name"] = _scalar_value(doc["name"], STR, "name")
    g["model"] = _scalar_value(doc["model"], STR, "model")
    for sect, fields in GENESIS_SCHEMA:
        if sect not in doc or not isinstance(doc[sect], dict):
            raise YamlError(f"{fname}: {sect}: required section is missing")
        sd = doc[sect]
        for k in sd:
            if k not in {f for f, _ in fields}:
                raise YamlError(f"{fname}: {sect}.{k}: unknown field")
        vals = {}
        for f, typ in fields:
            if f not in sd:
                raise YamlError(f"{fname}: {sect}.{f}: required field is missing")
            where = f"{sect}.{f}"
            if isinstance(typ, tuple):
                v = _scalar_value(sd[f], STR, where)
                if v not in typ[1]:
                    raise YamlError(f"{fname}: {where}: one of {sorted(typ[1])}")
                vals[f] = typ[1][v]
            elif typ == "boundary":
                vals[f] = canonical_boundary(_scalar_value(sd[f], STR, where), where)
            elif typ == "partition":
                v = _scalar_value(sd[f], STR, where)
                if not re.fullmatch(r"iid|labels:[1-9][0-9]*|dirichlet:.+", v):
                    raise YamlError(f"{fname}: {where}: not canonical: {v!r}")
                if v.startswith("dirichlet:") and repr(float(v[10:])) != v[10:]:
                    raise YamlError(f"{fname}: {where}: not in canonical form "
                                    f"(write \"dirichlet:{float(v[10:])!r}\")")
                vals[f] = v
            else:
                vals[f] = _scalar_value(sd[f], typ, where)
        g[sect] = vals
    mem = doc["members"]
    if not isinstance(mem, list) or not mem:
        raise YamlError(f"{fname}: members: expected a list of 1-256 members")
    members = []
    for i, m in enumerate(mem):
        _mapping(m, fname, f"members[{i}]", ("key", "name", "address"))
        if "key" not in m:
            raise YamlError(f"{fname}: members[{i}].key: required field is missing")
        kh = _scalar_value(m["key"], STR, "key")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", kh):
            raise YamlError(f"{fname}: members[{i}].key: expected 64 hex digits")
        members.append({"key": bytes.fromhex(kh),
                        "name": _scalar_value(m["name"], STR, "name") if "name" in m else "",
                        "address": _scalar_value(m["address"], STR, "address")
                        if "address" in m else ""})
    keys = [m["key"] for m in members]
    if len(set(keys)) != len(keys):
        raise YamlError(f"{fname}: members: duplicate key")
    members.sort(key=lambda m: m["key"])
    g["members"] = members
    if "training_privacy" in doc:
        sd = _mapping(doc["training_privacy"], fname, "training_privacy",
                      [f for f, _ in TRAINING_PRIVACY_SCHEMA] + ["steps_per_round"])
        g["training_privacy"] = {f: _scalar_value(sd[f], t, f"training_privacy.{f}")
                                 for f, t in TRAINING_PRIVACY_SCHEMA}
        # Optional (GenesisAndMeshID, "training_privacy.steps_per_round"): 1 … 10,000, tag 5 + u32
        # after the federation's tags; a YAML null is an absent field.
        k = sd.get("steps_per_round")
        if k is not None and not isinstance(k, (dict, list)) and k.text not in ("", "null", "~"):
            steps = _scalar_value(k, U32, "training_privacy.steps_per_round")
            if not 1 <= steps <= 10_000:
                raise YamlError(f"{fname}: training_privacy.steps_per_round: must lie in 1 … 10000")
            g["training_privacy"]["steps_per_round"] = steps
    if "federation" in doc:
        sd = _mapping(doc["federation"], fname, "federation", ("aggregation", "encoding", "server_rate"))
        if "aggregation" not in sd:
            raise YamlError(f"{fname}: federation.aggregation: missing")
        fed = {"aggregation": _scalar_value(sd["aggregation"], STR, "federation.aggregation"),
               "encoding": "f32", "server_rate": 1.0}
        # Optional (GenesisAndMeshID, the federation section): f32 and 1 are not encoded, and
        # a YAML null (`encoding:`, `null`, `~`) is an absent field.
        for k in ("encoding", "server_rate"):
            if k in sd and not isinstance(sd[k], (dict, list)) and sd[k].text in ("", "null", "~"):
                del sd[k]
        if "encoding" in sd:
            fed["encoding"] = _scalar_value(sd["encoding"], STR, "federation.encoding")
            if fed["encoding"] not in ("f32", "int8"):
                raise YamlError(f"{fname}: federation.encoding: expected f32 or int8")
        if "server_rate" in sd:
            fed["server_rate"] = _scalar_value(sd["server_rate"], F64, "federation.server_rate")
            if not 0.001 <= fed["server_rate"] <= 4:
                raise YamlError(f"{fname}: federation.server_rate: must lie in [0.001, 4]")
        g["federation"] = fed
    return g


def genesis_canonical_bytes(g: dict) -> bytes:
    out = bytearray(b"prunemesh-genesis")
    out += struct.pack("<I", g["format"])
    out += _enc_string(g["name"])
    out += _enc_string(g["model"])
    fmt = {U8: "<B", U32: "<I", U64: "<Q", F64: "<d"}
    for sect, fields in GENESIS_SCHEMA:
        for f, typ in fields:
            v = g[sect][f]
            if isinstance(typ, tuple):
                out += struct.pack("<B", v)
            elif typ in ("boundary", "partition"):
                out += _enc_string(v)
            else:
                out += struct.pack(fmt[typ], v)
    out += struct.pack("<H", len(g["members"]))
    for m in g["members"]:
        out += m["key"] + _enc_string(m["name"]) + _enc_string(m["address"])
    if "training_privacy" in g:
        tp = g["training_privacy"]
        out += bytes([1, 1 if tp["enabled"] else 0])
        for f in ("clip_norm", "noise_multiplier", "sample_rate", "delta", "epsilon_max"):
            out += struct.pack("<d", tp[f])
    if "federation" in g:
        fed = g["federation"]
        out += bytes([2]) + _enc_string(fed["aggregation"])
        if fed.get("encoding", "f32") != "f32":
            out += bytes([3]) + _enc_string(fed["encoding"])
        if fed.get("server_rate", 1.0) != 1.0:
            out += bytes([4]) + struct.pack("<d", fed["server_rate"])
    if "steps_per_round" in g.get("training_privacy", {}):
        out += bytes([5]) + struct.pack("<I", g["training_privacy"]["steps_per_round"])
    return bytes(out)


def mesh_id_of(canonical: bytes) -> bytes:
    return sodium().tagged_hash("prunemesh/v1/mesh-id", canonical)


# ---------------------------------------------------------------------------------------------
# Addresses and member updates (Membership catalog, "Payloads")
# ---------------------------------------------------------------------------------------------

def enc_addr(addr: tuple[str, int]) -> bytes:
    ip = ipaddress.ip_address(addr[0])
    fam = 4 if ip.version == 4 else 6
    return bytes([fam]) + ip.packed + struct.pack("<H", addr[1])


def dec_addr(b: bytes, o: int) -> tuple[tuple[str, int], int]:
    if o >= len(b):
        raise Reject("malformedPayload")
    fam = b[o]
    n = {4: 4, 6: 16}.get(fam)
    if n is None:
        raise Reject("malformedPayload")  # badAddressFamily
    if o + 1 + n + 2 > len(b):
        raise Reject("malformedPayload")
    ip = str(ipaddress.ip_address(b[o + 1:o + 1 + n]))
    return (ip, u16(b, o + 1 + n)), o + 3 + n


STATEMENT_TAG = b"prunemesh/v1/member-statement"
INCARNATION_MAX = (1 << 63) - 1  # Limits.swim_incarnation_max (Joining, "Merging updates")
INCARNATION_STEP = 1 << 16       # Limits.swim_incarnation_step_max
SUSPECT_REPROBES_MAX = 3         # Limits.swim_suspect_reprobes_max


def stmt_message(mesh: bytes, mid: bytes, inc: int, st: int, addr) -> bytes:
    """The signed bytes of a member's own statement (alive or left), tag first (Payloads,
    "Member updates": Statements)."""
    return bytes([len(STATEMENT_TAG)]) + STATEMENT_TAG + mesh + mid + struct.pack("<QB", inc, st) + \
        enc_addr(addr)


def enc_update(u: dict) -> bytes:
    b = u["id"] + struct.pack("<QB", u["inc"], u["status"]) + enc_addr(u["addr"])
    if u["status"] == SUSPECT:
        b += u["accuser"]
    elif u["status"] in (ALIVE, LEFT):
        b += u["sig"]
    return b


def dec_update(b: bytes, o: int) -> tuple[dict, int]:
    if o + 41 > len(b):
        raise Reject("malformedPayload")
    mid = b[o:o + 32]
    inc = u64(b, o + 32)
    st = b[o + 40]
    if st > 3:
        raise Reject("malformedPayload")  # badStatus
    addr, o = dec_addr(b, o + 41)
    acc = sig = None
    if st == SUSPECT:
        if o + 32 > len(b):
            raise Reject("malformedPayload")
        acc = b[o:o + 32]
        o += 32
    elif st in (ALIVE, LEFT):
        if o + 64 > len(b):
            raise Reject("malformedPayload")
        sig = b[o:o + 64]
        o += 64
    return {"id": mid, "inc": inc, "status": st, "addr": addr, "accuser": acc, "sig": sig}, o


def enc_updates(us: list) -> bytes:
    return bytes([len(us)]) + b"".join(enc_update(u) for u in us)


def dec_updates(b: bytes, o: int) -> tuple[list, int]:
    if o >= len(b):
        raise Reject("malformedPayload")
    n = b[o]
    o += 1
    if n > PIGGYBACK_MAX or n * UPDATE_MIN_BYTES > len(b) - o:
        raise Reject("malformedPayload")
    us = []
    for _ in range(n):
        u, o = dec_update(b, o)
        us.append(u)
    return us, o


def decode_membership(kind: int, p: bytes) -> dict:
    if kind == KIND["ping"]:
        if len(p) < 48:
            raise Reject("malformedPayload")
        pid, target, inc = u64(p, 0), p[8:40], u64(p, 40)
        if pid == 0:
            raise Reject("malformedPayload")
        addr, o = dec_addr(p, 48)
        if o + 64 > len(p):
            raise Reject("malformedPayload")
        sig = p[o:o + 64]
        us, o = dec_updates(p, o + 64)
        if o != len(p):
            raise Reject("malformedPayload")
        return {"probe": pid, "target": target, "inc": inc, "addr": addr, "sig": sig, "updates": us}
    if kind == KIND["ack"]:
        if len(p) < 8:
            raise Reject("malformedPayload")
        us, o = dec_updates(p, 8)
        if o != len(p):
            raise Reject("malformedPayload")
        return {"probe": u64(p, 0), "updates": us}
    if kind == KIND["pingReq"]:
        if len(p) < 40:
            raise Reject("malformedPayload")
        pid = u64(p, 0)
        if pid == 0:
            raise Reject("malformedPayload")
        addr, o = dec_addr(p, 40)
        if o != len(p):
            raise Reject("malformedPayload")
        return {"probe": pid, "target": p[8:40], "addr": addr}
    if kind == KIND["membershipSync"]:
        if len(p) < 3 or p[0] > 1:
            raise Reject("malformedPayload")
        n = u16(p, 1)
        if n > MEMBERS_MAX or n * UPDATE_MIN_BYTES > len(p) - 3:
            raise Reject("malformedPayload")
        o, us = 3, []
        for _ in range(n):
            u, o = dec_update(p, o)
            us.append(u)
        if o != len(p):
            raise Reject("malformedPayload")
        return {"reply": p[0] == 1, "updates": us}
    if kind == KIND["leave"]:
        if len(p) < 8:
            raise Reject("malformedPayload")
        addr, o = dec_addr(p, 8)
        if o + 64 != len(p):
            raise Reject("malformedPayload")
        return {"inc": u64(p, 0), "addr": addr, "sig": p[o:o + 64]}
    if kind == KIND["beacon"]:
        addr, o = dec_addr(p, 0)
        if o != len(p):
            raise Reject("malformedPayload")
        return {"addr": addr}
    raise Reject("unknownKind")


# ---------------------------------------------------------------------------------------------
# Envelope (Wire catalog, "The datagram")
# ---------------------------------------------------------------------------------------------

def envelope_encode(kind: int, mesh: bytes, pk: bytes, sk: bytes, seq: int, payload: bytes) -> bytes:
    if len(payload) > PAYLOAD_MAX:
        raise ValueError("payload too large for one datagram")
    head = MAGIC + bytes([VERSION, kind, 0]) + mesh + pk + struct.pack("<QH", seq, len(payload))
    body = head + payload
    return body + sodium().sign(sk, b"\x15prunemesh/v1/envelope" + body)


def check_header(d: bytes, mesh: bytes) -> tuple[int, bytes, int, bytes]:
    """Checks 1-3 of "Decoding: the order of the checks". Returns kind, sender, seq, payload."""
    if len(d) > DATAGRAM_MAX:
        raise Reject("oversize")
    if len(d) < HEADER + SIG:
        raise Reject("truncated")
    if d[:4] != MAGIC:
        raise Reject("badMagic")
    if d[4] != VERSION:
        raise Reject("unsupportedVersion")
    if d[5] not in KINDS:
        raise Reject("unknownKind")
    if d[6] != 0:
        raise Reject("reservedFlags")
    if d[7:39] != mesh:
        raise Reject("wrongMesh")
    L = u16(d, 79)
    if L > PAYLOAD_MAX:
        raise Reject("oversize")
    if len(d) < HEADER + L + SIG:
        raise Reject("truncated")
    if len(d) != HEADER + L + SIG:
        raise Reject("trailingBytes")
    return d[5], d[39:71], u64(d, 71), d[81:81 + L]


class ReplayWindow:
    """RFC 4303 §3.4.3: 1024 numbers below the highest accepted one."""

    def __init__(self):
        self.top = None
        self.bits = 0  # bit i = top - i seen

    def check(self, seq: int) -> str | None:
        if self.top is None or seq > self.top:
            return None
        off = self.top - seq
        if off >= REPLAY_WINDOW:
            return "sequenceTooOld"
        return "replayed" if (self.bits >> off) & 1 else None

    def record(self, seq: int) -> None:
        if self.top is None:
            self.top, self.bits = seq, 1
        elif seq > self.top:
            shift = seq - self.top
            self.bits = ((self.bits << shift) | 1) & ((1 << REPLAY_WINDOW) - 1) \
                if shift < REPLAY_WINDOW else 1
            self.top = seq
        else:
            self.bits |= 1 << (self.top - seq)


# ---------------------------------------------------------------------------------------------
# Sealed datagrams (Wire catalog, "Sealed datagrams"): only opened, to verify and count them
# ---------------------------------------------------------------------------------------------

def pair_key(own_pk: bytes, own_sk64: bytes, peer_pk: bytes, mesh: bytes, sender_is_own: bool):
    s = sodium()
    peer_x = s.ed_pk_to_x(peer_pk)
    own_x = s.ed_pk_to_x(own_pk)
    if peer_x is None or own_x is None:
        return None
    own_xsk = s.ed_sk_to_x(own_sk64)
    client = own_pk < peer_pk
    keys = s.kx(client, own_x, own_xsk, peer_x)
    if keys is None:
        return None
    rx, tx = keys
    if sender_is_own:
        kd, sender, receiver = tx, own_pk, peer_pk
    else:
        kd, sender, receiver = rx, peer_pk, own_pk
    return s.tagged_hash("prunemesh/v1/pair-key", mesh + sender + receiver, key=kd)


# ---------------------------------------------------------------------------------------------
# The peer
# ---------------------------------------------------------------------------------------------

def parse_hostport(s: str) -> tuple[str, int]:
    m = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:([0-9]+)|([^:\[\]]+):([0-9]+)", s)
    if not m:
        raise SystemExit(f"expected HOST:PORT, got {s!r}")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = socket.gethostbyname(host)
    return host, port


def fmt_addr(a) -> str:
    if a is None:
        return None
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


class Member:
    __slots__ = ("id", "inc", "status", "addr", "accuser", "changed", "susp_start",
                 "susp_timeouts", "confirmations", "sig", "reprobes")

    def __init__(self, mid, inc, status, addr, now, sig=None):
        self.id, self.inc, self.status, self.addr = mid, inc, status, addr
        self.sig = sig  # the member's signature of its latest statement (alive or left) here
        self.reprobes = 0
        self.accuser = None
        self.changed = now
        self.susp_start = None
        self.susp_timeouts = None  # (min, max, K), fixed when the suspicion starts (Joining.md)
        self.confirmations: set = set()


class Peer:
    def __init__(self, args):
        self.args = args
        self.s = sodium()
        self.seed, self.pk, self.sk = load_key(args.key)
        with open(args.genesis, "r", encoding="utf-8") as f:
            gtext = f.read()
        self.genesis = genesis_from_yaml(gtext, os.path.basename(args.genesis))
        self.canonical = genesis_canonical_bytes(self.genesis)
        self.mesh = mesh_id_of(self.canonical)
        if args.expect_mesh_id and args.expect_mesh_id.lower() != self.mesh.hex():
            raise SystemExit(f"mesh id mismatch: computed {self.mesh.hex()}, expected "
                             f"{args.expect_mesh_id}")
        self.admitted = {m["key"] for m in self.genesis["members"]}
        self.in_genesis = self.pk in self.admitted
        mc = self.genesis["membership"]
        self.probe_interval_ms = mc["probe_interval_ms"]
        self.probe_interval = self.probe_interval_ms / 1000
        self.probe_timeout = mc["probe_timeout_ms"] / 1000
        self.indirect = mc["indirect_probes"]
        self.smin, self.smax = mc["suspicion_min_multiplier"], mc["suspicion_max_multiplier"]
        self.retransmit_mult = mc["retransmit_multiplier"]
        self.push_pull = mc["push_pull_interval_ms"] / 1000
        self.dead_retention = mc["dead_retention_ms"] / 1000
        self.gossip_interval = mc["gossip_interval_ms"] / 1000
        self.fanout = mc["gossip_fanout"]
        self.awareness_max = mc["awareness_max"]
        self.epoch = advance_boot_epoch(args.state_dir)
        self.counter = 0
        self.rng = random.Random(int.from_bytes(os.urandom(8), "little"))

        fam = socket.AF_INET6 if ":" in args.listen.rsplit(":", 1)[0] else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        host, port = parse_hostport(args.listen)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        bound = self.sock.getsockname()
        self.listen = (bound[0], bound[1])
        self.advertised = parse_hostport(args.advertise) if args.advertise else self.listen
        if self.advertised[0] in ("0.0.0.0", "::"):
            raise SystemExit("listening on a wildcard address: give --advertise HOST:PORT")

        now = time.monotonic()
        self.t0 = now
        self.inc = 0
        self.members: dict[bytes, Member] = {}
        me = Member(self.pk, 0, ALIVE, self.advertised, now, self.sign_statement(ALIVE, 0))
        self.members[self.pk] = me
        self.queue: list[dict] = []  # piggyback queue: {"u": update, "sent": n}
        self.enqueue(self.self_update())
        self.seeds = [parse_hostport(j) for j in args.join]
        for m in self.genesis["members"]:
            if m["key"] != self.pk and m["address"]:
                try:
                    a = parse_hostport(m["address"])
                    ipaddress.ip_address(m["address"].rsplit(":", 1)[0].strip("[]"))
                    self.seeds.append(a)
                except (ValueError, SystemExit):
                    pass  # only numeric hints are seeds
        self.replay: dict[bytes, ReplayWindow] = {}
        self.reasm: dict[tuple, dict] = {}
        self.done_msgs: list = []
        self.pair_keys: dict[bytes, bytes] = {}
        # SWIM timers
        self.next_join = now
        self.next_probe = now + self.probe_interval
        self.next_gossip = now + self.gossip_interval
        self.next_push_pull = now + self.push_pull
        self.probe_order: list[bytes] = []
        self.awareness = 0
        self.cur_probe = None  # {"id","target","start","timeout_at","end","indirect"}
        self.relays: dict[int, dict] = {}
        # counters
        self.c = {"datagrams_in": {}, "datagrams_out": {}, "messages_in": {}, "messages_out": {},
                  "rejects": {}, "bytes_in": 0, "bytes_out": 0, "signature_verifications": 0,
                  "sealed_opened": 0, "probes_sent": 0, "probes_acked": 0, "probes_failed": 0,
                  "indirect_probes_sent": 0, "probes_acked_indirectly": 0, "ping_reqs_served": 0, "acks_forwarded": 0,
                  "suspicions_started": 0, "refutations": 0, "deaths_declared": 0,
                  "non_admitted_ignored": 0, "incarnations_refused": 0, "statements_refused": 0, "join_requests": 0, "push_pulls": 0,
                  "gossip_sends": 0, "send_errors": 0, "ignored_by_test_hook": 0}
        self.ignore_from = {bytes.fromhex(h) for h in args.ignore_from}
        self.events: list = []
        self.alive_since: dict[str, float] = {}
        self.left = False

    # --- identity and bookkeeping ---------------------------------------------------------

    def log(self, msg: str):
        if self.args.verbose:
            print(f"[peer {time.monotonic() - self.t0:7.3f}] {msg}", file=sys.stderr, flush=True)

    def event(self, msg: str):
        self.events.append((round(time.monotonic() - self.t0, 3), msg))
        self.log(msg)

    def bump(self, table: str, key: str, n: int = 1):
        d = self.c[table]
        d[key] = d.get(key, 0) + n

    def sign_statement(self, st: int, inc: int) -> bytes:
        return self.s.sign(self.sk, stmt_message(self.mesh, self.pk, inc, st, self.advertised))

    def self_update(self) -> dict:
        me = self.members[self.pk]
        if me.inc != self.inc or me.sig is None:
            me.inc, me.sig = self.inc, self.sign_statement(ALIVE, self.inc)
        return {"id": self.pk, "inc": self.inc, "status": ALIVE, "addr": self.advertised,
                "accuser": None, "sig": me.sig}

    def statement_ok(self, u: dict) -> bool:
        """u, an alive or left update, carries its member's valid signature (counted if not)."""
        if u.get("sig") and self.s.verify(u["id"], stmt_message(self.mesh, u["id"], u["inc"],
                                                                   u["status"], u["addr"]), u["sig"]):
            return True
        self.c["statements_refused"] += 1
        return False

    def next_seq(self) -> int:
        if self.counter > 0xFFFFFFFF:
            raise SystemExit("sequence numbers of this boot epoch are exhausted")
        seq = (self.epoch << 32) | self.counter
        self.counter += 1
        return seq

    def live_others(self) -> list[Member]:
        return [m for m in self.members.values()
                if m.id != self.pk and m.status in (ALIVE, SUSPECT)]

    def n_members(self) -> int:
        return sum(1 for m in self.members.values() if m.status in (ALIVE, SUSPECT))

    def retransmit_limit(self) -> int:
        n = max(1, self.n_members())
        return self.retransmit_mult * max(1, math.ceil(math.log10(n + 1)))

    # --- piggyback queue ------------------------------------------------------------------

    def enqueue(self, u: dict):
        self.queue = [q for q in self.queue if q["u"]["id"] != u["id"]]
        self.queue.append({"u": dict(u), "sent": 0})

    def take_updates(self, room: int, first: dict | None = None) -> list[dict]:
        """The queue's updates for one message; `first` (an ack's statement, a ping's buddy
        suspicion) goes first and counts as a send of the queued update about its member."""
        limit = self.retransmit_limit()
        self.queue.sort(key=lambda q: q["sent"])
        out, used = [], 0
        if first is not None and len(enc_update(first)) <= room:
            out.append(first)
            used += len(enc_update(first))
            for q in self.queue:
                if q["u"]["id"] == first["id"]:
                    q["sent"] += 1
        for q in self.queue:
            if len(out) >= PIGGYBACK_MAX:
                break
            if first is not None and q["u"]["id"] == first["id"]:
                continue
            size = len(enc_update(q["u"]))
            if used + size > room:
                continue
            out.append(q["u"])
            used += size
            q["sent"] += 1
        self.queue = [q for q in self.queue if q["sent"] < limit]
        return out

    # --- sending --------------------------------------------------------------------------

    def send(self, kind: int, payload: bytes, addr):
        name = KINDS[kind]
        self.bump("messages_out", name)
        if len(payload) <= PAYLOAD_MAX:
            dgs = [(kind, envelope_encode(kind, self.mesh, self.pk, self.sk, self.next_seq(),
                                          payload))]
        else:
            if len(payload) > MESSAGE_MAX:
                raise ValueError("message too large")
            count = (len(payload) + CHUNK_DATA - 1) // CHUNK_DATA
            seqs = [self.next_seq() for _ in range(count)]
            dgs = []
            for i in range(count):
                part = payload[i * CHUNK_DATA:(i + 1) * CHUNK_DATA]
                cp = struct.pack("<QBHHI", seqs[0], kind, i, count, len(payload)) + part
                dgs.append((KIND["chunk"], envelope_encode(KIND["chunk"], self.mesh, self.pk,
                                                           self.sk, seqs[i], cp)))
        for k, d in dgs:
            try:
                self.sock.sendto(d, addr)
                self.bump("datagrams_out", KINDS[k])
                self.c["bytes_out"] += len(d)
            except OSError as e:
                self.c["send_errors"] += 1
                self.log(f"send to {addr} failed: {e}")

    def send_ping(self, target: Member, probe_id: int, addr=None):
        me = self.self_update()
        head = struct.pack("<Q", probe_id) + target.id + struct.pack("<Q", self.inc) + \
            enc_addr(self.advertised) + me["sig"]
        ups = self.take_updates(PAYLOAD_MAX - len(head) - 1)
        self.send(KIND["ping"], head + enc_updates(ups), addr or target.addr)

    def send_ack(self, probe_id: int, addr, first: dict | None = None):
        head = struct.pack("<Q", probe_id)
        ups = self.take_updates(PAYLOAD_MAX - len(head) - 1, first)
        self.send(KIND["ack"], head + enc_updates(ups), addr)

    def statement_to_pass(self, mid, stated):
        """The alive statement of member `mid` at the incarnation held for it, when it is held
        suspect or dead above `stated`, the incarnation it stated itself (it restarted below a
        claim it may not take: Joining, "Merging updates"); None otherwise."""
        m = self.members.get(mid)
        if m is None or m.status not in (SUSPECT, DEAD) or stated >= m.inc:
            return None
        return {"id": m.id, "inc": m.inc, "status": ALIVE, "addr": m.addr, "accuser": None, "sig": m.sig}

    def sync_payload(self, reply: bool, requester=None) -> bytes:
        """Every record; to a requester (id, incarnation it stated) held suspect or dead above
        what it stated, its own alive statement at the held incarnation instead of the claim,
        last (Joining, "Merging updates")."""
        self.self_update()
        ups = []
        own = self.statement_to_pass(*requester) if requester else None
        for mid in sorted(self.members):
            m = self.members[mid]
            if own and mid == own["id"]:
                continue
            ups.append({"id": m.id, "inc": m.inc, "status": m.status, "addr": m.addr,
                        "accuser": m.accuser if m.status == SUSPECT else None, "sig": m.sig})
        if own:
            ups.append(own)
        return bytes([1 if reply else 0]) + struct.pack("<H", len(ups)) + \
            b"".join(enc_update(u) for u in ups)

    def send_sync(self, addr, reply: bool, requester=None):
        self.send(KIND["membershipSync"], self.sync_payload(reply, requester), addr)

    # --- receiving ------------------------------------------------------------------------

    def receive(self, d: bytes, src, now: float):
        self.c["bytes_in"] += len(d)
        kind_byte = d[5] if len(d) > 5 else None
        name = KINDS.get(kind_byte, "sealed" if kind_byte == SEALED_KIND else "unknown")
        self.bump("datagrams_in", name)
        try:
            if kind_byte == SEALED_KIND and d[:4] == MAGIC:
                self.receive_sealed(d, src, now)
                return
            kind, sender, seq, payload = check_header(d, self.mesh)
            if sender in self.ignore_from:
                # test hook (--ignore-from): simulate loss from one member
                self.c["ignored_by_test_hook"] += 1
                return
            # admission of the claimed sender: the genesis members (no admits are tracked)
            if sender not in self.admitted:
                raise Reject("notMember")
            win = self.replay.get(sender)
            if win is not None:
                r = win.check(seq)
                if r:
                    raise Reject(r)
            self.c["signature_verifications"] += 1
            if not self.s.verify(sender, b"\x15prunemesh/v1/envelope" + d[:HEADER + len(payload)],
                                 d[HEADER + len(payload):]):
                raise Reject("badSignature")
            if win is None:
                win = self.replay[sender] = ReplayWindow()
            win.record(seq)
            if kind == KIND["chunk"]:
                msg = self.reassemble(sender, seq, payload, now)
                if msg is None:
                    return
                kind, payload = msg
            self.dispatch(kind, sender, payload, src, now)
        except Reject as r:
            self.bump("rejects", r.reason)
            self.log(f"reject {r.reason} {name} from {src}")

    def receive_sealed(self, d: bytes, src, now: float):
        if len(d) > DATAGRAM_MAX:
            raise Reject("oversize")
        if len(d) < SEALED_MIN:
            raise Reject("truncated")
        if d[4] != VERSION:
            raise Reject("unsupportedVersion")
        if d[6] != 0:
            raise Reject("reservedFlags")
        if d[7:39] != self.mesh:
            raise Reject("wrongMesh")
        sender, seq = d[39:71], u64(d, 71)
        if sender not in self.admitted:
            raise Reject("notMember")
        if sender == self.pk:
            raise Reject("noPairKey")
        win = self.replay.get(sender)
        if win is not None and win.check(seq):
            raise Reject(win.check(seq))
        key = self.pair_keys.get(sender)
        if key is None:
            key = pair_key(self.pk, self.sk, sender, self.mesh, sender_is_own=False)
            if key is None:
                raise Reject("noPairKey")
            self.pair_keys[sender] = key
        nonce = bytes(16) + struct.pack("<Q", seq)
        pt = self.s.xchacha_open(key, nonce, d[SEALED_HEADER:], d[:SEALED_HEADER])
        if pt is None:
            raise Reject("sealedOpenFailed")
        if win is None:
            win = self.replay[sender] = ReplayWindow()
        win.record(seq)
        self.c["sealed_opened"] += 1
        self.bump("messages_in", "sealed")  # bulk: verified and counted, not served

    def reassemble(self, sender: bytes, seq: int, p: bytes, now: float):
        if len(p) < CHUNK_HEADER:
            raise Reject("malformedPayload")
        mid, inner, idx, count, total = struct.unpack_from("<QBHHI", p, 0)
        if inner in (KIND["chunk"], SEALED_KIND):
            raise Reject("malformedPayload")
        if inner not in KINDS:
            raise Reject("unknownKind")
        if total > MESSAGE_MAX:
            raise Reject("oversize")
        if total <= PAYLOAD_MAX:
            raise Reject("malformedPayload")
        want = (total + CHUNK_DATA - 1) // CHUNK_DATA
        if count != want:
            raise Reject("lengthMismatch")
        if idx >= count:
            raise Reject("malformedPayload")
        data = p[CHUNK_HEADER:]
        exp = CHUNK_DATA if idx < count - 1 else total - CHUNK_DATA * (count - 1)
        if len(data) != exp:
            raise Reject("lengthMismatch")
        if seq != mid + idx:
            raise Reject("inconsistentChunk")
        k = (sender, mid)
        if k in self.done_msgs:
            return None
        buf = self.reasm.get(k)
        if buf is None:
            for key in [key for key, b in self.reasm.items() if now - b["t"] > 5.0]:
                del self.reasm[key]
            buf = self.reasm[k] = {"kind": inner, "total": total, "parts": {}, "t": now}
        if buf["kind"] != inner or buf["total"] != total:
            raise Reject("inconsistentChunk")
        if idx in buf["parts"]:
            if buf["parts"][idx] != data:
                raise Reject("inconsistentChunk")
            return None
        buf["parts"][idx] = data
        if len(buf["parts"]) < count:
            return None
        del self.reasm[k]
        self.done_msgs.append(k)
        self.done_msgs = self.done_msgs[-64:]
        return inner, b"".join(buf["parts"][i] for i in range(count))

    def dispatch(self, kind: int, sender: bytes, payload: bytes, src, now: float):
        name = KINDS[kind]
        if kind not in (KIND["ping"], KIND["ack"], KIND["pingReq"], KIND["membershipSync"],
                        KIND["leave"], KIND["beacon"]):
            self.bump("messages_in", name)  # agreement, log sync, releases: counted only
            return
        msg = decode_membership(kind, payload)
        self.bump("messages_in", name)
        if self.left:
            return
        if kind == KIND["ping"]:
            if msg["target"] != self.pk:
                return  # addressed to someone else (an address may have been reused)
            # its updates first (a bad signature ends the message), then the sender's signed
            # statement "alive at inc and addr"; the ack carries our own statement first
            if self.merge_all(msg["updates"], now):
                self.merge({"id": sender, "inc": msg["inc"], "status": ALIVE, "addr": msg["addr"],
                            "accuser": None, "sig": msg["sig"]}, now)
            self.send_ack(msg["probe"], src, first=self.self_update())
        elif kind == KIND["ack"]:
            self.merge_all(msg["updates"], now)
            pid = msg["probe"]
            if pid == 0:
                return
            cp = self.cur_probe
            if cp and cp["id"] == pid and not cp["acked"]:
                cp["acked"] = True
                self.c["probes_acked"] += 1
                if cp["indirect"]:
                    self.c["probes_acked_indirectly"] += 1
                self.awareness = max(0, self.awareness - 1)
                self.probe_again_soon(self.members.get(cp["target"]))
            relay = self.relays.pop(pid, None)
            if relay:
                self.c["acks_forwarded"] += 1
                # the target's statement we hold it by (alive or left) goes first
                tm = self.members.get(relay["target"])
                first = None
                if tm is not None and tm.status in (ALIVE, LEFT) and tm.sig:
                    first = {"id": tm.id, "inc": tm.inc, "status": tm.status, "addr": tm.addr,
                             "accuser": None, "sig": tm.sig}
                self.send_ack(relay["probe"], relay["addr"], first=first)
        elif kind == KIND["pingReq"]:
            self.c["ping_reqs_served"] += 1
            pid = self.new_probe_id()
            self.relays[pid] = {"probe": msg["probe"], "addr": src, "target": msg["target"],
                                "until": now + self.probe_interval}
            tgt = self.members.get(msg["target"])
            if tgt is None:
                tgt = Member(msg["target"], 0, ALIVE, msg["addr"], now)
            self.send_ping(tgt, pid, addr=msg["addr"])
        elif kind == KIND["membershipSync"]:
            for u in msg["updates"]:
                if u["status"] == DEAD:
                    # a dead entry in a sync only starts a suspicion, accused by its sender
                    u = dict(u, status=SUSPECT, accuser=sender)
                elif u["status"] in (ALIVE, LEFT):
                    if not self.merge_all([u], now):
                        break  # a bad signature ends the message
                    continue
                self.merge(u, now)
            stated = next((u["inc"] for u in msg["updates"] if u["id"] == sender), None)
            if not msg["reply"]:
                self.send_sync(src, reply=True,
                               requester=None if stated is None else (sender, stated))
            elif stated is not None:
                own = self.statement_to_pass(sender, stated)
                if own:  # its reply states less than we hold: its own statement, as gossip
                    self.send(KIND["ack"], struct.pack("<Q", 0) + enc_updates([own]), src)
        elif kind == KIND["leave"]:
            if sender in self.members:
                self.merge({"id": sender, "inc": msg["inc"], "status": LEFT, "addr": msg["addr"],
                            "accuser": None, "sig": msg["sig"]}, now)
        elif kind == KIND["beacon"]:
            m = self.members.get(sender)
            if m is None or m.status not in (ALIVE, SUSPECT):
                self.send_sync(msg["addr"], reply=False)

    # --- merging (Membership catalog, "Joining": "Merging updates", "Refuting") ------------

    def merge_all(self, ups, now) -> bool:
        """Merges in order; an update whose signature does not verify ends the message (an
        honest member relays only statements it verified). False then."""
        for u in ups:
            refused = self.c["statements_refused"]
            self.merge(u, now)
            if self.c["statements_refused"] != refused:
                return False
        return True

    def probe_next(self, mid):
        """A member that became suspect here is probed next: its entries in the rest of the
        round move to the front (Joining, "Probing and the routing of acks")."""
        self.probe_order = [mid] + [x for x in self.probe_order if x != mid]

    def probe_again_soon(self, m):
        """A probe of a member held suspect ended and it is still suspect: probed again after one
        other member, at most SUSPECT_REPROBES_MAX times in one suspicion (Joining, "Probing and
        the routing of acks"): its own remaining entries go, and an extra entry is put right after
        the round's next entry of another member held alive or suspect; when none is left, a new
        round first (its own entry removed), the extra entry second in it."""
        if m is None or m.status != SUSPECT or m.reprobes >= SUSPECT_REPROBES_MAX:
            return
        m.reprobes += 1

        def eligible(mid):
            other = self.members.get(mid)
            return mid != m.id and mid != self.pk and other is not None and other.status in (ALIVE, SUSPECT)

        for attempt in range(2):
            self.probe_order = [mid for mid in self.probe_order if mid != m.id]
            nxt = next((i for i, mid in enumerate(self.probe_order) if eligible(mid)), None)
            if nxt is not None:
                self.probe_order.insert(nxt + 1, m.id)
                return
            if attempt == 0:
                self.new_probe_round()
        self.probe_order.insert(0, m.id)  # no other member to probe

    def set_status(self, m: Member, status: int, inc: int, addr, accuser, now):
        old = m.status
        m.status, m.inc = status, inc
        if addr is not None:
            m.addr = addr
        m.accuser = accuser if status == SUSPECT else None
        if old != status:
            m.changed = now
            self.event(f"member {m.id.hex()[:16]} {STATUS_NAMES[old]} -> "
                       f"{STATUS_NAMES[status]} inc {inc} at {fmt_addr(m.addr)}")
        if status == SUSPECT:
            if old != SUSPECT:
                m.susp_start = now
                m.susp_timeouts = self.suspicion_timeout()
                m.confirmations = {accuser} if accuser else set()
                m.reprobes = 0
        else:
            m.susp_start = None
            m.susp_timeouts = None
            m.confirmations = set()

    def merge(self, u: dict, now: float):
        mid = u["id"]
        if mid not in self.admitted:
            self.c["non_admitted_ignored"] += 1
            return
        st, inc = u["status"], u["inc"]
        if inc > INCARNATION_MAX:
            self.c["incarnations_refused"] += 1
            return
        if mid == self.pk:
            self.about_me(u)
            return
        r = self.members.get(mid)
        if r is None:
            if st != ALIVE or not self.statement_ok(u):
                return  # only a signed alive statement introduces a member
            r = Member(mid, inc, ALIVE, u["addr"], now, u["sig"])
            self.members[mid] = r
            self.event(f"member {mid.hex()[:16]} joined alive inc {inc} at {fmt_addr(u['addr'])}")
            self.enqueue(u)
            # Joins the current round at a random place of the rest (Joining, "Probing").
            self.probe_order.insert(self.rng.randint(0, len(self.probe_order)), mid)
            return
        if st == ALIVE:
            if inc > r.inc and self.statement_ok(u):
                r.sig = u["sig"]
                self.set_status(r, ALIVE, inc, u["addr"], None, now)
                self.enqueue(u)
        elif st == LEFT:
            if inc >= r.inc and r.status in (ALIVE, SUSPECT) and self.statement_ok(u):
                r.sig = u["sig"]
                self.set_status(r, LEFT, inc, u["addr"], None, now)
                self.enqueue(u)
        elif inc > r.inc:
            # suspect or dead above what the member stated here
            self.c["incarnations_refused"] += 1
        elif inc < r.inc:
            return
        elif st == SUSPECT:
            if r.status == ALIVE:
                self.set_status(r, SUSPECT, inc, None, u["accuser"], now)
                self.c["suspicions_started"] += 1
                self.enqueue(dict(u, addr=r.addr))
                # a member that just became suspect is probed next (not while a probe of it runs)
                cp = self.cur_probe
                if not (cp and not cp["acked"] and cp["target"] == mid):
                    self.probe_next(mid)
            elif r.status == SUSPECT:
                self.confirm(r, u["accuser"])
        elif st == DEAD:
            if r.status in (ALIVE, SUSPECT):
                self.set_status(r, DEAD, inc, None, None, now)
                self.enqueue(dict(u, addr=r.addr))

    def about_me(self, u: dict):
        st, inc = u["status"], u["inc"]
        if (st in (SUSPECT, DEAD, LEFT) and inc >= self.inc) or (st == ALIVE and inc > self.inc):
            if self.left:
                return
            if st in (ALIVE, LEFT):
                if not self.statement_ok(u):
                    return  # our own statement (an earlier life's) is taken at any height
            elif inc > self.inc + INCARNATION_STEP:
                self.c["incarnations_refused"] += 1
                return
            self.inc = inc + 1
            self.self_update()
            if st != ALIVE:  # passing an alive claim (our earlier life's) is no refutation
                self.c["refutations"] += 1
                self.awareness = min(self.awareness_max - 1, self.awareness + 1)
            self.event(f"refuting {STATUS_NAMES[st]} at inc {inc}: now alive at inc {self.inc}")
            self.enqueue(self.self_update())
        elif st != ALIVE:
            # a stale suspicion or death: gossip the current alive record again, unless pending
            if not any(q["u"]["id"] == self.pk and q["u"]["inc"] == self.inc for q in self.queue):
                self.enqueue(self.self_update())

    # --- timers ---------------------------------------------------------------------------

    def new_probe_id(self) -> int:
        while True:
            p = self.rng.getrandbits(64)
            if p:
                return p

    def suspicion_timeout(self) -> tuple:
        """Joining.md, "The suspicion timeout": min, max and K, fixed when a suspicion starts,
        n counting the members held alive or suspect, this node included."""
        n = max(1, self.n_members())
        tmin_ms = math.floor(self.smin * max(1.0, math.log10(n)) * self.probe_interval_ms)
        k = self.smin - 2
        if n - 2 < k:
            k = 0
        return tmin_ms, self.smax * tmin_ms, k

    def confirm(self, m: Member, accuser):
        """A suspect update naming an accuser not yet counted: at most K are counted (the first
        accuser does not count again), and each counted one is queued for gossip."""
        _, _, k = m.susp_timeouts
        if accuser and accuser not in m.confirmations and len(m.confirmations) - 1 < k:
            m.confirmations.add(accuser)
            self.enqueue({"id": m.id, "inc": m.inc, "status": SUSPECT, "addr": m.addr,
                          "accuser": accuser})

    def tick(self, now: float):
        if self.left:
            return
        # suspicion timeouts and reaping, first (as the Swift node: before the probe's end)
        for m in list(self.members.values()):
            if m.status == SUSPECT and m.susp_start is not None:
                tmin_ms, tmax_ms, k = m.susp_timeouts
                c = max(0, len(m.confirmations) - 1)
                if k >= 1:
                    frac = math.log(c + 1) / math.log(k + 1)
                    to = max(tmin_ms, math.floor(tmax_ms - (tmax_ms - tmin_ms) * frac)) / 1000
                else:
                    to = tmin_ms / 1000
                if now - m.susp_start >= to:
                    self.c["deaths_declared"] += 1
                    self.set_status(m, DEAD, m.inc, None, None, now)
                    self.enqueue({"id": m.id, "inc": m.inc, "status": DEAD, "addr": m.addr,
                                  "accuser": None})
            if m.status in (DEAD, LEFT) and now - m.changed >= self.dead_retention:
                del self.members[m.id]
        # join: no other live member known, and seeds
        if not self.live_others() and self.seeds and now >= self.next_join:
            for s in self.seeds:
                if s != self.advertised:
                    self.c["join_requests"] += 1
                    self.send_sync(s, reply=False)
            self.next_join = now + 2 * self.probe_interval
        # the current probe
        cp = self.cur_probe
        if cp:
            tm = self.members.get(cp["target"])
            if not cp["acked"] and not cp["indirect"] and now >= cp["timeout_at"] and tm:
                helpers = [m for m in self.live_others() if m.id != cp["target"]
                           and m.status == ALIVE]
                self.rng.shuffle(helpers)
                pl = struct.pack("<Q", cp["id"]) + cp["target"] + enc_addr(tm.addr)
                for h in helpers[:self.indirect]:
                    self.c["indirect_probes_sent"] += 1
                    self.send(KIND["pingReq"], pl, h.addr)
                cp["indirect"] = True
            if now >= cp["end"]:
                if not cp["acked"]:
                    self.c["probes_failed"] += 1
                    if not (tm and tm.status == SUSPECT):  # a suspect's failed probe: not our health
                        self.awareness = min(self.awareness_max - 1, self.awareness + 1)
                    if tm and tm.status == ALIVE:
                        self.event(f"probe of {tm.id.hex()[:16]} failed: suspect")
                        self.set_status(tm, SUSPECT, tm.inc, None, self.pk, now)
                        self.c["suspicions_started"] += 1
                        self.enqueue({"id": tm.id, "inc": tm.inc, "status": SUSPECT,
                                      "addr": tm.addr, "accuser": self.pk})
                        self.probe_next(tm.id)  # a new suspect is probed next
                    elif tm and tm.status == SUSPECT:
                        # the prober names itself: a confirmation when it is a new accuser
                        self.confirm(tm, self.pk)
                        self.probe_again_soon(tm)
                self.cur_probe = None
        # start a probe once per protocol period
        if now >= self.next_probe and self.cur_probe is None:
            period = self.probe_interval * (self.awareness + 1)
            target = self.pick_probe_target()
            if target:
                pid = self.new_probe_id()
                self.cur_probe = {"id": pid, "target": target.id, "acked": False,
                                  "indirect": False,
                                  "timeout_at": now + self.probe_timeout * (self.awareness + 1),
                                  "end": now + period}
                self.c["probes_sent"] += 1
                self.send_ping(target, pid)
            self.next_probe = now + period
        # standalone gossip
        if self.gossip_interval > 0 and now >= self.next_gossip:
            self.next_gossip = now + self.gossip_interval
            if self.queue:
                tg = [m for m in self.live_others()]
                self.rng.shuffle(tg)
                for m in tg[:self.fanout]:
                    if not self.queue:
                        break
                    self.c["gossip_sends"] += 1
                    self.send_ack(0, m.addr)
        # push-pull
        if now >= self.next_push_pull:
            self.next_push_pull = now + self.push_pull
            alive = [m for m in self.live_others() if m.status == ALIVE]
            dead = [m for m in self.members.values() if m.status == DEAD]
            for pool in (alive, dead):
                if pool:
                    self.c["push_pulls"] += 1
                    self.send_sync(self.rng.choice(pool).addr, reply=False)
        for pid in [p for p, r in self.relays.items() if now >= r["until"]]:
            del self.relays[pid]

    def new_probe_round(self):
        """A new round of the round robin: the members held alive or suspect, shuffled."""
        ids = [m.id for m in self.live_others()]
        self.rng.shuffle(ids)
        self.probe_order = ids

    def pick_probe_target(self) -> Member | None:
        while True:
            if not self.probe_order:
                self.new_probe_round()
                if not self.probe_order:
                    return None
            mid = self.probe_order.pop(0)
            m = self.members.get(mid)
            if m and m.id != self.pk and m.status in (ALIVE, SUSPECT):
                return m

    def do_leave(self):
        self.inc += 1
        me = self.members[self.pk]
        me.inc, me.status, me.sig = self.inc, LEFT, self.sign_statement(LEFT, self.inc)
        targets = [m for m in self.live_others() if m.status == ALIVE]
        self.rng.shuffle(targets)
        for m in targets[:LEAVE_ANNOUNCE_MAX]:
            self.send(KIND["leave"], struct.pack("<Q", self.inc) + enc_addr(self.advertised) + me.sig,
                      m.addr)
        self.left = True
        self.event(f"left at incarnation {self.inc} (told {len(targets[:LEAVE_ANNOUNCE_MAX])})")

    # --- main loop ------------------------------------------------------------------------

    def run(self):
        deadline = self.t0 + self.args.duration
        self.log(f"key {self.pk.hex()} mesh {self.mesh.hex()} listen {fmt_addr(self.listen)} "
                 f"epoch {self.epoch} in_genesis {self.in_genesis}")
        if self.args.ready_file:
            with open(self.args.ready_file, "w") as f:
                json.dump({"key": self.pk.hex(), "listen": fmt_addr(self.listen),
                           "advertised": fmt_addr(self.advertised), "mesh_id": self.mesh.hex(),
                           "pid": os.getpid()}, f)
        stop = False

        import signal

        def on_term(*_):
            nonlocal stop
            stop = True
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        while not stop:
            now = time.monotonic()
            if now >= deadline:
                break
            r, _, _ = select.select([self.sock], [], [], 0.02)
            if r:
                for _ in range(64):
                    try:
                        d, src = self.sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    self.receive(d, (src[0], src[1]), time.monotonic())
            self.tick(time.monotonic())
            for m in self.members.values():
                if m.id != self.pk and m.status == ALIVE:
                    self.alive_since.setdefault(m.id.hex(), now - self.t0)
                else:
                    self.alive_since.pop(m.id.hex(), None)
        view = self.view()
        if self.args.leave:
            self.do_leave()
            # linger briefly to answer what arrives (no new probes)
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                r, _, _ = select.select([self.sock], [], [], 0.05)
                if r:
                    try:
                        d, src = self.sock.recvfrom(65535)
                        self.receive(d, (src[0], src[1]), time.monotonic())
                    except BlockingIOError:
                        pass
        return self.summary(view)

    def view(self):
        return [{"id": m.id.hex(), "fingerprint": fingerprint(m.id), "address": fmt_addr(m.addr),
                 "state": STATUS_NAMES[m.status], "incarnation": m.inc,
                 "is_self": m.id == self.pk,
                 "alive_since_s": None if m.id == self.pk else
                 (None if m.id.hex() not in self.alive_since
                  else round(self.alive_since[m.id.hex()], 3))}
                for m in sorted(self.members.values(), key=lambda m: m.id)]

    def summary(self, view):
        alive = [m for m in view if m["state"] == "alive" and not m["is_self"]]
        return {
            "node_id": self.pk.hex(), "fingerprint": fingerprint(self.pk),
            "in_genesis": self.in_genesis, "mesh_id": self.mesh.hex(),
            "canonical_genesis_bytes": len(self.canonical),
            "listen": fmt_addr(self.listen), "advertised": fmt_addr(self.advertised),
            "boot_epoch": self.epoch, "incarnation": self.inc, "left": self.left,
            "uptime_s": round(time.monotonic() - self.t0, 3),
            "members": view,
            "alive_peers": {m["id"]: m["address"] for m in alive},
            "counters": self.c,
            "rejects_total": sum(self.c["rejects"].values()),
            "events": self.events[-100:],
        }


# ---------------------------------------------------------------------------------------------
# Self-test: the catalogs' worked examples
# ---------------------------------------------------------------------------------------------

def _hexblock(s: str) -> bytes:
    return bytes.fromhex("".join(ln.split("#")[0] for ln in s.strip().splitlines()))


def self_test() -> int:
    s = sodium()
    fails = []

    def check(name, cond):
        print(f"  {'ok ' if cond else 'FAIL'} {name}")
        if not cond:
            fails.append(name)

    seedA, seedB, seedC = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
    A, skA = s.seed_keypair(seedA)
    B, skB = s.seed_keypair(seedB)
    C, _ = s.seed_keypair(seedC)
    check("example-keys A", A.hex() == "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c")
    check("example-keys B", B.hex() == "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394")
    check("example-keys C", C.hex() == "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1")
    mesh = mesh_id_of(b"abc")
    check("example mesh id", mesh.hex() == "3b184ec720cf359fc0c8a2d10920623835f76c48e2bdaec66884da026bda980a")
    check("key fingerprint", fingerprint(A) == "55ce-2ab3-284e-c473")
    leave = envelope_encode(0x16, mesh, A, skA, 1 << 32 | 5, struct.pack("<Q", 1))
    check("envelope-leave signature", leave[-64:].hex().startswith("2e9cc52f2cece834e660ca1766096643"))
    check("envelope-leave decodes", check_header(leave, mesh)[0] == 0x16)
    addrA, addrB = ("10.99.0.1", 7946), ("10.99.0.2", 7946)
    sigA = s.sign(skA, stmt_message(mesh, A, 0, ALIVE, addrA))
    check("statement-signed", stmt_message(mesh, A, 0, ALIVE, addrA)[30:] ==
          mesh + A + bytes(8) + b"\x00" + enc_addr(addrA))
    check("update-alive signature", sigA.hex().startswith("8420b5b1d128d9a5aed310ffa6aa9595"))
    aliveA = {"id": A, "inc": 0, "status": ALIVE, "addr": addrA, "accuser": None, "sig": sigA}
    ping_payload = struct.pack("<Q", 1) + B + struct.pack("<Q", 0) + enc_addr(addrA) + sigA + \
        enc_updates([aliveA])
    ping = envelope_encode(0x11, mesh, A, skA, 1 << 32 | 1, ping_payload)
    check("ping-datagram length 232", len(ping_payload) == 232)
    check("ping-datagram signature", ping[-64:].hex().startswith("c8d4d29280af4d571b262fcb5137d4f0"))
    check("ping-datagram decodes", decode_membership(0x11, ping_payload)["updates"][0] == aliveA)
    check("address-ipv4", enc_addr(addrA).hex() == "040a6300010a1f")
    check("address-ipv6", enc_addr(("fe80::1", 7946)).hex() == "06fe80" + "00" * 13 + "010a1f")
    upd = enc_update({"id": B, "inc": 2, "status": SUSPECT, "addr": addrB, "accuser": A})
    check("update-suspect", upd == B + struct.pack("<QB", 2, 1) + enc_addr(addrB) + A)
    jr = bytes([0]) + struct.pack("<H", 1) + enc_update(aliveA)
    check("join-request decodes", decode_membership(0x14, jr)["updates"][0]["addr"] == addrA)
    sealed_hex = """50 4d 53 48 01 50 00
3b 18 4e c7 20 cf 35 9f c0 c8 a2 d1 09 20 62 38 35 f7 6c 48 e2 bd ae c6 68 84 da 02 6b da 98 0a
8a 88 e3 dd 74 09 f1 95 fd 52 db 2d 3c ba 5d 72 ca 67 09 bf 1d 94 12 1b f3 74 88 01 b4 0f 6f 5c
07 00 00 00 01 00 00 00
08 8b 37 1b e9 cc 47 0a 9a e4 6b f6 a0 a2 b5 89 bd 15 01 23 43 fe
01 7a b2 f4 85 da aa 67 00 16 93 c8 01 27 5a 08"""
    sealed = _hexblock(sealed_hex)
    k_sr = pair_key(A, skA, B, mesh, sender_is_own=True)
    k_rs = pair_key(B, skB, A, mesh, sender_is_own=True)
    check("pair key sender->receiver",
          k_sr and k_sr.hex() == "f91adf195b22023a29bdc990e35fe0fbdee019296a2cab91fd0c9821733ac845")
    check("pair key receiver->sender",
          k_rs and k_rs.hex() == "c96eeb6dbf1e64586c5a5621d08a9b18ade82628cc15215cd306c34b53a1826c")
    k_recv = pair_key(B, skB, A, mesh, sender_is_own=False)
    pt = s.xchacha_open(k_recv, bytes(16) + struct.pack("<Q", 1 << 32 | 7), sealed[79:], sealed[:79])
    check("sealed-datagram opens", pt == b"PruneMesh bulk piece 0")
    lab = """format: 1
name: "lab"
model: "28x28x1:conv5x32,relu,pool2,conv5x64,relu,pool2,dense2048,relu,dense10"
training:
  epochs_per_round: 1
  batch_size: 64
  learning_rate: 0.02
  optimizer: sgd
  momentum: 0.9
  weight_decay: 0.0005
  augment: flip
  init_seed: 1
pruning:
  boundary: "keep:0.5"
  patience: 2
  max_rounds: 5
  finetune_epochs: 3
  surgery: keep
privacy:
  clip_bound: 64
  noise_multiplier: 5
  delta: 1e-05
  epsilon_budget: 10
  scale_log2: 10
data:
  partition: "dirichlet:0.5"
  seed: 1
membership:
  probe_interval_ms: 1000
  probe_timeout_ms: 500
  indirect_probes: 3
  suspicion_min_multiplier: 4
  suspicion_max_multiplier: 6
  retransmit_multiplier: 4
  push_pull_interval_ms: 30000
  beacon_interval_ms: 2000
  dead_retention_ms: 60000
  gossip_interval_ms: 200
  gossip_fanout: 3
  awareness_max: 8
consensus:
  propose_timeout_ms: 300
  propose_timeout_delta_ms: 100
  prevote_timeout_ms: 100
  prevote_timeout_delta_ms: 100
  precommit_timeout_ms: 100
  precommit_timeout_delta_ms: 100
validators:
  remove_dead_after_ms: 300000
members:
  - key: 8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c
    name: "node-a"
    address: "10.99.0.1:7946"
  - key: 8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394
"""
    cb = genesis_canonical_bytes(genesis_from_yaml(lab, "lab.yaml"))
    check("genesis-lab 441 bytes", len(cb) == 441)
    check("genesis-lab-id", mesh_id_of(cb).hex() ==
          "337e80d8a45240376bb455f846704260e9ea534aa3d5f0bef4945307e3bc8ed6")
    for edit, same in (("keep:0.50", True), ("keep:0.500000", True), ("keep:0.25", False)):
        cb2 = genesis_canonical_bytes(genesis_from_yaml(
            lab.replace('"keep:0.5"', f'"{edit}"'), "lab.yaml"))
        check(f"genesis-edits boundary {edit}", (cb2 == cb) == same)
    cb3 = genesis_canonical_bytes(genesis_from_yaml(lab.replace("0.02", "2e-2"), "lab.yaml"))
    check("genesis-edits learning_rate 2e-2", cb3 == cb)
    dp = lab + """training_privacy:
  enabled: true
  clip_norm: 1
  noise_multiplier: 1.1
  sample_rate: 0.004
  delta: 1e-5
  epsilon_max: 8
"""
    cbd = genesis_canonical_bytes(genesis_from_yaml(dp, "lab.yaml"))
    check("genesis-lab-dp-id", len(cbd) == 483 and mesh_id_of(cbd).hex() ==
          "d0d522a9e340aaf6495a925f194f92ae1f3cad7f4b545e5e8864c0238aaabeaf")
    fed = lab + "federation:\n  aggregation: fedavg\n"
    cbf = genesis_canonical_bytes(genesis_from_yaml(fed, "lab.yaml"))
    check("genesis-lab-federation-id", len(cbf) == 450 and mesh_id_of(cbf).hex() ==
          "554404014c1cae7dab83f44167e8c4072f7ceb754a31701367bd1f04657b2b3e")
    cbi = genesis_canonical_bytes(genesis_from_yaml(fed + "  encoding: int8\n", "lab.yaml"))
    check("genesis-lab-federation-int8-id", len(cbi) == 457 and mesh_id_of(cbi).hex() ==
          "8c994ed68a63c7c23d6ec62e686150dd8bbd52c66ca0433b9cd3904ffb2d918d")
    cbr = genesis_canonical_bytes(genesis_from_yaml(fed + "  encoding: int8\n  server_rate: 1.5\n", "lab.yaml"))
    check("genesis-lab-federation-rate-id", len(cbr) == 466 and mesh_id_of(cbr).hex() ==
          "b0e942f987a605b424b6e7548b1a0a2c7dd8f5aaad27ef540a4bfc457008edf8")
    cb1 = genesis_canonical_bytes(genesis_from_yaml(fed + "  encoding: f32\n  server_rate: 1\n", "lab.yaml"))
    check("federation defaults are not encoded", cb1 == cbf)
    cbn = genesis_canonical_bytes(genesis_from_yaml(fed + "  encoding:\n  server_rate: ~\n", "lab.yaml"))
    check("federation nulls are absent fields", cbn == cbf)
    w = ReplayWindow()
    w.record(10)
    check("replay: same number replayed", w.check(10) == "replayed")
    w.record(10 + 2000)
    check("replay: below window too old", w.check(10) == "sequenceTooOld")
    # A suspect's re-probe (Joining, "Probing and the routing of acks"): its own remaining
    # entries go, the extra entry after the round's next other member held alive or suspect (a
    # left member's stale entry skipped), a new round first when none is left; three at most.
    p = Peer.__new__(Peer)
    p.pk, p.rng = A, random.Random(1)
    ids = [bytes([i]) * 32 for i in range(1, 6)]
    p.members = {mid: Member(mid, 0, ALIVE, None, 0.0) for mid in ids}
    p.members[ids[1]].status = LEFT
    sus = p.members[ids[0]]
    sus.status = SUSPECT
    p.probe_order = [ids[1], ids[0], ids[2], ids[3]]
    p.probe_again_soon(sus)
    check("reprobe: after the next other live member, own entry gone",
          p.probe_order == [ids[1], ids[2], ids[0], ids[3]])
    p.probe_order = [ids[1]]
    p.probe_again_soon(sus)
    check("reprobe: only stale entries left: second in a new round",
          len(p.probe_order) == 4 and p.probe_order[1] == ids[0] and p.probe_order.count(ids[0]) == 1)
    p.probe_again_soon(sus)
    before = list(p.probe_order)
    p.probe_again_soon(sus)
    check("reprobe: three per suspicion", sus.reprobes == SUSPECT_REPROBES_MAX and p.probe_order == before)

    print("self-test:", "FAILED " + ", ".join(fails) if fails else "all passed")
    return 1 if fails else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--self-test", action="store_true", help="recompute the catalogs' examples")
    ap.add_argument("--key", help="secret key file written by `prunemesh keygen`")
    ap.add_argument("--genesis", help="the mesh genesis (YAML)")
    ap.add_argument("--listen", default="127.0.0.1:0", help="UDP HOST:PORT to bind")
    ap.add_argument("--advertise", help="HOST:PORT to announce (default: the bound address)")
    ap.add_argument("--join", action="append", default=[], help="seed HOST:PORT (repeatable)")
    ap.add_argument("--state-dir", default="peer-state", help="holds the boot-epoch file")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds to run")
    ap.add_argument("--leave", action="store_true", help="send a leave at the end")
    ap.add_argument("--expect-mesh-id", help="refuse to start unless the mesh id is this")
    ap.add_argument("--print-mesh-id", action="store_true", help="print the mesh id and exit")
    ap.add_argument("--summary", help="also write the JSON summary to this file")
    ap.add_argument("--ready-file", help="write key and bound address here once listening")
    ap.add_argument("--ignore-from", action="append", default=[], metavar="KEYHEX",
                    help="test hook: drop every datagram from this member (one-way loss), so "
                         "direct probes both ways fail and indirect probes must do the work")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test()
    if not a.genesis:
        ap.error("--genesis is required")
    if a.print_mesh_id:
        with open(a.genesis, encoding="utf-8") as f:
            print(mesh_id_of(genesis_canonical_bytes(genesis_from_yaml(f.read(), a.genesis))).hex())
        return 0
    if not a.key:
        ap.error("--key is required")
    try:
        peer = Peer(a)
    except YamlError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    out = peer.run()
    text = json.dumps(out, indent=1, sort_keys=True)
    if a.summary:
        with open(a.summary + ".tmp", "w") as f:
            f.write(text + "\n")
        os.rename(a.summary + ".tmp", a.summary)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
