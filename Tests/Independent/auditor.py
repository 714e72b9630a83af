#!/usr/bin/env python3
"""Independent offline auditor of PruneMesh decision logs.

Written from the documentation only (README.md, the *.docc catalogs, netconfig/ and
`prunemesh help`), never from the Swift sources, to show that the documentation is a
sufficient specification. Python 3.11 standard library plus libsodium and glibc's libm
(lgamma, for the record-level accountant's bits) through ctypes.

Covers the 188-byte model update announcements with their DP-SGD training steps (judged per
kind: an update against the contributor's previous update, a release against its previous
release; the recorded steps are the most either stated) and the genesis
`federation.encoding` (tag 3 for int8).

    python3 auditor.py LOG [--mesh GENESIS] [--json]

Mirrors `prunemesh audit`: exit 0 and `ok: N entries, head HASH` when the log is valid;
exit 1 and `audit FAILED at entry I (height H)[, byte offset O]: REASON` on stderr when
not (exit 1 too for an unreadable or invalid genesis, exit 64 on a usage error).
Where the documentation left a point open, the reading taken is marked `GAP:` and
listed in /tmp/indep/auditor-gaps.md (and, for the 188-byte updates and the encoding,
/tmp/indep2/auditor-gaps.md).
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import re
import struct
import sys

# ---------------------------------------------------------------------------------------
# libsodium: BLAKE2b-256 (crypto_generichash) and Ed25519 verification
# (Wire catalog, "Conventions": every hash and signature covers len(tag) ‖ tag ‖ message)
# ---------------------------------------------------------------------------------------

_sodium = ctypes.CDLL("libsodium.so.23")
if _sodium.sodium_init() < 0:
    raise SystemExit("libsodium: sodium_init failed")
_sodium.crypto_generichash.argtypes = [
    ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_ulonglong,
    ctypes.c_char_p, ctypes.c_size_t]
_sodium.crypto_sign_ed25519_verify_detached.argtypes = [
    ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
_sodium.crypto_core_ed25519_is_valid_point.argtypes = [ctypes.c_char_p]

TAG_MESH_ID = b"prunemesh/v1/mesh-id"
TAG_INVITE = b"prunemesh/v1/invite"
TAG_RELEASE_DIGEST = b"prunemesh/v1/release-digest"
TAG_VOTE = b"prunemesh/v1/vote"
TAG_LOG_ENTRY = b"prunemesh/v1/log-entry"
TAG_CONTRIBUTION = b"prunemesh/v1/contribution"
TAG_DECISION = b"prunemesh/v1/decision"
TAG_LOG_RECORD = b"prunemesh/v1/log-record"
TAG_MODEL_UPDATE = b"prunemesh/v1/model-update"  # GAP: not in the Envelope tag table


def blake2b256(data: bytes) -> bytes:
    out = ctypes.create_string_buffer(32)
    if _sodium.crypto_generichash(out, 32, data, len(data), None, 0) != 0:
        raise RuntimeError("crypto_generichash failed")
    return out.raw


def tagged_hash(tag: bytes, message: bytes) -> bytes:
    return blake2b256(bytes([len(tag)]) + tag + message)


def verify(tag: bytes, message: bytes, signature: bytes, key: bytes) -> bool:
    if len(signature) != 64 or len(key) != 32:
        return False
    m = bytes([len(tag)]) + tag + message
    return _sodium.crypto_sign_ed25519_verify_detached(signature, m, len(m), key) == 0


def valid_point(key: bytes) -> bool:
    # GAP: "a valid Ed25519 point" read as libsodium's is_valid_point (on the curve,
    # canonical, main subgroup, not small order).
    return _sodium.crypto_core_ed25519_is_valid_point(key) == 1


# ---------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------

class GenesisError(Exception):
    pass


class Fault(Exception):
    """A failing entry: the audit's first_error."""

    def __init__(self, code: str, reason: str, offset: int | None = None, header: bool = False):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.offset = offset
        self.header = header  # the file header: no entry index


class Malformed(Exception):
    pass


class LogUnreadable(Exception):
    def __init__(self, report):
        super().__init__(report["first_error"]["reason"])
        self.report = report


# ---------------------------------------------------------------------------------------
# A strict reader for the YAML subset a genesis uses (MeshConfig catalog, "Reading the
# file"): block mappings, one block sequence of mappings (members), plain, single- and
# double-quoted scalars, comments. Anchors, aliases, tags, flow collections, block scalars,
# duplicate keys are refused.
# ---------------------------------------------------------------------------------------

class Scalar:
    def __init__(self, text: str, quoted: bool, line: int, col: int):
        self.text, self.quoted, self.line, self.col = text, quoted, line, col


class YMap(dict):
    def __init__(self, line: int, col: int):
        super().__init__()
        self.line, self.col = line, col
        self.positions: dict[str, tuple[int, int]] = {}


class YList(list):
    def __init__(self, line: int, col: int):
        super().__init__()
        self.line, self.col = line, col


def _strip_comment(s: str) -> str:
    quote = None
    i = 0
    while i < len(s):
        c = s[i]
        if quote:
            if quote == '"' and c == "\\":
                i += 2
                continue
            if c == quote:
                if quote == "'" and i + 1 < len(s) and s[i + 1] == "'":
                    i += 2
                    continue
                quote = None
        else:
            if c in "\"'" and (i == 0 or s[i - 1] in " \t:-"):
                quote = c
            elif c == "#" and (i == 0 or s[i - 1] in " \t"):
                return s[:i].rstrip()
        i += 1
    return s.rstrip()


