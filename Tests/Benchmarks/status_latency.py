#!/usr/bin/env python3
"""Status latency while a node trains: polls node-1's control endpoint of a running
`prunemesh demo --dir DIR` every 250 ms and reports the answers timed while its phase is
training or finetuning.  Usage: status_latency.py DIR [COUNT]"""
import json, time, urllib.request, sys, os, statistics
d = sys.argv[1]; n = int(sys.argv[2]) if len(sys.argv) > 2 else 60
lat = []
deadline = time.time() + 600
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
    phase = json.loads(body).get('mesh', {}).get('phase')
    if phase in ('training', 'finetuning'):
        lat.append(ms)
    time.sleep(0.25)
lat.sort()
print(json.dumps({"count": len(lat), "median_ms": statistics.median(lat), "p95_ms": lat[int(0.95*len(lat))-1], "max_ms": lat[-1]}))
