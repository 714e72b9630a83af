"""Shared by the benchmark scripts that run a mesh of real `prunemesh start` processes on
loopback (mesh_bench.py, flood_bench.py): keys and genesis, starting members, and reading a
node's /status with its operator token."""
import json, os, subprocess, time, urllib.request


def status(state_dir, timeout=1.0):
    """The node's /status (with `_latency_ms` added), or None while it is not answering."""
    try:
        with open(os.path.join(state_dir, "control.json")) as f:
            c = json.load(f)
        with open(os.path.join(state_dir, "control.token")) as f:
            token = f.read().strip()
        # /status needs the operator token (the node's control.token).
        req = urllib.request.Request(f"http://{c['host']}:{c['port']}/status", headers={"Authorization": f"Bearer {token}"})
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=timeout) as r:
            s = json.load(r)
        s["_latency_ms"] = (time.monotonic() - t0) * 1000
        return s
    except Exception:
        return None


def wait(what, seconds, cond):
    """Polls `cond` every 50 ms; exits the script if it does not hold within `seconds`."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > seconds:
            raise SystemExit(f"timed out after {seconds} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


class Mesh:
    """`nodes` keys n<i>.key and a genesis of all of them in directory `d`."""

    def __init__(self, binary, d, nodes, name):
        self.binary, self.d = binary, d
        self.keys = []
        for i in range(nodes):
            k = f"{d}/n{i}.key"
            subprocess.run([binary, "keygen", "--out", k], check=True, capture_output=True)
            self.keys.append(k)
        self.genesis = f"{d}/genesis.yaml"
        subprocess.run([binary, "mesh", "init", "--name", name, "--out", self.genesis]
                       + sum((["--member", k] for k in self.keys), []), check=True, capture_output=True)
        shown = [json.loads(subprocess.run([binary, "keygen", "--show", k, "--json"], check=True,
                                           capture_output=True).stdout) for k in self.keys]
        self.ids = [x.get("public_key") or x.get("publicKey") for x in shown]

    def state(self, i):
        return f"{self.d}/s{i}"

    def start(self, i, join):
        """Starts member i (membership only, state in s<i>, log in n<i>.log), joining `join`."""
        args = [self.binary, "start", "--key", self.keys[i], "--genesis", self.genesis, "--listen", "127.0.0.1:0",
                "--control", "127.0.0.1:0", "--state-dir", self.state(i), "--no-discovery", "--log-level", "notice",
                "--membership-only"]
        if join:
            args += ["--join", join]
        log = open(f"{self.d}/n{i}.log", "w")
        return subprocess.Popen(args, stdout=log, stderr=log)

    def start_all(self, first_up_seconds):
        """Starts member 0, waits until it answers, then starts the others joining it; returns the
        processes and member 0's listen address."""
        procs = [self.start(0, None)]
        wait("node 0 up", first_up_seconds, lambda: status(self.state(0)) is not None)
        seed = status(self.state(0))["listen"]
        for i in range(1, len(self.keys)):
            procs.append(self.start(i, seed))
        return procs, seed