def _parse_scalar(raw: str, fname: str, line: int, col: int) -> Scalar:
    raw = raw.strip()
    where = f"{fname}:{line}:{col}"
    if raw.startswith('"'):
        out = []
        i = 1
        while True:
            if i >= len(raw):
                raise GenesisError(f"{where}: unterminated double-quoted string")
            c = raw[i]
            if c == '"':
                break
            if c == "\\":
                i += 1
                if i >= len(raw):
                    raise GenesisError(f"{where}: bad escape")
                e = raw[i]
                simple = {'"': '"', "\\": "\\", "/": "/", "n": "\n", "t": "\t", "r": "\r",
                          "0": "\0", "a": "\a", "b": "\b", "e": "\x1b", "f": "\f", "v": "\v",
                          " ": " ", "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}
                if e in simple:
                    out.append(simple[e])
                    i += 1
                    continue
                widths = {"x": 2, "u": 4, "U": 8}
                if e in widths:
                    h = raw[i + 1:i + 1 + widths[e]]
                    if len(h) != widths[e] or not re.fullmatch(r"[0-9a-fA-F]+", h):
                        raise GenesisError(f"{where}: bad escape")
                    out.append(chr(int(h, 16)))
                    i += 1 + widths[e]
                    continue
                raise GenesisError(f"{where}: bad escape \\{e}")
            out.append(c)
            i += 1
        if raw[i + 1:].strip():
            raise GenesisError(f"{where}: text after a quoted string")
        return Scalar("".join(out), True, line, col)
    if raw.startswith("'"):
        out = []
        i = 1
        while True:
            if i >= len(raw):
                raise GenesisError(f"{where}: unterminated single-quoted string")
            c = raw[i]
            if c == "'":
                if i + 1 < len(raw) and raw[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(c)
            i += 1
        if raw[i + 1:].strip():
            raise GenesisError(f"{where}: text after a quoted string")
        return Scalar("".join(out), True, line, col)
    if raw[:1] in ("&", "*", "!"):
        raise GenesisError(f"{where}: anchors, aliases and tags are not accepted")
    if raw[:1] in ("[", "{"):
        node, rest = _parse_flow(raw, 0, fname, line, col)
        if raw[rest:].strip():
            raise GenesisError(f"{where}: text after a flow collection")
        return node
    if raw[:1] in ("|", ">", "@", "`", "%"):
        raise GenesisError(f"{where}: only plain or quoted scalars are accepted here")
    return Scalar(raw, False, line, col)


def _parse_flow(raw: str, i: int, fname: str, line: int, col: int):
    """A one-line flow collection ({k: v, …} or […]) starting at raw[i]; returns (node, end).
    GAP: the docs do not say whether flow style is accepted; the binary accepts it."""
    where = f"{fname}:{line}:{col + i}"

    def skip(j):
        while j < len(raw) and raw[j] == " ":
            j += 1
        return j

    def scalar(j, stops):
        j = skip(j)
        if j < len(raw) and raw[j] in "\"'":
            q = raw[j]
            k = j + 1
            while k < len(raw):
                if raw[k] == "\\" and q == '"':
                    k += 2
                    continue
                if raw[k] == q:
                    if q == "'" and k + 1 < len(raw) and raw[k + 1] == "'":
                        k += 2
                        continue
                    break
                k += 1
            if k >= len(raw):
                raise GenesisError(f"{where}: unterminated string")
            return _parse_scalar(raw[j:k + 1], fname, line, col + j), k + 1
        if j < len(raw) and raw[j] in "[{":
            return _parse_flow(raw, j, fname, line, col)
        k = j
        while k < len(raw) and raw[k] not in stops and not (raw[k] == ":" and ":" in stops and
                                                             (k + 1 == len(raw) or raw[k + 1] in " ,}]")):
            k += 1
        return _parse_scalar(raw[j:k].rstrip(), fname, line, col + j), k

    i = skip(i)
    if raw[i] == "{":
        node = YMap(line, col + i)
        i += 1
        while True:
            i = skip(i)
            if i < len(raw) and raw[i] == "}":
                return node, i + 1
            key, i = scalar(i, ",}:")
            i = skip(i)
            if i >= len(raw) or raw[i] != ":" or not isinstance(key, Scalar):
                raise GenesisError(f"{where}: expected `key: value` in a flow mapping")
            if key.text in node:
                raise GenesisError(f"{fname}:{key.line}:{key.col}: {key.text}: duplicate key")
            node.positions[key.text] = (key.line, key.col)
            value, i = scalar(i + 1, ",}")
            node[key.text] = value
            i = skip(i)
            if i < len(raw) and raw[i] == ",":
                i += 1
            elif i < len(raw) and raw[i] == "}":
                return node, i + 1
            else:
                raise GenesisError(f"{where}: unterminated flow mapping")
    node = YList(line, col + i)
    i += 1
    while True:
        i = skip(i)
        if i < len(raw) and raw[i] == "]":
            return node, i + 1
        value, i = scalar(i, ",]")
        node.append(value)
        i = skip(i)
        if i < len(raw) and raw[i] == ",":
            i += 1
        elif i < len(raw) and raw[i] == "]":
            return node, i + 1
        else:
            raise GenesisError(f"{where}: unterminated flow sequence")


def parse_yaml(text: str, fname: str):
    lines = []
    for n, rawline in enumerate(text.split("\n"), 1):
        if "\t" in rawline[: len(rawline) - len(rawline.lstrip(" \t"))]:
            raise GenesisError(f"{fname}:{n}:1: tabs are not accepted for indentation")
        s = _strip_comment(rawline.rstrip("\r"))
        if not s.strip():
            continue
        if s.strip() in ("---", "..."):
            continue
        indent = len(s) - len(s.lstrip(" "))
        lines.append((n, indent, s[indent:]))
    pos = 0

    def parse_block(indent: int):
        nonlocal pos
        n, ind, content = lines[pos]
        if content.startswith("- ") or content == "-":
            return parse_seq(ind)
        return parse_map(ind)

    def split_key(content: str, n: int, col: int):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s+(.*)|)$", content)
        if not m:
            raise GenesisError(f"{fname}:{n}:{col}: expected `key: value`")
        return m.group(1), (m.group(2) or "")

    def parse_map(indent: int, first: tuple | None = None):
        nonlocal pos
        result = YMap(lines[pos][0] if first is None else first[0], indent + 1)
        while True:
            if first is not None:
                n, ind, content = first
                first = None
            else:
                if pos >= len(lines):
                    break
                n, ind, content = lines[pos]
                if ind < indent:
                    break
                if ind > indent:
                    raise GenesisError(f"{fname}:{n}:{ind + 1}: unexpected indentation")
                if content.startswith("- ") or content == "-":
                    raise GenesisError(f"{fname}:{n}:{ind + 1}: unexpected list item")
                pos += 1
            key, rest = split_key(content, n, ind + 1)
            if key in result:
                raise GenesisError(f"{fname}:{n}:{ind + 1}: {key}: duplicate key")
            result.positions[key] = (n, ind + 1)
            if rest.strip():
                result[key] = _parse_scalar(rest, fname, n, ind + 1 + content.index(rest))
            else:
                if pos < len(lines) and (lines[pos][1] > indent or
                                         (lines[pos][1] == indent and lines[pos][2].startswith("-"))):
                    result[key] = parse_block(lines[pos][1])
                else:
                    result[key] = Scalar("", False, n, ind + 1)
        return result

    def parse_seq(indent: int):
        nonlocal pos
        result = YList(lines[pos][0], indent + 1)
        while pos < len(lines):
            n, ind, content = lines[pos]
            if ind < indent:
                break
            if ind > indent:
                raise GenesisError(f"{fname}:{n}:{ind + 1}: unexpected indentation")
            if not (content.startswith("- ") or content == "-"):
                break
            pos += 1
            item = content[1:].lstrip(" ")
            item_indent = ind + (len(content) - len(item))
            if not item:
                raise GenesisError(f"{fname}:{n}:{ind + 1}: empty list item")
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*:(\s|$)", item):
                result.append(parse_map(item_indent, (n, item_indent, item)))
            else:
                result.append(_parse_scalar(item, fname, n, item_indent + 1))
        return result

    if not lines:
        raise GenesisError(f"{fname}: empty genesis")
    if lines[0][1] != 0:
        raise GenesisError(f"{fname}:{lines[0][0]}:1: the document must start at column 1")
    doc = parse_map(0)
    if pos != len(lines):
        n, ind, _ = lines[pos]
        raise GenesisError(f"{fname}:{n}:{ind + 1}: unexpected content")
    return doc


# ---------------------------------------------------------------------------------------
# The model (PruneMeshCLI catalog, "The model and the data")
# ---------------------------------------------------------------------------------------

NUM = r"(0|[1-9][0-9]*)"


class Model:
    def __init__(self, spec: str):
        m = re.fullmatch(rf"{NUM}x{NUM}x{NUM}:(.+)", spec)
        if not m:
            raise ValueError("not HxWxC:layers")
        h, w, c = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if min(h, w, c) < 1:
            raise ValueError("input sides must be ≥ 1")
        self.spec = spec
        self.input = (h, w, c)
        self.layers = []  # (kind, params)
        for tok in m.group(4).split(","):
            if tok in ("relu", "tanh"):
                self.layers.append((tok, None))
                continue
            cm = re.fullmatch(rf"conv{NUM}x{NUM}(?:s{NUM})?(?:p{NUM})?", tok)
            if cm:
                k, f = int(cm.group(1)), int(cm.group(2))
                s = int(cm.group(3)) if cm.group(3) is not None else 1
                if k < 1 or f < 1 or not (1 <= s <= k):
                    raise ValueError(f"bad layer {tok}")
                if cm.group(3) is not None and s == 1:
                    raise ValueError(f"{tok}: not in canonical form")
                if cm.group(4) is not None:
                    p = int(cm.group(4))
                    if k % 2 == 1 and p == k // 2:
                        raise ValueError(f"{tok}: not in canonical form")
                else:
                    if k % 2 == 0:
                        raise ValueError(f"{tok}: an even kernel must write its padding")
                    p = k // 2
                if p > k - 1:
                    raise ValueError(f"bad layer {tok}")
                self.layers.append(("conv", (k, f, s, p)))
                continue
            pm = re.fullmatch(rf"pool{NUM}(?:s{NUM})?", tok)
            if pm:
                k = int(pm.group(1))
                s = int(pm.group(2)) if pm.group(2) is not None else k
                if k < 1 or s < 1 or (pm.group(2) is not None and s >= k):
                    raise ValueError(f"{tok}: bad or non-canonical pool")
                self.layers.append(("pool", (k, s)))
                continue
            dm = re.fullmatch(rf"dense{NUM}", tok)
            if dm and int(dm.group(1)) >= 1:
                self.layers.append(("dense", int(dm.group(1))))
                continue
            raise ValueError(f"unknown layer {tok!r}")
        if not self.layers or self.layers[-1][0] != "dense":
            raise ValueError("the last layer must be dense (the classifier)")
        # prunable layers: every conv and every dense but the last
        self.prunable = []  # (layer index, original width)
        last = len(self.layers) - 1
        seen_dense = False
        for i, (kind, p) in enumerate(self.layers):
            if kind == "conv":
                if seen_dense:
                    raise ValueError("a conv layer after a dense layer")
                self.prunable.append((i, p[1]))
            elif kind == "dense":
                seen_dense = True
                if i != last:
                    self.prunable.append((i, p))
        self.units = sum(wd for _, wd in self.prunable)
        self.widths = [wd for _, wd in self.prunable]
        self.full_counts = self.cost([list(range(wd)) for wd in self.widths])

    def cost(self, mask):
        """(params, flops) of the model shrunk to `mask` (per prunable layer: kept units).
        Parameters include biases; FLOPs: 2 × MACs of conv and dense layers plus one
        addition per bias and output element (Commands, `prunemesh prune`)."""
        kept = {li: len(mask[j]) for j, (li, _) in enumerate(self.prunable)}
        h, w, c = self.input
        params = flops = 0
        flat = None
        for i, (kind, p) in enumerate(self.layers):
            if kind == "conv":
                k, f, s, pad = p
                f = kept[i]
                ho = (h + 2 * pad - k) // s + 1
                wo = (w + 2 * pad - k) // s + 1
                if ho < 1 or wo < 1:
                    raise ValueError("a conv layer's output is empty")
                params += k * k * c * f + f
                flops += 2 * ho * wo * f * k * k * c + ho * wo * f
                h, w, c = ho, wo, f
            elif kind == "pool":
                k, s = p
                if s == k:
                    if h % k or w % k:
                        raise ValueError("pool: input sides not divisible")
                    h, w = h // k, w // k
                else:
                    h, w = (h - k) // s + 1, (w - k) // s + 1
                if h < 1 or w < 1:
                    raise ValueError("a pool layer's output is empty")
            elif kind == "dense":
                fan_in = h * w * c if flat is None else flat
                u = kept.get(i, p)
                params += fan_in * u + u
                flops += 2 * fan_in * u + u
                flat = u
        return params, flops


# ---------------------------------------------------------------------------------------
# Boundary rules (Consensus catalog, "The aggregate and the mask")
# ---------------------------------------------------------------------------------------

_DEC = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def _fixed(text: str, decimals: int) -> int:
    m = _DEC.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a plain decimal")
    frac = m.group(2) or ""
    if len(frac) > decimals:
        raise ValueError(f"{text!r} has more than {decimals} decimals")
    return int(m.group(1)) * 10 ** decimals + int((frac + "0" * decimals)[:decimals] or "0")


def _fixed_text(v: int, decimals: int) -> str:
    whole, frac = divmod(v, 10 ** decimals)
    if frac == 0:
        return str(whole)
    return f"{whole}." + str(frac).rjust(decimals, "0").rstrip("0")


class Boundary:
    def __init__(self, text: str):
        kind, sep, arg = text.partition(":")
        if not sep:
            raise ValueError("expected keep:F, keep:F1/F2/…, auto:K or auto2:K")
        if kind == "keep":
            parts = arg.split("/")
            if len(parts) > 6:
                raise ValueError("keep: at most 6 fractions")
            fr = [_fixed(p, 6) for p in parts]
            for f in fr:
                if not (0 < f <= 1_000_000):
                    raise ValueError("a keep fraction lies in (0, 1]")
            self.kind, self.fractions = "keep", fr
            self.canonical = "keep:" + "/".join(_fixed_text(f, 6) for f in fr)
        elif kind in ("auto", "auto2"):
            k = _fixed(arg, 3)
            if not (0 <= k <= 10_000):
                raise ValueError("K lies in 0 … 10")
            self.kind, self.k_milli = kind, k
            self.canonical = f"{kind}:" + _fixed_text(k, 3)
        else:
            raise ValueError("expected keep:, auto: or auto2:")

    def select(self, layer: int, scores: list[int]) -> list[int]:
        """Positions (in the list of currently kept units) the rule keeps."""
        n = len(scores)
        if self.kind == "keep":
            fr = self.fractions[min(layer, len(self.fractions) - 1)]
            count = max(1, (n * fr + 999_999) // 1_000_000)
            order = sorted(range(n), key=lambda j: (-scores[j], j))
            kept = sorted(order[:count])
        else:
            s_sum = sum(scores)
            q_sum = sum(v * v for v in scores)
            spread = n * q_sum - s_sum * s_sum
            k2 = self.k_milli * self.k_milli
            kept = []
            for j, v in enumerate(scores):
                off = 1000 * (n * v - s_sum)
                if off < 0:
                    ok = off * off <= k2 * spread
                else:
                    ok = True if self.kind == "auto" else off * off <= k2 * spread
                if ok:
                    kept.append(j)
        if not kept:
            best = max(scores)
            kept = [scores.index(best)]
        return kept


# ---------------------------------------------------------------------------------------
# Privacy accounting (Privacy catalog, "Sensitivity, z_eff and the spend";
# "The sampler, the accounting and the budget")
# ---------------------------------------------------------------------------------------

OPACUS_ORDERS = [1 + x / 10 for x in range(1, 100)] + [float(a) for a in range(12, 64)]


def z_eff(z: float, c: float, s: int, d: int) -> float:
    clip_grid = c * (2.0 ** s)
    std_grid = z * clip_grid
    m = math.ceil(std_grid * 256.0)
    if m < 1 or m > 2 ** 30:
        raise ValueError("m out of range")
    sigma = m / 256.0
    clip_part = math.nextafter(clip_grid * (1.0 + 2.0 ** -30), math.inf)
    rounding_part = math.nextafter(math.sqrt(d), math.inf) / 2.0
    delta = math.nextafter(clip_part + rounding_part, math.inf)
    return math.nextafter(sigma / delta, -math.inf)


def eps_from_rdp(rdp: list[float], delta: float) -> tuple[float, float]:
    best, best_a = math.inf, None
    for r, a in zip(rdp, OPACUS_ORDERS):
        e = r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a)
        if e != e:  # NaN: ignored, as Opacus's nanargmin does
            continue
        if e < best:
            best, best_a = e, a
    return max(0.0, best), best_a


def gaussian_epsilon(zeff: float, releases: int, delta: float) -> float:
    # the evaluation order of the Privacy catalog ("Accounting"): α / ((2 × z) × z), then × T
    rdp = [0.0 + (a / ((2 * zeff) * zeff)) * releases for a in OPACUS_ORDERS]
    return eps_from_rdp(rdp, delta)[0]


# The record-level accountant, every operation in the order of the Privacy catalog
# ("The sampler and the accounting", "The record-level accountant (DP-SGD), step by step"):
# binary64, no fused multiply-add, libm's log/log1p/exp/expm1/erfc (Python's math module calls
# them) and glibc's lgamma through ctypes (CPython's math.lgamma is its own code).
_libm = ctypes.CDLL("libm.so.6")
_libm.lgamma.argtypes = [ctypes.c_double]
_libm.lgamma.restype = ctypes.c_double


def _lgamma(x: float) -> float:
    return _libm.lgamma(x)


def _log_add(x: float, y: float) -> float:
    a, b = min(x, y), max(x, y)
    if a == -math.inf:
        return b
    return math.log1p(math.exp(a - b)) + b


def _log_sub(x: float, y: float) -> float:
    if y == -math.inf:
        return x
    if x <= y:
        return -math.inf
    d = x - y
    if d > 700:
        return x
    return math.log(math.expm1(d)) + y


def _log_erfc(x: float) -> float:
    if x < 25:
        return math.log(math.erfc(x))
    r = 1 / ((2 * x) * x)
    s = 1 - r + (3 * r) * r - ((15 * r) * r) * r + (((105 * r) * r) * r) * r
    return (-x) * x - math.log(x) - 0.5 * math.log(3.141592653589793) + math.log(s)


def _log_a_int(q: float, z: float, alpha: float) -> float:
    two_zz = (2 * z) * z
    log_a = -math.inf
    lq, l1q = math.log(q), math.log1p(-q)
    n = int(alpha)
    for k in range(n + 1):
        lc = (_lgamma(alpha + 1) - _lgamma(float(k + 1)) - _lgamma(float(n - k + 1))
              + float(k) * lq + float(n - k) * l1q)
        term = lc + float(k * k - k) / two_zz
        log_a = _log_add(log_a, term)
    return log_a


def _log_a_frac(q: float, z: float, alpha: float) -> float:
    two_zz = (2 * z) * z
    a0, a1 = -math.inf, -math.inf
    z0 = (z * z) * math.log(1 / q - 1) + 0.5
    lq, l1q, s2 = math.log(q), math.log1p(-q), math.sqrt(2.0)
    c, i = 1.0, 0.0
    for _ in range(10 ** 6):
        lc = math.log(abs(c))
        j = alpha - i
        t0 = lc + i * lq + j * l1q
        t1 = lc + j * lq + i * l1q
        e0 = math.log(0.5) + _log_erfc((i - z0) / (s2 * z))
        e1 = math.log(0.5) + _log_erfc((z0 - j) / (s2 * z))
        u0 = t0 + (i * i - i) / two_zz + e0
        u1 = t1 + (j * j - j) / two_zz + e1
        if c > 0:
            a0, a1 = _log_add(a0, u0), _log_add(a1, u1)
        else:
            a0, a1 = _log_sub(a0, u0), _log_sub(a1, u1)
        if max(u0, u1) < -30:
            break
        c = c * ((alpha - i) / (i + 1))
        i = i + 1
    return _log_add(a0, a1)


def _sampled_rdp_one(q: float, z: float, alpha: float) -> float:
    if q == 0:
        return 0.0
    if q == 1.0:
        return alpha / ((2 * z) * z)
    if alpha == math.inf:
        return math.inf
    if float(alpha).is_integer() and alpha < 1e6:
        return _log_a_int(q, z, alpha) / (alpha - 1)
    return _log_a_frac(q, z, alpha) / (alpha - 1)


_SAMPLED_CACHE: dict = {}


def sampled_epsilon(q: float, sigma: float, steps: int, delta: float) -> float:
    """Record-level ε of `steps` DP-SGD steps: Poisson-subsampled Gaussian RDP (Mironov,
    Talwar, Zhang 2019), Opacus's orders, RDP(α) = Double(T) × RDP₁(α)."""
    if steps == 0:
        return 0.0
    key = (q, sigma)
    if key not in _SAMPLED_CACHE:
        _SAMPLED_CACHE[key] = [_sampled_rdp_one(q, sigma, a) for a in OPACUS_ORDERS]
    rdp = [float(steps) * r for r in _SAMPLED_CACHE[key]]
    return eps_from_rdp(rdp, delta)[0]


def round_half_away(x: float) -> int:
    # round(1/q): halves away from zero (GenesisAndMeshID, "Record-level training privacy")
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


# ---------------------------------------------------------------------------------------
# The genesis (MeshConfig catalog, "The genesis and the mesh id"; Operations, genesis table)
# ---------------------------------------------------------------------------------------

SECTIONS = {
    "format": None, "name": None, "model": None,
    "training": ["epochs_per_round", "batch_size", "learning_rate", "optimizer", "momentum",
                 "weight_decay", "augment", "init_seed"],
    "pruning": ["boundary", "patience", "max_rounds", "finetune_epochs", "surgery"],
    "privacy": ["clip_bound", "noise_multiplier", "delta", "epsilon_budget", "scale_log2"],
    "data": ["partition", "seed"],
    "membership": ["probe_interval_ms", "probe_timeout_ms", "indirect_probes",
                   "suspicion_min_multiplier", "suspicion_max_multiplier",
                   "retransmit_multiplier", "push_pull_interval_ms", "beacon_interval_ms",
                   "dead_retention_ms", "gossip_interval_ms", "gossip_fanout", "awareness_max"],
    "consensus": ["propose_timeout_ms", "propose_timeout_delta_ms", "prevote_timeout_ms",
                  "prevote_timeout_delta_ms", "precommit_timeout_ms",
                  "precommit_timeout_delta_ms"],
    "validators": ["remove_dead_after_ms"],
    "members": None,
    "training_privacy": ["enabled", "clip_norm", "noise_multiplier", "sample_rate", "delta",
                         "epsilon_max", "steps_per_round"],
    "federation": ["aggregation", "encoding", "server_rate"],
}
OPTIONAL = {"training_privacy", "federation"}
# absent: f32 and 1 (GenesisAndMeshID, Operations)
OPTIONAL_FIELDS = {"federation.encoding", "federation.server_rate", "training_privacy.steps_per_round"}

_INT = re.compile(r"[-+]?[0-9]+")
# number syntax per field type (GenesisAndMeshID, "How a number is written in the file")
_FLOAT = re.compile(r"-?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


class Genesis:
    def __init__(self, path: str):
        self.path = path
        try:
            with open(path, "rb") as fh:
                raw = fh.read(256 * 1024 + 1)
        except OSError as e:
            raise GenesisError(f"{path}: {e.strerror}")
        if len(raw) > 256 * 1024:
            raise GenesisError(f"{path}: larger than 256 KiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GenesisError(f"{path}: not UTF-8")
        doc = parse_yaml(text, path)
        self._build(doc)
        self.canonical = self._encode()
        self.mesh_id = tagged_hash(TAG_MESH_ID, self.canonical)

    # --- typed field access -------------------------------------------------------------
    def _where(self, node, name):
        return f"{self.path}:{node.line}:{node.col}: {name}"

    def _int(self, node, name, lo, hi):
        if not isinstance(node, Scalar):
            raise GenesisError(f"{self._where(node, name)}: expected a number")
        t = node.text
        # GAP: "`64` and `64.0` give the same bytes" holds for f64 fields only: an integer
        # field takes decimal digits and nothing else (`64.0`, `6.4e1`, `+64` are refused;
        # learned from the binary).
        # decimal digits only, at most 20; `-0` reads as 0 except in the two seeds
        if re.fullmatch(r"[0-9]{1,20}", t):
            v = int(t)
        elif re.fullmatch(r"-0{1,20}", t) and name not in ("training.init_seed", "data.seed"):
            v = 0
        else:
            raise GenesisError(f"{self._where(node, name)}: expected a whole number in {lo}…{hi} (got {t!r})")
        if not (lo <= v <= hi):
            raise GenesisError(f"{self._where(node, name)}: must lie in {lo}…{hi} (got {v})")
        return v

    def _float(self, node, name):
        if not isinstance(node, Scalar):
            raise GenesisError(f"{self._where(node, name)}: expected a number")
        t = node.text
        if len(t) > 64 or not _FLOAT.fullmatch(t):
            raise GenesisError(f"{self._where(node, name)}: expected a number (got {t})")
        v = float(t)
        if not math.isfinite(v):
            raise GenesisError(f"{self._where(node, name)}: must be finite")
        return 0.0 if v == 0 else v

    def _str(self, node, name):
        if not isinstance(node, Scalar):
            raise GenesisError(f"{self._where(node, name)}: expected a string")
        return node.text

    def _enum(self, node, name, values):
        t = self._str(node, name)
        if t not in values:
            raise GenesisError(f"{self._where(node, name)}: expected one of {', '.join(values)}")
        return values.index(t)

    def _bool(self, node, name):
        t = self._str(node, name)
        if t == "true":  # GAP: only `true`/`false` (the binary refuses `True`, `yes`)
            return True
        if t == "false":
            return False
        raise GenesisError(f"{self._where(node, name)}: expected true or false")

    def _section(self, doc, name):
        node = doc[name]
        if not isinstance(node, YMap):
            raise GenesisError(f"{self.path}:{doc.positions[name][0]}:1: {name}: expected a mapping")
        allowed = SECTIONS[name]
        for k in node:
            if k not in allowed:
                n, c = node.positions[k]
                raise GenesisError(f"{self.path}:{n}:{c}: {name}.{k}: unknown field")
        for k in allowed:
            if k not in node and f"{name}.{k}" not in OPTIONAL_FIELDS:
                raise GenesisError(f"{self.path}:{node.line}:1: {name}.{k}: required field is missing")
        return node

    def _build(self, doc):
        if not isinstance(doc, YMap):
            raise GenesisError(f"{self.path}: expected a mapping")
        for k in doc:
            if k not in SECTIONS:
                n, c = doc.positions[k]
                raise GenesisError(f"{self.path}:{n}:{c}: {k}: unknown field")
        for k in SECTIONS:
            if k not in doc and k not in OPTIONAL:
                raise GenesisError(f"{self.path}: {k}: required field is missing")
        P = self.path
        self.format = self._int(doc["format"], "format", 1, 1)
        self.name = self._str(doc["name"], "name")
        self._check_name(self.name, "name", doc["name"])
        self.model_text = self._str(doc["model"], "model")
        try:
            self.model = Model(self.model_text)
        except ValueError as e:
            raise GenesisError(f"{self._where(doc['model'], 'model')}: {e}")

        t = self._section(doc, "training")
        self.epochs_per_round = self._int(t["epochs_per_round"], "training.epochs_per_round", 1, 1000)
        self.batch_size = self._int(t["batch_size"], "training.batch_size", 1, 4096)
        self.learning_rate = self._float(t["learning_rate"], "training.learning_rate")
        if not (0 < self.learning_rate <= 10):
            raise GenesisError(f"{self._where(t['learning_rate'], 'training.learning_rate')}: must lie in (0, 10]")
        self.optimizer = self._enum(t["optimizer"], "training.optimizer", ["sgd", "adam"])
        self.momentum = self._float(t["momentum"], "training.momentum")
        if not (0 <= self.momentum < 1):
            raise GenesisError(f"{self._where(t['momentum'], 'training.momentum')}: must lie in [0, 1)")
        self.weight_decay = self._float(t["weight_decay"], "training.weight_decay")
        if not (0 <= self.weight_decay <= 1):
            raise GenesisError(f"{self._where(t['weight_decay'], 'training.weight_decay')}: must lie in [0, 1]")
        self.augment = self._enum(t["augment"], "training.augment", ["none", "flip"])
        self.init_seed = self._int(t["init_seed"], "training.init_seed", 0, 2 ** 64 - 1)

        p = self._section(doc, "pruning")
        try:
            self.boundary = Boundary(self._str(p["boundary"], "pruning.boundary"))
        except ValueError as e:
            raise GenesisError(f"{self._where(p['boundary'], 'pruning.boundary')}: {e}")
        if self.boundary.kind == "keep" and len(self.boundary.fractions) > 1 and \
                len(self.boundary.fractions) > len(self.model.prunable):
            raise GenesisError(f"{self._where(p['boundary'], 'pruning.boundary')}: more fractions than prunable layers")
        self.patience = self._int(p["patience"], "pruning.patience", 1, 10000)
        self.max_rounds = self._int(p["max_rounds"], "pruning.max_rounds", 1, 10000)
        self.finetune_epochs = self._int(p["finetune_epochs"], "pruning.finetune_epochs", 0, 1000)
        self.surgery = self._enum(p["surgery"], "pruning.surgery", ["keep", "reinit"])

        v = self._section(doc, "privacy")
        self.clip_bound = self._float(v["clip_bound"], "privacy.clip_bound")
        self.noise_multiplier = self._float(v["noise_multiplier"], "privacy.noise_multiplier")
        self.delta = self._float(v["delta"], "privacy.delta")
        self.epsilon_budget = self._float(v["epsilon_budget"], "privacy.epsilon_budget")
        self.scale_log2 = self._int(v["scale_log2"], "privacy.scale_log2", 0, 24)
        if self.clip_bound <= 0 or self.clip_bound * 2.0 ** self.scale_log2 > 2 ** 28:
            raise GenesisError(f"{self._where(v['clip_bound'], 'privacy.clip_bound')}: must be > 0 with C·2^s ≤ 2^28")
        if self.noise_multiplier < 0 or \
                self.noise_multiplier * self.clip_bound * 2.0 ** self.scale_log2 > 2 ** 22:
            raise GenesisError(f"{self._where(v['noise_multiplier'], 'privacy.noise_multiplier')}: out of range")
        if not (0 < self.delta < 1):
            raise GenesisError(f"{self._where(v['delta'], 'privacy.delta')}: must lie in (0, 1)")
        if not (self.epsilon_budget > 0):
            raise GenesisError(f"{self._where(v['epsilon_budget'], 'privacy.epsilon_budget')}: must be > 0")

        dsec = self._section(doc, "data")
        self.partition = self._str(dsec["partition"], "data.partition")
        self._check_partition(self.partition, dsec["partition"])
        self.data_seed = self._int(dsec["seed"], "data.seed", 0, 2 ** 64 - 1)

        m = self._section(doc, "membership")
        U64, U32 = 2 ** 64 - 1, 2 ** 32 - 1
        DAY = 86_400_000
        self.membership = [
            ("q", self._int(m["probe_interval_ms"], "membership.probe_interval_ms", 1, DAY)),
            ("q", self._int(m["probe_timeout_ms"], "membership.probe_timeout_ms", 1, DAY)),
            ("I", self._int(m["indirect_probes"], "membership.indirect_probes", 0, 16)),
            ("I", self._int(m["suspicion_min_multiplier"], "membership.suspicion_min_multiplier", 1, 64)),
            ("I", self._int(m["suspicion_max_multiplier"], "membership.suspicion_max_multiplier", 1, 64)),
            ("I", self._int(m["retransmit_multiplier"], "membership.retransmit_multiplier", 1, 64)),
            ("q", self._int(m["push_pull_interval_ms"], "membership.push_pull_interval_ms", 1, DAY)),
            ("q", self._int(m["beacon_interval_ms"], "membership.beacon_interval_ms", 0, DAY)),
            ("q", self._int(m["dead_retention_ms"], "membership.dead_retention_ms", 1, DAY)),
            ("q", self._int(m["gossip_interval_ms"], "membership.gossip_interval_ms", 0, DAY)),
            ("I", self._int(m["gossip_fanout"], "membership.gossip_fanout", 0, 256)),
            ("I", self._int(m["awareness_max"], "membership.awareness_max", 1, 8)),
        ]
        if self.membership[1][1] >= self.membership[0][1]:
            raise GenesisError(f"{self._where(m['probe_timeout_ms'], 'membership.probe_timeout_ms')}: must be below probe_interval_ms")
        c = self._section(doc, "consensus")
        # GAP: the timeouts are 1…86,400,000 and their deltas 0…86,400,000 (binary)
        self.consensus = [self._int(c[k], "consensus." + k, 0 if k.endswith("delta_ms") else 1, DAY)
                          for k in SECTIONS["consensus"]]
        vsec = self._section(doc, "validators")
        self.remove_dead_after_ms = self._int(vsec["remove_dead_after_ms"], "validators.remove_dead_after_ms", 1, DAY)

        mem = doc["members"]
        if not isinstance(mem, YList) or not (1 <= len(mem) <= 256):
            raise GenesisError(f"{P}: members: expected a list of 1–256 members")
        members = []
        names = set()
        for item in mem:
            if not isinstance(item, YMap):
                raise GenesisError(f"{P}:{item.line}:{item.col}: members[]: expected a mapping")
            for k in item:
                if k not in ("key", "name", "address"):
                    n, cc = item.positions[k]
                    raise GenesisError(f"{P}:{n}:{cc}: members[].{k}: unknown field")
            if "key" not in item:
                raise GenesisError(f"{P}:{item.line}:1: members[].key: required field is missing")
            kt = self._str(item["key"], "members[].key")
            if not re.fullmatch(r"[0-9a-fA-F]{64}", kt):
                raise GenesisError(f"{self._where(item['key'], 'members[].key')}: expected 64 hex digits")
            key = bytes.fromhex(kt)
            if not valid_point(key):
                # GAP: the docs do not say a member key must be a valid point (binary refuses)
                raise GenesisError(f"{self._where(item['key'], 'members[].key')}: {kt.lower()} is not a valid Ed25519 public key")
            for k in ("name", "address"):
                # GAP: a member without a name/address omits the key or gives a YAML null
                # (`address:`, `null`, `~`); a quoted empty string is refused ("a value is
                # required here"), though "none" encodes as "" (learned from the binary)
                if k in item and isinstance(item[k], Scalar):
                    if not item[k].quoted and item[k].text in ("", "null", "Null", "NULL", "~"):
                        del item[k]
                    elif item[k].text == "":
                        raise GenesisError(f"{self._where(item[k], 'members[].' + k)}: a value is required here")
            name = self._str(item["name"], "members[].name") if "name" in item else ""
            if name:
                self._check_name(name, "members[].name", item["name"])
                if name in names:
                    raise GenesisError(f"{self._where(item['name'], 'members[].name')}: duplicate name")
                names.add(name)
            addr = self._str(item["address"], "members[].address") if "address" in item else ""
            if addr:
                am = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})", addr)
                if len(addr.encode()) > 263 or not am or not (0 <= int(am.group(2)) <= 65535) \
                        or not _valid_host(am.group(1)):
                    raise GenesisError(f"{self._where(item['address'], 'members[].address')}: expected HOST:PORT")
                # GAP: the port is rewritten without leading zeros (`:07946` = `:7946`, binary)
                addr = f"{am.group(1)}:{int(am.group(2))}"
            members.append((key, name, addr))
        keys = [k for k, _, _ in members]
        if len(set(keys)) != len(keys):
            raise GenesisError(f"{P}: members: duplicate key")
        self.members = sorted(members, key=lambda t: t[0])

        self.training_privacy = None
        self.steps_per_round_set = None
        if "training_privacy" in doc:
            tp = self._section(doc, "training_privacy")
            enabled = self._bool(tp["enabled"], "training_privacy.enabled")
            clip = self._float(tp["clip_norm"], "training_privacy.clip_norm")
            z = self._float(tp["noise_multiplier"], "training_privacy.noise_multiplier")
            q = self._float(tp["sample_rate"], "training_privacy.sample_rate")
            d = self._float(tp["delta"], "training_privacy.delta")
            emax = self._float(tp["epsilon_max"], "training_privacy.epsilon_max")
            if not (1e-6 <= clip <= 1e6) or not (1e-6 <= z <= 1e4) or not (1e-6 <= q <= 1) \
                    or not (0 < d < 1) or not (0 < emax <= 1e4):
                raise GenesisError(f"{P}: training_privacy: a value is out of range")
            # training_privacy.steps_per_round (optional, 1 … 10,000; tag 5 + u32): a model round
            # is that many DP-SGD steps instead of epochs_per_round epochs of round(1/q)
            self._drop_null(tp, "steps_per_round", "training_privacy.steps_per_round")
            if "steps_per_round" in tp:
                self.steps_per_round_set = self._int(tp["steps_per_round"], "training_privacy.steps_per_round", 1, 10_000)
            self.training_privacy = dict(enabled=enabled, clip_norm=clip, noise_multiplier=z,
                                         sample_rate=q, delta=d, epsilon_max=emax)
            self.steps_per_round = self.steps_per_round_set or self.epochs_per_round * round_half_away(1 / q)
            if enabled and sampled_epsilon(q, z, self.steps_per_round, d) > emax:
                raise GenesisError(f"{P}: training_privacy: one pruning round alone exceeds epsilon_max")
        self.dp_sgd = bool(self.training_privacy and self.training_privacy["enabled"])
        if self.noise_multiplier == 0 and not self.dp_sgd:
            raise GenesisError(f"{self._where(v['noise_multiplier'], 'privacy.noise_multiplier')}: must be > 0 (got 0.0)")

        self.federation = None
        if "federation" in doc:
            fsec = self._section(doc, "federation")
            rule = self._str(fsec["aggregation"], "federation.aggregation")
            need = self._rule_need(rule, fsec["aggregation"])
            if need > len(self.members):
                raise GenesisError(f"{self._where(fsec['aggregation'], 'federation.aggregation')}: needs {need} contributions, the genesis has {len(self.members)} members")
            self.federation = rule
            self.federation_need = need
            # federation.encoding: `f32` (the default, not encoded) or `int8` (tag 3), exact spelling
            self.encoding = "f32"
            # GAP: a YAML null (`encoding:`, `null`, `~`) is an absent field, f32 (binary);
            # a quoted empty string is refused
            self._drop_null(fsec, "encoding", "federation.encoding")
            if "encoding" in fsec:
                self.encoding = ("f32", "int8")[self._enum(fsec["encoding"], "federation.encoding", ["f32", "int8"])]
            # federation.server_rate: η in [0.001, 4], 1 when absent or null (not encoded), else tag 4 + f64
            self.server_rate = 1.0
            self._drop_null(fsec, "server_rate", "federation.server_rate")
            if "server_rate" in fsec:
                self.server_rate = self._float(fsec["server_rate"], "federation.server_rate")
                if not (0.001 <= self.server_rate <= 4):
                    raise GenesisError(f"{self._where(fsec['server_rate'], 'federation.server_rate')}: must lie in [0.001, 4]")
        if self.training_privacy is not None and self.steps_per_round_set is not None and self.federation is None:
            raise GenesisError(f"{P}: training_privacy.steps_per_round: model rounds of a number of steps need the federation section")

        n = len(self.members)
        self.f = (n - 1) // 3
        self.quorum = 2 * n // 3 + 1

    def _drop_null(self, sec, key, name):
        """An optional field written as a YAML null (nothing, `null`, `~`) is absent; a quoted
        empty string is refused."""
        v = sec.get(key)
        if isinstance(v, Scalar) and not v.quoted and v.text in ("", "null", "Null", "NULL", "~"):
            del sec[key]
        elif isinstance(v, Scalar) and v.text == "":
            raise GenesisError(f"{self._where(v, name)}: a value is required here")

    def _check_name(self, s, field, node):
        b = s.encode("utf-8")
        if not (1 <= len(b) <= 64) or s != s.strip(" ") or any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in s):
            raise GenesisError(f"{self._where(node, field)}: 1–64 bytes, no control characters, no leading or trailing spaces")

    def _check_partition(self, s, node):
        if s == "iid":
            return
        m = re.fullmatch(rf"labels:{NUM}", s)
        # K in 1 … 10 and at most the model's classes (its last layer's width)
        if m and 1 <= int(m.group(1)) <= min(10, self.model.layers[-1][1]):
            return
        m = re.fullmatch(r"dirichlet:(.+)", s)
        if m:
            try:
                a = float(m.group(1))
            except ValueError:
                a = None
            if a is not None and 0.001 <= a <= 1e6 and _swift_double(a) == m.group(1):
                return
        raise GenesisError(f"{self._where(node, 'data.partition')}: not in canonical form")

    def _rule_need(self, rule, node):
        """Validates the aggregation rule, sets its canonical text, returns the contributions
        it needs. GAP: the MeshConfig catalog names only fedavg, trimmed:B, median and
        normclip; the canonical text, ranges and needs of krum, geomed, filter and sidefilter
        were learned from the binary (and are now in "The string fields": the table of rules)
        : integers lose leading zeros, `geomed` is `geomed:8`,
        filter K keeps one decimal only if not 0; B, F in 1…127, T in 1…100, K in 1…100."""
        where = self._where(node, "federation.aggregation")
        if rule in ("fedavg", "median", "normclip"):
            self.federation_text = rule
            return 1
        kind, sep, arg = rule.partition(":")
        # B, F and T are read as Swift's Int(_:) does: digits, leading zeros and an optional
        # sign (GenesisAndMeshID, "The string fields")
        if kind in ("trimmed", "krum") and sep and re.fullmatch(r"[-+]?[0-9]+", arg):
            b = int(arg)
            if not 1 <= b <= 127:
                raise GenesisError(f"{where}: rule {rule!r}: must be an integer in 1…127")
            self.federation_text = f"{kind}:{b}"
            return 2 * b + 1 if kind == "trimmed" else b + 3
        if kind == "geomed" and (not sep or re.fullmatch(r"[-+]?[0-9]+", arg)):
            t = int(arg) if sep else 8
            if not 1 <= t <= 100:
                raise GenesisError(f"{where}: rule {rule!r}: the iterations must be an integer in 1…100")
            self.federation_text = f"geomed:{t}"
            return 1
        if kind in ("filter", "sidefilter") and sep:
            m = re.fullmatch(r"([0-9]+)(?:\.([0-9]))?", arg)
            if not m:
                raise GenesisError(f"{where}: rule {rule!r}: K must be a number in 1…100 with at most one decimal")
            tenths = int(m.group(1)) * 10 + int(m.group(2) or 0)
            if not 10 <= tenths <= 1000:
                raise GenesisError(f"{where}: rule {rule!r}: K must be a number in 1…100 with at most one decimal")
            self.federation_text = f"{kind}:{tenths // 10}" + (f".{tenths % 10}" if tenths % 10 else "")
            return 1
        raise GenesisError(f"{where}: unknown rule {rule!r}")

    # --- canonical bytes -----------------------------------------------------------------
    def _encode(self) -> bytes:
        def s(text):
            b = text.encode("utf-8")
            return struct.pack("<H", len(b)) + b

        def f64(v):
            return struct.pack("<d", 0.0 if v == 0 else v)

        out = bytearray(b"prunemesh-genesis")
        out += struct.pack("<I", self.format)
        out += s(self.name) + s(self.model_text)
        out += struct.pack("<II", self.epochs_per_round, self.batch_size) + f64(self.learning_rate)
        out += bytes([self.optimizer]) + f64(self.momentum) + f64(self.weight_decay)
        out += bytes([self.augment]) + struct.pack("<Q", self.init_seed)
        out += s(self.boundary.canonical)
        out += struct.pack("<III", self.patience, self.max_rounds, self.finetune_epochs)
        out += bytes([self.surgery])
        out += f64(self.clip_bound) + f64(self.noise_multiplier) + f64(self.delta)
        out += f64(self.epsilon_budget) + bytes([self.scale_log2])
        out += s(self.partition) + struct.pack("<Q", self.data_seed)
        for fmt, val in self.membership:
            out += struct.pack("<" + fmt, val)
        out += struct.pack("<6Q", *self.consensus)
        out += struct.pack("<Q", self.remove_dead_after_ms)
        out += struct.pack("<H", len(self.members))
        for key, name, addr in self.members:
            out += key + s(name) + s(addr)
        if self.training_privacy is not None:
            tp = self.training_privacy
            out += bytes([1, 1 if tp["enabled"] else 0])
            for k in ("clip_norm", "noise_multiplier", "sample_rate", "delta", "epsilon_max"):
                out += f64(tp[k])
        if self.federation is not None:
            out += bytes([2]) + s(self.federation_text)
            if self.encoding != "f32":
                out += bytes([3]) + s(self.encoding)
            if self.server_rate != 1:
                out += bytes([4]) + f64(self.server_rate)
        if self.training_privacy is not None and self.steps_per_round_set is not None:
            out += bytes([5]) + struct.pack("<I", self.steps_per_round_set)
        return bytes(out)


