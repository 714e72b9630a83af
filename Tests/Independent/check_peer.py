#!/usr/bin/env python3
"""Live check of the independent membership peer (peer.py) against real `prunemesh start` nodes.

    check_peer.py --binary /tmp/pm/prunemesh --scratch /tmp/indep-peer/run1 [--mode full]

Sets up 4 keys and a genesis listing all 4, starts 3 Swift nodes on free loopback ports
(`--membership-only` by default; `--mode full` runs the whole node on a tiny model and a few
hundred samples, so the peer also sees agreement and log-sync traffic), starts peer.py as the
4th member (joining through node 1) and, at the same time, a peer whose key is not in the genesis
(trying all three as seeds). Then it asserts, polling `prunemesh status --json` with deadlines:

  1. the mesh id peer.py computes from the genesis equals `prunemesh mesh id`;
  2. every Swift node lists the peer alive at the peer's address, and keeps listing it so (never
     suspect, never another address) for 10 probe intervals;
  3. the peer's own view lists the 3 Swift nodes alive at their addresses; it refused nothing;
  4. the Swift nodes refused nothing from the member peer (no malformedPayload, badSignature, …);
  5. paused (SIGSTOP) until a node suspects it, then resumed, the peer refutes: every node lists
     it alive at a higher incarnation;
  6. after the peer's `leave`, every Swift node lists it `left`;
  7. the stranger is never listed by any Swift node, and they count its datagrams `notMember`;
     the stranger never hears from anyone;
  8. the peer restarted on the same state directory (boot epoch 2, a new port) is alive again at
     its new address above its `left` incarnation on every node, and stays so while it drops
     every datagram from node0 (a test hook): its probes of node0, and node0's of it, succeed
     only through pingReq.

Every process is stopped at the end (SIGTERM, then SIGKILL after a timeout), also on failure.
Exit 0 on success, 1 with a message naming the failed condition otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer.py")


class CheckFailed(Exception):
    pass


def free_udp_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Check:
    def __init__(self, args):
        self.a = args
        self.bin = os.path.abspath(args.binary)
        self.dir = os.path.abspath(args.scratch)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.t0 = time.monotonic()
        self.probe_interval_s = 1.0

    def say(self, msg: str):
        print(f"[{time.monotonic() - self.t0:6.2f}s] {msg}", flush=True)

    def run(self, *cmd, cwd=None) -> str:
        r = subprocess.run(list(cmd), cwd=cwd or self.dir, capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise CheckFailed(f"`{' '.join(cmd)}` exited {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        p = subprocess.Popen(cmd, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT
                             if name.startswith("node") else open(
                                 os.path.join(self.dir, f"{name}.err"), "w"),
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def stop_all(self):
        for name, p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 8
        for name, p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} (pid {p.pid}) ignored SIGTERM: killing it")
                p.kill()
                p.wait(timeout=5)

    def status(self, i: int, tries: int = 3) -> dict | None:
        """The node's `status --json`, or None; a slow answer (a loaded machine) is retried."""
        for _ in range(tries):
            r = subprocess.run([self.bin, "status", "--state-dir",
                                os.path.join(self.dir, f"st{i}"), "--json", "--timeout-ms",
                                "1500"], capture_output=True, text=True, timeout=10)
            if r.returncode == 0:
                try:
                    return json.loads(r.stdout)
                except json.JSONDecodeError:
                    pass
            time.sleep(0.1)
        return None

    def wait_for(self, what: str, cond, timeout: float, interval: float = 0.25):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = cond()
            if last:
                return last
            time.sleep(interval)
        raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")

    def check_alive(self):
        for name, p in self.procs:
            if name.startswith("node") and p.poll() is not None:
                raise CheckFailed(f"{name} exited with status {p.returncode} (see "
                                  f"{self.dir}/{name}.log)")

    # -------------------------------------------------------------------------------------

    def main(self):
        os.makedirs(self.dir, exist_ok=True)
        if os.listdir(self.dir):
            raise CheckFailed(f"scratch directory {self.dir} is not empty")
        self.say(f"scratch {self.dir}, binary {self.bin}, mode {self.a.mode}")
        r = subprocess.run([sys.executable, PEER, "--self-test"], capture_output=True, text=True)
        if r.returncode != 0:
            raise CheckFailed("peer.py --self-test failed:\n" + r.stdout + r.stderr)
        self.say("peer.py --self-test: the catalogs' worked examples recompute")

        keys = {}
        for name in ("n0", "n1", "n2", "n3", "stranger"):
            out = self.run(self.bin, "keygen", "--out", f"{name}.key", "--json")
            keys[name] = json.loads(out)["public_key"]
        init = [self.bin, "mesh", "init", "--name", "indep-check", "--out", "genesis.yaml"]
        for n in ("n0", "n1", "n2", "n3"):
            init += ["--member", f"{n}.key"]
        if self.a.mode == "full":
            # light: a tiny model, one pruning round, one fine-tune epoch
            init += ["--model", "28x28x1:conv3x4,relu,pool2,dense16,relu,dense10",
                     "--rounds", "1", "--finetune-epochs", "1", "--augment", "none"]
        self.run(*init)
        swift_id = self.run(self.bin, "mesh", "id", "genesis.yaml").strip()
        peer_id = subprocess.run([sys.executable, PEER, "--genesis", "genesis.yaml",
                                  "--print-mesh-id"], cwd=self.dir, capture_output=True,
                                 text=True).stdout.strip()
        if swift_id != peer_id:
            raise CheckFailed(f"mesh id: prunemesh says {swift_id}, peer.py computes {peer_id}")
        self.say(f"mesh id {swift_id}: peer.py's canonical bytes agree with `prunemesh mesh id`")
        # The demo's federation section: int8 updates (tag 3) and server rate 1.5 (tag 4).
        self.run(*(init[:init.index("--out") + 1] + ["genesis-fed.yaml"] + init[init.index("--out") + 2:]
                   + ["--federated", "--encoding", "int8", "--server-rate", "1.5"]))
        fed_swift = self.run(self.bin, "mesh", "id", "genesis-fed.yaml").strip()
        fed_peer = subprocess.run([sys.executable, PEER, "--genesis", "genesis-fed.yaml",
                                   "--print-mesh-id"], cwd=self.dir, capture_output=True,
                                  text=True).stdout.strip()
        if fed_swift != fed_peer or fed_swift == swift_id:
            raise CheckFailed(f"federated mesh id: prunemesh says {fed_swift}, peer.py computes {fed_peer}")
        self.say(f"federated mesh id {fed_swift[:16]}… (int8, server rate 1.5): peer.py agrees")

        ports = free_udp_ports(3)
        addrs = [f"127.0.0.1:{p}" for p in ports]
        for i in range(3):
            cmd = [self.bin, "start", "--key", f"n{i}.key", "--genesis", "genesis.yaml",
                   "--listen", addrs[i], "--state-dir", f"st{i}", "--no-discovery",
                   "--control", "127.0.0.1:0", "--log-level", "info"]
            if i > 0:
                cmd += ["--join", addrs[0]]
            if self.a.mode == "membership-only":
                cmd += ["--membership-only"]
            else:
                cmd += ["--train-limit", "300", "--test-limit", "200", "--threads", "1",
                        "--node", str(i), "--nodes", "3"]
            self.spawn(f"node{i}", cmd)
        swift = {keys[f"n{i}"]: addrs[i] for i in range(3)}

        def swift_mesh_up():
            self.check_alive()
            for i in range(3):
                st = self.status(i)
                if not st:
                    return False
                alive = {m["id"]: m["address"] for m in st["members"] if m["state"] == "alive"}
                if any(alive.get(k) != a for k, a in swift.items()):
                    return False
            return True
        self.wait_for("the 3 Swift nodes to list each other alive", swift_mesh_up, 30)
        self.say(f"3 Swift nodes up at {', '.join(addrs)}, each listing the other two alive")

        # the member peer and the stranger, at the same time
        hold = 10 * self.probe_interval_s
        duration = self.a.peer_duration or (hold + 14)
        pcmd = [sys.executable, PEER, "--key", "n3.key", "--genesis", "genesis.yaml",
                "--listen", "127.0.0.1:0", "--join", addrs[1], "--state-dir", "peer-state",
                "--duration", str(duration), "--leave", "--expect-mesh-id", swift_id,
                "--summary", "peer.json", "--ready-file", "peer.ready"]
        scmd = [sys.executable, PEER, "--key", "stranger.key", "--genesis", "genesis.yaml",
                "--listen", "127.0.0.1:0", "--join", addrs[0], "--join", addrs[1], "--join", addrs[2],
                "--state-dir", "stranger-state", "--duration", str(min(duration, 8)),
                "--summary", "stranger.json", "--ready-file", "stranger.ready"]
        if self.a.verbose:
            pcmd.append("--verbose")
            scmd.append("--verbose")
        before = [self.status(i)["counters"]["rejects"] for i in range(3)]
        peer = self.spawn("peer", pcmd)
        stranger = self.spawn("stranger", scmd)
        ready = self.wait_for("peer.py to bind its socket", lambda: self._read("peer.ready"), 10,
                              0.05)
        sready = self.wait_for("the stranger to bind its socket",
                               lambda: self._read("stranger.ready"), 10, 0.05)
        pkey, paddr = ready["key"], ready["advertised"]
        skey = sready["key"]
        if pkey != keys["n3"]:
            raise CheckFailed(f"peer.py reports key {pkey}, keygen said {keys['n3']}")
        self.say(f"peer.py listening at {paddr} (key {pkey[:16]}…), stranger at "
                 f"{sready['advertised']}")

        stranger_seen = []

        def views():
            self.check_alive()
            out = []
            for i in range(3):
                st = self.status(i)
                if not st:
                    raise CheckFailed(f"node{i} did not answer status")
                ms = {m["id"]: m for m in st["members"]}
                if skey in ms:
                    stranger_seen.append((i, ms[skey]))
                    raise CheckFailed(f"node{i} lists the stranger {skey[:16]}…: {ms[skey]}")
                out.append(ms.get(pkey))
            return out

        def all_alive():
            vs = views()
            return all(v and v["state"] == "alive" and v["address"] == paddr for v in vs)
        self.wait_for("every Swift node to list peer.py alive at its address", all_alive, 15)
        t_join = time.monotonic()
        self.say(f"all 3 Swift nodes list peer.py alive at {paddr}: holding for "
                 f"{hold:.0f} s (10 probe intervals)")
        polls = 0
        while time.monotonic() - t_join < hold:
            vs = views()
            polls += 1
            for i, v in enumerate(vs):
                if not v or v["state"] != "alive" or v["address"] != paddr:
                    raise CheckFailed(f"after {time.monotonic() - t_join:.1f} s node{i} lists "
                                      f"peer.py as {v} (wanted alive at {paddr})")
                if v["incarnation"] != 0:
                    raise CheckFailed(f"node{i} holds peer.py at incarnation "
                                      f"{v['incarnation']}: it had to refute a suspicion")
            time.sleep(0.25)
        self.say(f"peer.py stayed alive at {paddr} on all 3 nodes for {hold:.0f} s "
                 f"({polls} polls of 3 nodes)")

        # suspicion and refutation: pause the peer until a Swift node suspects it
        self.say("pausing peer.py (SIGSTOP) until a Swift node suspects it")
        os.kill(peer.pid, signal.SIGSTOP)
        try:
            def suspected():
                for i, v in enumerate(views()):
                    if v and v["state"] in ("suspect", "dead"):
                        return (i, v)
                return None
            i, v = self.wait_for("a Swift node to suspect the paused peer.py", suspected, 12,
                                 0.1)
            self.say(f"node{i} lists peer.py as {v['state']} at incarnation {v['incarnation']}: "
                     f"resuming it (SIGCONT)")
        finally:
            os.kill(peer.pid, signal.SIGCONT)
        t_res = time.monotonic()

        def refuted():
            vs = views()
            if all(v and v["state"] == "alive" and v["address"] == paddr and
                   v["incarnation"] >= 1 for v in vs):
                return vs
            return None
        vs = self.wait_for("peer.py to refute the suspicion (alive at a higher incarnation "
                           "on every node)", refuted, 8, 0.1)
        self.say(f"peer.py refuted it: alive at incarnation {vs[0]['incarnation']} on all 3 "
                 f"nodes {time.monotonic() - t_res:.2f} s after resuming")

        # the Swift nodes refused nothing but the stranger's datagrams
        for i in range(3):
            st = self.status(i)
            rej = st["counters"]["rejects"]
            grown = {k: rej.get(k, 0) - before[i].get(k, 0) for k in rej
                     if rej.get(k, 0) != before[i].get(k, 0)}
            bad = {k: v for k, v in grown.items() if k != "notMember"}
            if bad:
                raise CheckFailed(f"node{i} refused datagrams while peer.py ran: {bad}")
            if grown.get("notMember", 0) == 0:
                raise CheckFailed(f"node{i} counted no notMember reject: did the stranger reach "
                                  f"it? rejects={rej}")
            self.say(f"node{i}: rejects since the peers started {grown or {}} "
                     f"(only the stranger's), messages_in {st['counters']['messages_in']}")

        # the peer's own view, and the leave
        try:
            peer.wait(timeout=duration + 15)
        except subprocess.TimeoutExpired:
            raise CheckFailed("peer.py did not finish in time")
        if peer.returncode != 0:
            raise CheckFailed(f"peer.py exited {peer.returncode}: "
                              f"{open(os.path.join(self.dir, 'peer.err')).read()[-2000:]}")
        summ = json.load(open(os.path.join(self.dir, "peer.json")))
        for k, a in swift.items():
            got = summ["alive_peers"].get(k)
            if got != a:
                raise CheckFailed(f"peer.py's view: Swift node {k[:16]}… is {got}, wanted alive "
                                  f"at {a}")
        if summ["rejects_total"] != 0:
            raise CheckFailed(f"peer.py refused datagrams: {summ['counters']['rejects']}")
        if summ["counters"]["probes_acked"] == 0:
            raise CheckFailed("peer.py's probes were never acked")
        if summ["counters"]["refutations"] < 1:
            raise CheckFailed("peer.py counted no refutation")
        c = summ["counters"]
        self.say(f"peer.py's view: the 3 Swift nodes alive at their addresses; datagrams in "
                 f"{c['datagrams_in']}, out {c['datagrams_out']}; probes {c['probes_sent']} "
                 f"(acked {c['probes_acked']}, failed {c['probes_failed']}); refutations "
                 f"{c['refutations']}; rejects {c['rejects']}")

        def all_left():
            vs = views()
            return all(v and v["state"] == "left" for v in vs)
        self.wait_for("every Swift node to list peer.py as left after its leave", all_left, 5)
        self.say("after its leave, all 3 Swift nodes list peer.py as left")

        try:
            stranger.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise CheckFailed("the stranger peer did not finish in time")
        ss = json.load(open(os.path.join(self.dir, "stranger.json")))
        if ss["in_genesis"] or ss["alive_peers"]:
            raise CheckFailed(f"the stranger saw members: {ss['alive_peers']}")
        if sum(ss["counters"]["datagrams_in"].values()) != 0:
            raise CheckFailed(f"the stranger got answers: {ss['counters']['datagrams_in']}")
        views()
        self.say(f"stranger (key {skey[:16]}…): sent {ss['counters']['datagrams_out']}, got "
                 f"nothing back, never listed by a Swift node")
        # restart with the same state directory: boot epoch 2, a new port, and the nodes hold
        # it `left`, so it must refute that; it drops node0's datagrams (test hook), so probes
        # between it and node0 only succeed indirectly (pingReq through node1 and node2)
        left_inc = max(v["incarnation"] for v in views())
        p2 = self.spawn("peer2", [
            sys.executable, PEER, "--key", "n3.key", "--genesis", "genesis.yaml",
            "--listen", "127.0.0.1:0", "--join", addrs[1], "--state-dir", "peer-state",
            "--duration", "9", "--expect-mesh-id", swift_id, "--ignore-from", keys["n0"],
            "--summary", "peer2.json", "--ready-file", "peer2.ready"]
            + (["--verbose"] if self.a.verbose else []))
        r2 = self.wait_for("the restarted peer.py to bind", lambda: self._read("peer2.ready"), 10,
                           0.05)
        paddr2 = r2["advertised"]

        def back():
            vs = views()
            return all(v and v["state"] == "alive" and v["address"] == paddr2 and
                       v["incarnation"] > left_inc for v in vs)
        self.wait_for(f"the restarted peer.py to be alive again at {paddr2} with an incarnation "
                      f"above {left_inc}", back, 8)
        t_back = time.monotonic()
        self.say(f"restarted peer.py (ignoring node0's datagrams) is alive again at {paddr2} on "
                 f"all 3 nodes; holding until it exits")
        while p2.poll() is None:
            for i, v in enumerate(views()):
                if v["state"] != "alive" or v["address"] != paddr2:
                    raise CheckFailed(f"{time.monotonic() - t_back:.1f} s after it came back, "
                                      f"node{i} lists the restarted peer.py as {v}")
            time.sleep(0.25)
        if p2.returncode != 0:
            raise CheckFailed(f"the restarted peer.py exited {p2.returncode}")
        s2 = json.load(open(os.path.join(self.dir, "peer2.json")))
        c2 = s2["counters"]
        if s2["boot_epoch"] != 2:
            raise CheckFailed(f"the restarted peer.py has boot epoch {s2['boot_epoch']}, wanted 2")
        for k, a in swift.items():
            if s2["alive_peers"].get(k) != a:
                raise CheckFailed(f"the restarted peer.py's view: {k[:16]}… is "
                                  f"{s2['alive_peers'].get(k)}, wanted alive at {a}")
        if s2["rejects_total"] or c2["probes_failed"]:
            raise CheckFailed(f"the restarted peer.py: rejects {c2['rejects']}, probes failed "
                              f"{c2['probes_failed']}")
        if c2["indirect_probes_sent"] and not c2["probes_acked_indirectly"]:
            raise CheckFailed("the restarted peer.py's indirect probes were never acked")
        self.say(f"restarted peer.py: boot epoch 2, refutations {c2['refutations']}, incarnation "
                 f"{s2['incarnation']}; {c2['ignored_by_test_hook']} datagrams from node0 "
                 f"dropped; pingReq sent {c2['indirect_probes_sent']}, probes acked indirectly "
                 f"{c2['probes_acked_indirectly']}, failed {c2['probes_failed']}")
        for i in range(3):
            rej = self.status(i)["counters"]["rejects"]
            bad = {k: rej[k] - before[i].get(k, 0) for k in rej
                   if k != "notMember" and rej[k] != before[i].get(k, 0)}
            if bad:
                raise CheckFailed(f"node{i} refused datagrams of the restarted peer: {bad}")
        return {"mesh_id": swift_id, "peer": summ, "stranger": ss, "peer2": s2}

    def _read(self, name):
        p = os.path.join(self.dir, name)
        try:
            with open(p) as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError):
            return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="the prunemesh binary")
    ap.add_argument("--scratch", required=True, help="an empty (or new) scratch directory")
    ap.add_argument("--mode", choices=["membership-only", "full"], default="membership-only")
    ap.add_argument("--peer-duration", type=float, help="seconds peer.py runs (default 20)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    chk = Check(a)
    try:
        chk.main()
        chk.say("PASS")
        return 0
    except CheckFailed as e:
        chk.say(f"FAIL: {e}")
        return 1
    except Exception as e:  # noqa: BLE001 - report anything, then clean up
        chk.say(f"FAIL: {type(e).__name__}: {e}")
        return 1
    finally:
        chk.stop_all()
        chk.say("all processes stopped")


if __name__ == "__main__":
    sys.exit(main())
