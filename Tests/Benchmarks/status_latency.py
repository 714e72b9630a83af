#!/usr/bin/env python3
"""Status latency while a node works: polls node-1's control endpoint of a running
`prunemesh demo --dir DIR` every 250 ms and reports the answers timed while its phase is one
of PHASES (default: training or finetuning; a federated demo reports its round logic's phase
in mesh.federation.phase: training, agreeing — update blobs moving — or advancing — the
aggregate computed). Usage: status_latency.py DIR [COUNT] [PHASES]
Example, federated, while updates move and the aggregate is computed:
  status_latency.py /tmp/demo-fed 40 agreeing,advancing"""
import json, time, urllib.request, sys, os, statistics
d = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 60
phases = set(sys.argv[3].split(',')) if len(sys.argv) > 3 else {'training', 'finetuning'}
lat = []
seen = {}
deadline = time.time() + 900
while len(lat) < n and time.time() < deadline:
    try:
        c = json.load(open(os.path.join(d, 'node-1', 'control.json')))
        token = open(os.path.join(d, 'node-1', 'control.token')).read().strip()
    except Exception:
        time.sleep(0.2); continue
    t = time.perf_counter()
    try:
        # /status needs the operator token (the node's control.token).
        req = urllib.request.Request(f"http://{c['host']}:{c['port']}/status", headers={"Authorization": f"Bearer {token}"})
        body = urllib.request.urlopen(req, timeout=2).read()
    except Exception:
        time.sleep(0.2); continue
    ms = (time.perf_counter() - t) * 1000
    mesh = json.loads(body).get('mesh', {}) or {}
    phase = (mesh.get('federation') or {}).get('phase') or mesh.get('phase')
    seen[phase] = seen.get(phase, 0) + 1
    if phase in phases:
        lat.append(ms)
    time.sleep(0.25)
lat.sort()
if not lat:
    print(json.dumps({"count": 0, "phases_seen": seen})); sys.exit(1)
print(json.dumps({"count": len(lat), "phases": sorted(phases), "median_ms": statistics.median(lat),
                  "p95_ms": lat[max(0, int(0.95 * len(lat)) - 1)], "max_ms": lat[-1], "phases_seen": seen}))