def _valid_host(h: str) -> bool:
    """A member address's host (GenesisAndMeshID, "members[].address"): a dotted-quad IPv4
    (parts 0 … 255, no leading zeros), a bracketed IPv6 (hex digits, `:` and `.`, 3 … 9
    groups, at most one `::`), or a DNS name (≤ 253 bytes, labels of 1 … 63 letters, digits
    and `-`, not starting or ending with `-`). GAP: a host of digits and dots only is read as
    IPv4 and refused unless it is a valid one (`123`, `1.2.3`: binary), though it would pass
    the documented DNS-name rule."""
    if h.startswith("["):
        inner = h[1:-1]
        return (re.fullmatch(r"[0-9A-Fa-f:.]+", inner) is not None and 3 <= len(inner.split(":")) <= 9
                and inner.count("::") <= 1)
    if re.fullmatch(r"[0-9.]+", h):
        parts = h.split(".")
        return len(parts) == 4 and all(re.fullmatch(r"0|[1-9][0-9]{0,2}", p) and int(p) <= 255 for p in parts)
    if len(h) > 253:
        return False
    return all(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", lab) for lab in h.split("."))


def _swift_double(v: float) -> str:
    """`Double.description`: shortest round-trip digits, at least one digit after the point,
    exponent form (`1e-05`) below 1e-4 and from 2^53 up."""
    r = repr(v)
    if "e" in r or "E" in r:
        mant, exp = r.split("e")
        e = int(exp)
        return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if "." not in r:
        r += ".0"
    return r


# ---------------------------------------------------------------------------------------
# Byte codecs (Consensus catalog, "Agreement values and messages"; Wire catalog,
# "The importance release"; "Model rounds")
# ---------------------------------------------------------------------------------------

class Reader:
    def __init__(self, data: bytes):
        self.b, self.p = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.p + n > len(self.b):
            raise Malformed("truncated")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("<H", self.take(2))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def i32(self):
        return struct.unpack("<i", self.take(4))[0]

    def f64(self):
        return struct.unpack("<d", self.take(8))[0]

    def remaining(self):
        return len(self.b) - self.p

    def end(self):
        if self.p != len(self.b):
            raise Malformed("trailing bytes")


def decode_vote(r: Reader) -> dict:
    start = r.p
    voter = r.take(32)
    height = r.u64()
    rnd = r.u32()
    typ = r.u8()
    if typ not in (1, 2):
        raise Malformed("vote type")
    has = r.u8()
    if has not in (0, 1):
        raise Malformed("vote has-digest")
    digest = r.take(32) if has else None
    sig_end = r.p
    sig = r.take(64)
    return dict(voter=voter, height=height, round=rnd, type=typ, digest=digest, sig=sig,
                signed=r.b[start + 32:sig_end])


def decode_contribution(r: Reader) -> dict:
    key = r.take(32)
    rnd = r.u64()
    n = r.u32()
    if n > 65536:
        raise Malformed("contribution payload too long")
    payload = r.take(n)
    sig = r.take(64)
    return dict(key=key, round=rnd, payload=payload, sig=sig)


def decode_update(r: Reader) -> dict:
    # SignedUpdate, 188 bytes (Consensus catalog, "Model rounds", "The signed announcement")
    raw = r.take(188)
    key = raw[0:32]
    rnd, = struct.unpack("<Q", raw[32:40])
    base = raw[40:72]
    root = raw[72:104]
    nbytes, = struct.unpack("<Q", raw[104:112])
    samples, = struct.unpack("<I", raw[112:116])
    # decoding rules (AgreementValues, "What decoding refuses": malformed)
    if rnd < 1 or not (1 <= nbytes <= 2 ** 28) or not (1 <= samples <= 2 ** 30):
        raise Malformed("update field out of range")
    steps, = struct.unpack("<Q", raw[116:124])
    return dict(key=key, round=rnd, base=base, root=root, steps=steps, signed=raw[:124], sig=raw[124:188])


def decode_decision(data: bytes) -> dict:
    r = Reader(data)
    kind = r.u8()
    d = dict(kind=kind)
    if kind == 1:
        d["round"] = r.u64()
        if d["round"] < 1:
            raise Malformed("pruning round 0")
        cnt = r.u16()
        if not 1 <= cnt <= 256:
            # the count's range (1…256) is a decoding rule (AgreementValues)
            raise Malformed(f"contribution count {cnt} outside 1…256")
        contribs = [decode_contribution(r) for _ in range(cnt)]
        for a, b in zip(contribs, contribs[1:]):
            if not a["key"] < b["key"]:
                raise Malformed("contributions not in ascending key order")
        d["contributions"] = contribs
        # ranges of the encoding are decoding rules (AgreementValues, "What decoding refuses")
        alen = r.u32()
        if not 1 <= alen <= 13_098 or alen > r.remaining() // 4:
            raise Malformed("aggregate length")
        d["aggregate"] = [r.i32() for _ in range(alen)]
        layers = r.u8()
        if not 1 <= layers <= 32:
            raise Malformed(f"layer count {layers} outside 1…32")
        mask = []
        for _ in range(layers):
            k = r.u16()
            if not 1 <= k <= 8192:
                raise Malformed(f"kept count {k} outside 1…8192")
            idx = [r.u16() for _ in range(k)]
            if any(a >= b for a, b in zip(idx, idx[1:])):
                # every list has one canonical order: a decoding rule (malformed), not
                # mask_invalid (GAP: confirmed against the binary)
                raise Malformed("mask indices not strictly ascending")
            mask.append(idx)
        d["mask"] = mask
    elif kind == 2:
        d["member"] = r.take(32)
        inv_start = r.p
        d["invitee"] = r.take(32)
        d["inviter"] = r.take(32)
        d["valid_until"] = r.u64()
        d["invite_signed"] = data[inv_start:r.p]
        d["invite_sig"] = r.take(64)
        if d["invitee"] != d["member"]:
            raise Malformed("invitee is not the member")
    elif kind == 3:
        d["member"] = r.take(32)
        d["reason"] = r.u8()
        if d["reason"] not in (1, 2, 3):
            raise Malformed("removal reason")
    elif kind == 4:
        d["round"] = r.u64()
    elif kind == 5:
        a = decode_vote(r)
        b = decode_vote(r)
        ka = (a["digest"] is not None, a["digest"] or b"")
        kb = (b["digest"] is not None, b["digest"] or b"")
        if not ka < kb:
            raise Malformed("evidence votes not in canonical order")
        if a["voter"] != b["voter"] or (a["height"], a["round"], a["type"]) != (b["height"], b["round"], b["type"]):
            raise Malformed("evidence votes are not for one slot of one voter")
        d["votes"] = (a, b)
    elif kind == 6:
        d["round"] = r.u64()
        if d["round"] < 1:
            raise Malformed("model round 0")
        d["base"] = r.take(32)
        cnt = r.u16()
        if not (1 <= cnt <= 256):
            raise Malformed("update count")
        ups = [decode_update(r) for _ in range(cnt)]
        for a, b in zip(ups, ups[1:]):
            if not a["key"] < b["key"]:
                raise Malformed("updates not in ascending key order")
        d["updates"] = ups
    else:
        raise Malformed(f"unknown decision kind {kind}")
    r.end()
    return d


def decode_varint_zigzag(r: Reader) -> int:
    v = 0
    for i in range(5):
        b = r.u8()
        if i == 4 and b > 0x0F:
            raise Malformed("varint overflow")
        v |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if i > 0 and b == 0:
                raise Malformed("non-minimal varint")
            return (v >> 1) ^ -(v & 1)
    raise Malformed("varint longer than 5 bytes")


def decode_release(payload: bytes) -> dict:
    r = Reader(payload)
    rnd = r.u64()
    count = r.u32()
    z = r.f64()
    c = r.f64()
    s = r.u8()
    n = r.u32()
    if rnd < 1 or count < 1:
        raise Malformed("round or count 0")
    if not math.isfinite(z) or z < 0 or (z == 0 and math.copysign(1, z) < 0):
        raise Malformed("noise multiplier")
    if not math.isfinite(c) or c <= 0:
        raise Malformed("clip norm")
    if s > 24:
        raise Malformed("scale_log2")
    if not (1 <= n <= 13098):
        raise Malformed("unit count")
    if r.remaining() < n:
        raise Malformed("unit count beyond the payload")
    values = [decode_varint_zigzag(r) for _ in range(n)]
    steps = None
    if r.remaining():
        if r.remaining() != 9 or r.u8() != 1:
            raise Malformed("trailing bytes")
        steps = r.u64()
    if z == 0 and steps is None:
        raise Malformed("z = 0 without the DP-SGD trailer")
    return dict(round=rnd, count=count, z=z, c=c, s=s, n=n, values=values, steps=steps)


def decode_certificate(r: Reader) -> dict:
    height = r.u64()
    rnd = r.u32()
    digest = r.take(32)
    cnt = r.u16()
    if not 1 <= cnt <= 256:
        # the count's range (1…256) is a decoding rule (AgreementValues), not quorum_short
        raise Malformed(f"certificate count {cnt} outside 1…256")
    sigs = []
    for _ in range(cnt):
        idx = r.u16()
        # GAP: the Audit article gives `duplicate_signer` for indices not strictly
        # ascending, but the certificate format says "strictly ascending" and decoders
        # refuse any other order: the binary reports `malformed`. Followed here.
        if sigs and idx <= sigs[-1][0]:
            raise Malformed("certificate signer indices not strictly ascending")
        sigs.append((idx, r.take(64)))
    r.end()
    return dict(height=height, round=rnd, digest=digest, sigs=sigs)


KIND_NAMES = {1: "mask", 2: "admit", 3: "remove", 4: "freeze", 5: "evidence", 6: "model"}


# ---------------------------------------------------------------------------------------
# MeshState (Consensus catalog, "Judging a decision"; "Model rounds")
# ---------------------------------------------------------------------------------------

def _blank_row() -> dict:
    """A contributor's accounting before anything of it is recorded."""
    return dict(releases=0, epsilon=0.0, steps=None, record_epsilon=None,
                rel_steps=None, upd_steps=None, updates=0)


def _judge_steps(g, row: dict, field: str, steps: int, count: int, who: str, kind: str):
    """The DP-SGD steps a release or an update states, judged against its kind's previous
    steps (`field`: rel_steps or upd_steps), the count of that kind so far and ε_max; then
    recorded. The same checks for both kinds (JudgingDecisions, ModelRounds)."""
    if row[field] is not None and steps < row[field]:
        raise Fault("training_steps_decreasing", f"{who}: {steps} steps, fewer than its previous {row[field]}")
    if steps < count * g.steps_per_round:
        raise Fault("training_steps_too_few", f"{who}: {steps} steps for {count} {kind}")
    tp = g.training_privacy
    reps = sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], steps, tp["delta"])
    if reps > tp["epsilon_max"]:
        raise Fault("training_budget_exceeded", f"{who}: record-level ε {reps} above {tp['epsilon_max']}")
    row[field] = steps
    _record_steps(g, row, steps, reps)


