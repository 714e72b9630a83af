#!/usr/bin/env python3
"""Idle connections against a node's control endpoint under a low descriptor limit (issue 12,
item 4): starts `prunemesh start --membership-only` with `ulimit -n 64`, opens N idle TCP
connections to its control port, and reports the node's CPU share over SECONDS, how many
connections the node closed, and whether `/status` (with the operator token) still answers.

    python3 Tests/Benchmarks/control_idle_connections.py --binary .build/debug/prunemesh [--connections 100] [--seconds 5]
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/debug/prunemesh")
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    d = tempfile.mkdtemp(prefix="prunemesh-idle-")
    try:
        subprocess.run([binary, "keygen", "--out", f"{d}/k.key"], check=True, capture_output=True)
        subprocess.run([binary, "mesh", "init", "--name", "idle", "--out", f"{d}/g.yaml", "--member", f"{d}/k.key"],
                       check=True, capture_output=True)
        log = open(f"{d}/node.log", "w")
        node = subprocess.Popen(["/bin/sh", "-c", 'ulimit -n 64 && exec "$0" "$@"', binary, "start", "--key", f"{d}/k.key",
                                 "--genesis", f"{d}/g.yaml", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                                 "--state-dir", f"{d}/s", "--no-discovery", "--membership-only"], stdout=log, stderr=log)
        deadline = time.time() + 30
        while True:
            try:
                c = json.load(open(f"{d}/s/control.json"))
                if c["pid"] == node.pid: break
            except Exception:
                pass
            if time.time() > deadline or node.poll() is not None: sys.exit("node did not start")
            time.sleep(0.05)
        conns = [socket.create_connection((c["host"], c["port"])) for _ in range(a.connections)]
        time.sleep(0.2)
        c0, t0 = cpu_seconds(node.pid), time.time()
        time.sleep(a.seconds)
        share = (cpu_seconds(node.pid) - c0) / (time.time() - t0)
        closed = 0
        for s in conns:
            s.setblocking(False)
            try:
                while True:
                    b = s.recv(4096)
                    if not b: closed += 1; break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed += 1
        headers = {}
        if os.path.exists(f"{d}/s/control.token"):
            headers["Authorization"] = "Bearer " + open(f"{d}/s/control.token").read().strip()
        t = time.perf_counter()
        try:
            urllib.request.urlopen(urllib.request.Request(f"http://{c['host']}:{c['port']}/status", headers=headers), timeout=2).read()
            answered = f"yes, in {(time.perf_counter() - t) * 1000:.0f} ms"
        except Exception as e:
            answered = f"no ({e})"
        print(json.dumps({"connections": a.connections, "cpu_share_of_a_core": round(share, 3),
                          "closed_by_node": closed, "status_answered": answered}))
        node.terminate(); node.wait(timeout=15)
    finally:
        shutil.rmtree(d, ignore_errors=True)

main()
