#!/usr/bin/env python3
"""Aggregate throughput of a running `gemma serve` (or any OpenAI-compatible server).

    python3 bench/serve-load.py [--port 8080] [--clients 4] [--tokens 64]

N clients send one /v1/completions request each at the same time (different seeds); prints
the generated tokens per second over the wall time and the mean request latency."""
import argparse, http.client, json, threading, time

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, default=8080)
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--tokens", type=int, default=64)
ap.add_argument("--prompt", default="Once upon a time, in a small village by the sea,")
a = ap.parse_args()

results = []
def client(i):
    c = http.client.HTTPConnection(a.host, a.port, timeout=600)
    body = {"prompt": a.prompt, "max_tokens": a.tokens, "temperature": 0.8, "seed": i}
    t0 = time.time()
    c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    r = json.loads(c.getresponse().read())
    results.append((time.time() - t0, r["usage"]["completion_tokens"]))

client(0)  # warm-up
results.clear()
t0 = time.time()
threads = [threading.Thread(target=client, args=(i + 1,)) for i in range(a.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.time() - t0
tokens = sum(n for _, n in results)
print(f"{a.clients} clients: {tokens} tokens in {wall:.2f} s = {tokens / wall:.1f} tok/s aggregate; "
      f"mean latency {sum(l for l, _ in results) / len(results):.2f} s")
