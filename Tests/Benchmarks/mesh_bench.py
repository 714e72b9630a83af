#!/usr/bin/env python3
"""Membership figures with real `prunemesh start` processes on loopback (issue 4's targets).

    python3 Tests/Benchmarks/mesh_bench.py --binary .build/release/prunemesh --nodes 16

Makes N keys and a genesis with the LAN default timings (probe 1 s, timeout 500 ms, suspicion
4-6x), starts node 0, then nodes 1..N-1 at once, all joining node 0, and measures:
  converge_s        from the launch of the last process until every node lists N alive members
  converge_ready_s  the same, from the moment the last node's control endpoint answered
  bytes/s per node  membership traffic (UDP payload incl. envelope) sent and received per node per
                    second, over --traffic-seconds once converged
  dead_s            from SIGKILL of one node until every other node lists it dead (max over nodes)
Polls the nodes' /status endpoints every 50 ms (no fixed waits except the traffic window).
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time


from bench_mesh import Mesh, status, wait

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/release/prunemesh")
    ap.add_argument("--nodes", type=int, default=16)
    ap.add_argument("--traffic-seconds", type=float, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    d = tempfile.mkdtemp(prefix="prunemesh-bench-")
    procs = []
    try:
        mesh = Mesh(binary, d, a.nodes, "bench")
        ids = mesh.ids

        started, seed = mesh.start_all(first_up_seconds=30)
        procs += started
        launched = time.monotonic()
        wait("all endpoints up", 60, lambda: all(status(f"{d}/s{i}") is not None for i in range(a.nodes)))
        ready = time.monotonic()

        def converged():
            for i in range(a.nodes):
                s = status(f"{d}/s{i}")
                if s is None or s["members_by_state"].get("alive") != a.nodes:
                    return False
            return True
        wait(f"{a.nodes} alive everywhere", 60, converged)
        done = time.monotonic()
        print(f"nodes={a.nodes} converge_s={done - launched:.2f} converge_ready_s={done - ready:.2f}")

        def totals():
            out = {}
            for i in range(a.nodes):
                c = status(f"{d}/s{i}")["counters"]
                out[i] = (c["bytes_out"], c["bytes_in"], c["datagrams_out"], time.monotonic())
            return out
        t0 = totals()
        time.sleep(a.traffic_seconds)
        t1 = totals()
        rates_out = [(t1[i][0] - t0[i][0]) / (t1[i][3] - t0[i][3]) for i in t0]
        rates_in = [(t1[i][1] - t0[i][1]) / (t1[i][3] - t0[i][3]) for i in t0]
        dgrams = [(t1[i][2] - t0[i][2]) / (t1[i][3] - t0[i][3]) for i in t0]
        print(f"bytes_out_per_node_per_s mean={sum(rates_out)/len(rates_out):.0f} max={max(rates_out):.0f} "
              f"bytes_in_per_node_per_s mean={sum(rates_in)/len(rates_in):.0f} max={max(rates_in):.0f} "
              f"datagrams_out_per_node_per_s mean={sum(dgrams)/len(dgrams):.2f}")

        victim = a.nodes - 1
        procs[victim].send_signal(signal.SIGKILL)
        procs[victim].wait()
        killed = time.monotonic()
        seen = {}
        def all_dead():
            for i in range(a.nodes - 1):
                if i in seen:
                    continue
                s = status(f"{d}/s{i}")
                if s and any(m["id"] == ids[victim] and m["state"] == "dead" for m in s["members"]):
                    seen[i] = time.monotonic() - killed
            return len(seen) == a.nodes - 1
        wait("killed node seen dead by all", 60, all_dead)
        print(f"dead_s max={max(seen.values()):.2f} median={sorted(seen.values())[len(seen)//2]:.2f} min={min(seen.values()):.2f}")
        rebinds = sum(status(f"{d}/s{i}")["counters"]["socket_rebinds"] for i in range(a.nodes - 1))
        print(f"socket_rebinds_total={rebinds}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if a.keep:
            print("kept", d)
        else:
            shutil.rmtree(d, ignore_errors=True)

if __name__ == "__main__":
    main()