def _record_steps(g, row: dict, steps: int, reps: float):
    """The recorded steps are the most any release or update stated; record ε is theirs."""
    if row["steps"] is None or steps > row["steps"]:
        row["steps"] = steps
        row["record_epsilon"] = reps
    elif row["record_epsilon"] is None:
        tp = g.training_privacy
        row["record_epsilon"] = sampled_epsilon(tp["sample_rate"], tp["noise_multiplier"], row["steps"], tp["delta"])


class MeshState:
    def __init__(self, g: Genesis):
        self.g = g
        self.height = 0  # height of the last applied decision
        self.validators = [k for k, _, _ in g.members]
        self.sets = {1: list(self.validators)}  # height -> validator set in force at it
        self.mask = [list(range(w)) for w in g.model.widths]
        self.last_mask_round = 0
        self.last_model_round = 0
        self.frozen = False
        self.convicted: dict[bytes, int] = {}  # key -> height of the evidence
        self.spent: dict[bytes, dict] = {}
        self.zeff = None
        if g.noise_multiplier > 0:
            self.zeff = z_eff(g.noise_multiplier, g.clip_bound, g.scale_log2, g.model.units)

    @staticmethod
    def f_of(n):
        return (n - 1) // 3

    @staticmethod
    def quorum_of(n):
        return 2 * n // 3 + 1

    def set_at(self, height):
        return self.sets.get(height, [])  # none at height 0

    def apply(self, d: dict, height: int, mesh_id: bytes):
        """Check decision d at `height` (= self.height + 1); apply it or raise Fault."""
        kind = d["kind"]
        vals = self.validators
        if self.frozen:
            if kind == 4:
                raise Fault("freeze_twice", "a second freeze")
            if kind == 1:
                raise Fault("after_freeze", "a mask decision after the freeze")
        if kind == 1:
            self._mask(d, height, mesh_id)
        elif kind == 2:
            key = d["member"]
            if not valid_point(key):
                raise Fault("admit_invalid_key", "the admitted key is not a valid Ed25519 point")
            if key in vals:
                raise Fault("admit_already_member", "the admitted key is already a validator")
            if len(vals) + 1 > 256:
                raise Fault("admit_too_many", "the validator set would exceed 256")
            if d["inviter"] not in vals:
                raise Fault("inviter_not_validator", "the inviter is not a validator in force")
            if not verify(TAG_INVITE, mesh_id + d["invite_signed"], d["invite_sig"], d["inviter"]):
                raise Fault("bad_invite_signature", "the invite's signature does not verify")
            if height > d["valid_until"]:
                raise Fault("invite_expired", f"the invite was valid until height {d['valid_until']}")
            self.validators = sorted(vals + [key])
        elif kind == 3:
            key = d["member"]
            if key not in vals:
                raise Fault("remove_not_member", "the removed key is not a validator")
            if len(vals) == 1:
                raise Fault("remove_last_validator", "the last validator cannot be removed")
            if d["reason"] == 3 and key not in self.convicted:
                raise Fault("remove_without_evidence", "removal as equivocated with no evidence in the log")
            self.validators = [k for k in vals if k != key]
        elif kind == 4:
            if self.last_mask_round == 0:
                raise Fault("freeze_before_mask", "a freeze before any mask decision")
            if d["round"] != self.last_mask_round:
                raise Fault("freeze_round", f"the freeze names round {d['round']}, the last mask round is {self.last_mask_round}")
            self.frozen = True
        elif kind == 5:
            a, b = d["votes"]
            if a["height"] > height:
                raise Fault("evidence_from_future", "the evidence's votes are for a later height")
            vset = self.set_at(a["height"])
            if a["voter"] not in vset:
                raise Fault("evidence_not_validator", "the offender was not a validator at that height")
            for v in (a, b):
                if not verify(TAG_VOTE, mesh_id + v["signed"], v["sig"], v["voter"]):
                    raise Fault("bad_evidence_signature", "an evidence vote's signature does not verify")
            self.convicted.setdefault(a["voter"], height)
        elif kind == 6:
            self._model(d, height, mesh_id)
        self.height = height
        self.sets[height + 1] = list(self.validators)

    def _mask(self, d, height, mesh_id):
        g = self.g
        vals = self.validators
        rnd = d["round"]
        if rnd != self.last_mask_round + 1:
            raise Fault("mask_round", f"pruning round {rnd}, expected {self.last_mask_round + 1}")
        mask = d["mask"]
        widths = g.model.widths
        if len(mask) != len(widths) or any(
                not layer or any(u >= wd for u in layer) or any(a >= b for a, b in zip(layer, layer[1:]))
                for layer, wd in zip(mask, widths)):
            raise Fault("mask_invalid", "the mask is not valid for the genesis model")
        for layer, cur in zip(mask, self.mask):
            if not set(layer) <= set(cur):
                raise Fault("mask_grows", "the mask keeps a unit the mask in force has pruned")
        contribs = d["contributions"]
        if len(contribs) < self.quorum_of(len(vals)):
            raise Fault("too_few_contributions", f"{len(contribs)} contributions, a quorum is {self.quorum_of(len(vals))}")
        updates = {}
        releases = []
        for c in contribs:
            k = c["key"]
            kh = k.hex()[:16]
            if k not in vals:
                raise Fault("contributor_not_validator", f"contributor {kh}… is not a validator in force")
            if k in self.convicted:
                raise Fault("contributor_convicted", f"contributor {kh}… is convicted by evidence")
            if c["round"] != rnd:
                raise Fault("contribution_height", f"contribution of {kh}… is for round {c['round']}")
            if not verify(TAG_CONTRIBUTION, mesh_id + struct.pack("<Q", c["round"]) + c["payload"], c["sig"], k):
                raise Fault("bad_contribution_signature", f"contribution of {kh}…: bad signature")
            try:
                rel = decode_release(c["payload"])
            except Malformed as e:
                raise Fault("release_payload", f"contribution of {kh}…: payload: {e}")
            if rel["round"] != rnd:
                raise Fault("release_payload", f"contribution of {kh}…: payload for round {rel['round']}")
            if (struct.pack("<d", rel["z"]) != struct.pack("<d", g.noise_multiplier)
                    or struct.pack("<d", rel["c"]) != struct.pack("<d", g.clip_bound)
                    or rel["s"] != g.scale_log2 or rel["n"] != g.model.units):
                raise Fault("release_not_pinned", f"contribution of {kh}…: z, C, s or d differ from the genesis")
            prev = self.spent.get(k) or _blank_row()
            if rel["count"] <= prev["releases"]:
                raise Fault("release_count", f"contribution of {kh}…: release count {rel['count']} not above {prev['releases']}")
            if rel["z"] > 0:
                eps = gaussian_epsilon(self.zeff, rel["count"], g.delta)
                if eps > g.epsilon_budget:
                    raise Fault("privacy_budget_exceeded", f"contributor {kh}…: ε {eps} above the budget {g.epsilon_budget}")
            else:
                eps = 0.0
            row = dict(prev, releases=rel["count"], epsilon=eps)
            if g.dp_sgd:
                steps = rel["steps"]
                if steps is None:
                    raise Fault("training_steps_missing", f"contribution of {kh}… states no DP-SGD steps")
                # per kind: a release's steps against the contributor's previous release's
                # (an update's against its previous update's: ModelRounds)
                _judge_steps(g, row, "rel_steps", steps, rel["count"], f"contribution of {kh}…", "releases")
            elif rel["steps"] is not None:
                raise Fault("training_steps_unexpected", f"contribution of {kh}… states DP-SGD steps")
            updates[k] = row
            releases.append(rel["values"])
        # (13) the trimmed mean, f of the set in force
        f = self.f_of(len(vals))
        m = len(releases)
        agg = []
        for i in range(g.model.units):
            col = sorted(v[i] for v in releases)
            kept = col[f:m - f]
            agg.append(sum(kept) // (m - 2 * f))
        if agg != d["aggregate"]:
            raise Fault("wrong_aggregate", "the recorded aggregate is not the trimmed mean of the contributions")
        # (14) the mask
        new_mask = []
        off = 0
        for li, wd in enumerate(widths):
            cur = self.mask[li]
            scores = [agg[off + u] for u in cur]
            pos = g.boundary.select(li, scores)
            new_mask.append([cur[p] for p in pos])
            off += wd
        if new_mask != mask:
            raise Fault("wrong_mask", "the recorded mask is not the boundary rule's on the aggregate")
        self.mask = new_mask
        self.last_mask_round = rnd
        self.spent.update(updates)

    def _model(self, d, height, mesh_id):
        g = self.g
        vals = self.validators
        if g.federation is None:
            raise Fault("model_not_federated", "a model decision in a mesh without federation")
        if d["round"] != self.last_model_round + 1:
            raise Fault("model_round", f"model round {d['round']}, expected {self.last_model_round + 1}")
        ups = d["updates"]
        if len(ups) < max(self.quorum_of(len(vals)), g.federation_need):
            raise Fault("too_few_updates", f"{len(ups)} updates")
        rows = {}
        for u in ups:
            kh = u["key"].hex()[:16]
            if u["key"] not in vals:
                raise Fault("contributor_not_validator", f"update of {kh}…: not a validator in force")
            if u["key"] in self.convicted:
                raise Fault("contributor_convicted", f"update of {kh}…: convicted")
            if u["round"] != d["round"]:
                raise Fault("update_round", f"update of {kh}… is for round {u['round']}")
            if u["base"] != d["base"]:
                raise Fault("update_base", f"update of {kh}… trained from another base")
            if not verify(TAG_MODEL_UPDATE, mesh_id + u["signed"], u["sig"], u["key"]):
                raise Fault("bad_update_signature", f"update of {kh}…: bad signature")
        # GAP: ModelRounds lists the steps rules after the signature without saying whether
        # they run in the same pass; the binary checks every update's identity, round, base
        # and signature first, then every update's steps (ascending key both times).
        for u in ups:
            kh = u["key"].hex()[:16]
            # the update's training steps, judged as a release's are (ModelRounds, "The model
            # decision"): ≥ 1 with DP-SGD, not below the contributor's previous update's, not
            # below (its updates so far, this one included) × one round's steps, record-level ε
            # within ε_max; 0 without DP-SGD
            prev = self.spent.get(u["key"]) or _blank_row()
            row = dict(prev, updates=prev["updates"] + 1)
            steps = u["steps"]
            if g.dp_sgd:
                if steps == 0:
                    raise Fault("training_steps_missing", f"update of {kh}… states no DP-SGD steps")
                _judge_steps(g, row, "upd_steps", steps, row["updates"], f"update of {kh}…", "updates")
            elif steps != 0:
                raise Fault("training_steps_unexpected", f"update of {kh}… states {steps} DP-SGD steps")
            rows[u["key"]] = row
        self.last_model_round = d["round"]
        self.spent.update(rows)


# ---------------------------------------------------------------------------------------
# The log file (Ledger catalog, "The log format") and the audit ("The audit")
# ---------------------------------------------------------------------------------------

MAX_BODY = 20 * 1024 * 1024


def _record_ok(data: bytes, o: int, L: int) -> bool:
    return tagged_hash(TAG_LOG_RECORD, data[o:o + 48] + data[o + 80:o + 80 + L]) == data[o + 48:o + 80]


def _self_consistent_after(data: bytes, start: int, index: int) -> bool:
    """Is there a self-consistent record (magic, length in range, checksum) of index > `index`
    anywhere at or after `start`?"""
    p = data.find(b"PMLR", start)
    while p != -1:
        if p + 80 <= len(data):
            L, idx = struct.unpack_from("<IQ", data, p + 4)
            if 1 <= L <= MAX_BODY and p + 80 + L <= len(data) and idx > index and _record_ok(data, p, L):
                return True
        p = data.find(b"PMLR", p + 1)
    return False


def read_records(data: bytes, mesh_id: bytes):
    """Yields (index, offset, body) of each valid record; raises Fault(file damage) with
    the failing record's offset."""
    # GAP: header damage is reported with code `file`, no entry index and no offset
    # (learned from the binary; the Ledger catalog names no code for it)
    if len(data) < 80:
        raise Fault("file", f"{len(data)} bytes, shorter than the 80-byte header", None, header=True)
    if data[0:8] != b"PMDECLOG":
        raise Fault("file", "bad magic", None, header=True)
    version, reserved = struct.unpack_from("<II", data, 8)
    if version != 1:
        raise Fault("file", f"version {version}, this reads 1", None, header=True)
    if tagged_hash(TAG_LOG_RECORD, data[0:48]) != data[48:80]:
        raise Fault("file", "header checksum mismatch", None, header=True)
    if reserved != 0:
        raise Fault("file", f"reserved field {reserved}, expected 0", None, header=True)
    if data[16:48] != mesh_id:
        raise Fault("wrong_mesh", f"the log is for mesh {data[16:48].hex()}, the genesis is mesh {mesh_id.hex()}",
                    None, header=True)
    parent = data[48:80]
    o = 80
    index = 0
    size = len(data)
    while o < size:
        def damaged(what):
            # torn when the file ends in ≥ 32 zero bytes and no self-consistent record of a
            # higher index follows; corruption otherwise
            tail_zero = size - o >= 32 and data[-32:] == bytes(32)
            if tail_zero and not _self_consistent_after(data, o + 1, index):
                return Fault("torn_tail", f"record {index} was never completely written ({what})", o)
            return Fault("corrupt_record", f"record {index} is corrupt ({what})", o)

        if size - o < 80:
            if _self_consistent_after(data, o + 1, index):
                raise Fault("corrupt_record", f"record {index} is corrupt (header cut short)", o)
            raise Fault("torn_tail", f"record {index} is cut short (incomplete header)", o)
        magic = data[o:o + 4]
        L, idx = struct.unpack_from("<IQ", data, o + 4)
        if magic != b"PMLR":
            raise damaged("bad magic")
        if not (1 <= L <= MAX_BODY):
            raise damaged(f"length {L} out of range")
        if o + 80 + L > size:
            # cut short — unless the length field was damaged: the checksum verifies at the
            # length the bytes fill (GAP: read as the checksum over the record header with
            # that length written into its length field; confirmed against the binary)
            fill = size - o - 80
            if fill >= 1:
                hdr = bytearray(data[o:o + 48])
                struct.pack_into("<I", hdr, 4, fill)
                if tagged_hash(TAG_LOG_RECORD, bytes(hdr) + data[o + 80:]) == data[o + 48:o + 80]:
                    raise Fault("corrupt_record", f"record {index} is corrupt (damaged length)", o)
            if _self_consistent_after(data, o + 1, index):
                raise Fault("corrupt_record", f"record {index} is corrupt (cut short, valid records after it)", o)
            raise Fault("torn_tail", f"record {index} is cut short (incomplete body)", o)
        if not _record_ok(data, o, L):
            raise damaged("checksum mismatch")
        if idx != index or data[o + 16:o + 48] != parent:
            raise Fault("corrupt_record", f"record {index} has the wrong index or parent", o)
        yield index, o, data[o + 80:o + 80 + L]
        parent = data[o + 48:o + 80]
        o += 80 + L
        index += 1


def audit(log_path: str, genesis_path: str) -> dict:
    g = Genesis(genesis_path)
    mesh_id = g.mesh_id
    try:
        if os.path.isdir(log_path):
            raise OSError(21, "Is a directory")
        with open(log_path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        rep = dict(ok=False, log=log_path, mesh_id=mesh_id.hex(), entries=0, verified=0, head=None,
                   first_error=dict(code="file", reason=f"{log_path}: open failed: {e.strerror}"),
                   entry_details=[], privacy_spent=[], epsilon_budget=g.epsilon_budget)
        if g.dp_sgd:
            rep["record_epsilon_max"] = g.training_privacy["epsilon_max"]
        raise LogUnreadable(rep)
    state = MeshState(g)
    full_params, full_flops = g.model.full_counts
    report = dict(ok=False, log=log_path, mesh_id=mesh_id.hex(), entries=0, verified=0,
                  head=mesh_id.hex(), first_error=None, entry_details=[],
                  privacy_spent=[], epsilon_budget=g.epsilon_budget)
    if g.dp_sgd:
        report["record_epsilon_max"] = g.training_privacy["epsilon_max"]
    prev_hash = mesh_id
    error = None
    # The file layer reads every record first: `entries` counts the valid records read
    # (all of them, or those before the file damage), even when an entry before the damage
    # fails later (GAP: learned from the binary). The first failure in entry order wins.
    records = []
    file_fault = None
    try:
        for item in read_records(data, mesh_id):
            records.append(item)
    except Fault as e:
        file_fault = e
    report["entries"] = len(records)
    for index, offset, body in records:
        height = index + 1
        try:
            # 2. the entry
            try:
                r = Reader(body)
                e_height = r.u64()
                e_prev = r.take(32)
                dlen = r.u32()
                dbytes = r.take(dlen)
                entry_end = r.p
                dec = decode_decision(dbytes)
                cert = decode_certificate(r)
            except Malformed as m:
                raise Fault("malformed", f"the entry does not decode: {m}")
            if e_height != height:
                raise Fault("height_mismatch", f"the entry says height {e_height}")
            if e_prev != prev_hash:
                raise Fault("broken_link", "the previous hash is not the hash of the entry before")
            # 3. the certificate against the set in force at this height
            vals = state.validators
            if cert["height"] != height:
                raise Fault("certificate_height", f"the certificate is for height {cert['height']}")
            digest = tagged_hash(TAG_DECISION, dbytes)
            if cert["digest"] != digest:
                raise Fault("certificate_digest", "the certificate is for another decision")
            last = -1
            for vi, sig in cert["sigs"]:
                if vi <= last:
                    raise Fault("duplicate_signer", f"validator index {vi} repeated or out of order")
                last = vi
                if vi >= len(vals):
                    raise Fault("signer_outside_set", f"validator index {vi} outside a set of {len(vals)}")
                msg = mesh_id + struct.pack("<QIBB", height, cert["round"], 2, 1) + digest
                if not verify(TAG_VOTE, msg, sig, vals[vi]):
                    raise Fault("bad_vote_signature", f"validator {vi}'s precommit signature does not verify")
            q = state.quorum_of(len(vals))
            if len(cert["sigs"]) < q:
                raise Fault("quorum_short", f"{len(cert['sigs'])} signers, a quorum of {len(vals)} is {q}")
            # 4. the decision
            n_vals = len(vals)
            state.apply(dec, height, mesh_id)
        except Fault as e:
            error = (index, e)
            break
        entry_hash = tagged_hash(TAG_LOG_ENTRY, body[:entry_end])
        prev_hash = entry_hash
        report["verified"] += 1
        report["head"] = entry_hash.hex()
        params, flops = g.model.cost(state.mask)
        kind = dec["kind"]
        # GAP: which entry_details fields each kind has is not documented; learned from
        # the binary: `pruning_round` for mask, freeze and model (the model round) only,
        # `member` for admit and remove.
        det = dict(index=index, height=height, kind=KIND_NAMES[kind], round=cert["round"],
                   kept=[len(x) for x in state.mask], params=params, flops=flops,
                   param_reduction=1 - params / full_params, flop_reduction=1 - flops / full_flops,
                   contributors=len(dec["contributions"]) if kind == 1 else len(dec["updates"]) if kind == 6 else 0,
                   signers=len(cert["sigs"]), validators=n_vals, hash=entry_hash.hex())
        if kind in (1, 4, 6):
            det["pruning_round"] = dec["round"]
        if kind in (2, 3):
            det["member"] = dec["member"].hex()
        elif kind == 5:
            det["member"] = dec["votes"][0]["voter"].hex()
        report["entry_details"].append(det)
    for key in sorted(state.spent):
        row = state.spent[key]
        # One row per key with a contribution in an accepted mask decision and, with DP-SGD
        # training, per key with recorded steps (updates alone: releases 0, ε 0); without
        # DP-SGD, model updates alone add no row (Commands, `prunemesh audit`). Binaries
        # before 168421c omitted the DP update-only rows.
        if row["releases"] == 0 and not (g.dp_sgd and row["steps"] is not None):
            continue
        out = dict(key=key.hex(), releases=row["releases"], epsilon=row["epsilon"])
        if g.dp_sgd:
            out["training_steps"] = row["steps"]
            out["record_epsilon"] = row.get("record_epsilon")
        report["privacy_spent"].append(out)
    if error is None and file_fault is not None:
        error = (len(records), file_fault)
    if error is None:
        report["ok"] = True
    else:
        index, e = error
        if e.header:
            fe = dict(code=e.code, reason=(f"{log_path} is not a decision log: {e.reason}"
                                           if e.code == "file" else e.reason))
            report["head"] = None
        else:
            fe = dict(index=index, code=e.code, reason=e.reason)
            if e.offset is not None:
                fe["offset"] = e.offset
        report["first_error"] = fe
    return report


def _num(v):
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53:
        return int(v)
    return v


def main(argv: list[str]) -> int:
    args = argv[1:]
    log = None
    mesh = None
    as_json = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--json":
            as_json = True
        elif a == "--mesh":
            if i + 1 >= len(args):
                print("Error: --mesh needs a genesis file\nUsage: auditor.py LOG [--mesh GENESIS] [--json]", file=sys.stderr)
                return 64
            mesh = args[i + 1]
            i += 1
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a.startswith("-"):
            print(f"Error: unknown option {a}\nUsage: auditor.py LOG [--mesh GENESIS] [--json]", file=sys.stderr)
            return 64
        elif log is None:
            log = a
        else:
            print("Error: one log only\nUsage: auditor.py LOG [--mesh GENESIS] [--json]", file=sys.stderr)
            return 64
        i += 1
    if log is None:
        print("Error: missing LOG\nUsage: auditor.py LOG [--mesh GENESIS] [--json]", file=sys.stderr)
        return 64
    if mesh is None:
        mesh = os.path.join(os.path.dirname(log) or ".", "genesis.yaml")
    try:
        rep = audit(log, mesh)
    except GenesisError as e:
        # GAP: an unreadable or invalid genesis is first_error code `genesis` (learned from
        # the binary; not in the documented list of codes)
        rep = dict(ok=False, log=log, mesh_id=None, entries=0, verified=0, head=None,
                   first_error=dict(code="genesis", reason=f"genesis {mesh}: {e}"),
                   entry_details=[], privacy_spent=[], epsilon_budget=None)
    except LogUnreadable as e:
        rep = e.report
    if as_json:
        if rep["epsilon_budget"] is not None:
            rep["epsilon_budget"] = _num(rep["epsilon_budget"])
        if "record_epsilon_max" in rep:
            rep["record_epsilon_max"] = _num(rep["record_epsilon_max"])
        print(json.dumps(rep, sort_keys=True, ensure_ascii=False))
    elif rep["head"] is not None and not rep["entry_details"]:
        # none passed, but the file was read and is of this mesh (Commands, `prunemesh audit`)
        print(f"head {rep['head']} (no valid entry)")
    elif rep["head"] is not None:
        print(f"{'height':>7} {'kind':>9} {'round':>5} {'p-round':>7} {'kept':>16} {'params':>8} {'FLOPs':>8} {'contrib':>7} {'signers':>9}")
        for d in rep["entry_details"]:
            contrib = str(d["contributors"]) if d["kind"] in ("mask", "model") else "-"
            print(f"{d['height']:>7} {d['kind']:>9} {d['round']:>5} {d.get('pruning_round', '-'):>7} "
                  f"{'/'.join(map(str, d['kept'])):>16} {-100 * d['param_reduction']:>7.1f}% "
                  f"{-100 * d['flop_reduction']:>7.1f}% {contrib:>7} {str(d['signers']) + '/' + str(d['validators']):>9}")
        print(f"head {rep['head']}")
    if rep["ok"]:
        if not as_json:
            print(f"ok: {rep['entries']} entries, head {rep['head']}")
        return 0
    fe = rep["first_error"]
    if "index" not in fe:
        print(f"audit FAILED at log: {fe['reason']}", file=sys.stderr)
        return 1
    where = f"audit FAILED at entry {fe['index']} (height {fe['index'] + 1})"
    if "offset" in fe:
        where += f", byte offset {fe['offset']}"
    print(f"{where}: {fe['code']}: {fe['reason']}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
