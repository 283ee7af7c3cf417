#!/usr/bin/env python3
"""Throughput and latency of a running `gemma serve` (or any OpenAI-compatible server).

    python3 bench/serve-load.py [--port 8080] [--clients 4] [--tokens 64] [--api-key KEY]

N clients send one streamed /v1/completions request each at the same time (different seeds);
prints the generated tokens per second over the wall time, and the p50/p95 of the request
latency and of the time to first token (the first streamed text)."""
import argparse, http.client, json, threading, time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, default=8080)
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--tokens", type=int, default=64)
ap.add_argument("--api-key", default=None, help="sent as Authorization: Bearer KEY")
ap.add_argument("--prompt", default="Once upon a time, in a small village by the sea,")
a = ap.parse_args()
headers = {"Content-Type": "application/json"}
if a.api_key:
    headers["Authorization"] = f"Bearer {a.api_key}"

results = []  # (latency, time to first token, completion tokens)
def client(i):
    c = http.client.HTTPConnection(a.host, a.port, timeout=600)
    body = {"prompt": a.prompt, "max_tokens": a.tokens, "temperature": 0.8, "seed": i, "stream": True,
            "stream_options": {"include_usage": True}}
    t0 = time.time()
    c.request("POST", "/v1/completions", json.dumps(body), headers)
    r = c.getresponse()
    if r.status != 200:
        raise SystemExit(f"HTTP {r.status}: {r.read()[:300]!r}")
    ttft, chunks, usage = None, 0, None
    for line in r:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if ev.get("usage"):
            usage = ev["usage"]["completion_tokens"]
        if ev.get("choices") and ev["choices"][0].get("text"):
            chunks += 1
            if ttft is None:
                ttft = time.time() - t0
    results.append((time.time() - t0, ttft or 0.0, usage if usage is not None else chunks))

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

client(0)  # warm-up
results.clear()
t0 = time.time()
threads = [threading.Thread(target=client, args=(i + 1,)) for i in range(a.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.time() - t0
tokens = sum(n for _, _, n in results)
lat, ttft = [l for l, _, _ in results], [f for _, f, _ in results]
print(f"{a.clients} clients: {tokens} tokens in {wall:.2f} s = {tokens / wall:.1f} tok/s aggregate; "
      f"latency p50 {pct(lat, 50):.2f} s p95 {pct(lat, 95):.2f} s; "
      f"time to first token p50 {pct(ttft, 50):.3f} s p95 {pct(ttft, 95):.3f} s")
