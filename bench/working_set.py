#!/usr/bin/env python3
"""What a growing working set of bearer tokens costs (issue 19, item 4):
for each `token_cache_size` and each number of distinct valid RS256 tokens,
a fresh Envoy (--concurrency 1, the filter in V8, a direct_response behind
it) is sent every token once (the warm pass), then the tokens in a cycle
for --seconds, and reports req/s, the worker's token cache hit rate and
what its memory grew by. Called by bench/working-set.sh.

Reuses bench/bench.py's pieces (Envoy from bench/envoy/*.yaml, free ports,
wrk with bench/wrk/bench.lua, which sends a file's lines in a cycle from
START_AT) and bench/mint.mjs's tokens. Python standard library only.

Memory: Envoy's admin /memory counts its own allocator only; the filter's
caches live in the wasm VM's linear memory, which V8 maps itself, so the
process RSS (/proc/<pid>/status) is what shows them. Linear memory grows in
64 KiB pages and never shrinks; RSS counts the pages touched.
"""

import argparse
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no bench/__pycache__ from importing bench.py
from bench import Envoy, get, log, stop_all, wrk  # noqa: E402  (bench/bench.py's pieces)

ROOT = HERE.parent
# Any name: the filter reaches it through `idp_cluster`, and the tokens
# minted for it can be reused across runs whatever port the IdP gets.
ISSUER = "http://idp.working-set.bench"
DEFAULT_SIZE = 4096  # the filter's default token_cache_size (src/config.rs)
# Tokens are valid 2 h from minting (bench/mint.mjs); reuse them for 1 h.
MINT_REUSE_SECONDS = 3600


def mint(run, n):
    """`n` distinct RS256 tokens in <run>/tokens/rs256.txt, reused when a
    previous run minted enough of them less than an hour ago."""
    out = run / "tokens"
    stamp = out / "minted.json"
    try:
        old = json.loads(stamp.read_text())
        if old["n"] >= n and old["issuer"] == ISSUER and time.time() - old["at"] < MINT_REUSE_SECONDS:
            log(f"reusing {old['n']} tokens minted {time.time() - old['at']:.0f}s ago")
            return out
    except (OSError, ValueError, KeyError):
        pass
    t = time.time()
    subprocess.run(["node", str(HERE / "mint.mjs"), str(out), ISSUER, str(n)], check=True,
                   stdout=subprocess.DEVNULL)
    stamp.write_text(json.dumps({"n": n, "issuer": ISSUER, "at": t}))
    log(f"minted {n} distinct RS256 tokens in {time.time() - t:.1f}s")
    return out


def first_lines(src, n, dest):
    """The first `n` tokens of `src`, as their own file for wrk."""
    with open(src) as f, open(dest, "w") as g:
        for i, line in enumerate(f):
            if i >= n:
                break
            g.write(line)
    return dest


def memory(envoy):
    """The process RSS and Envoy's allocator's `allocated`, in bytes."""
    status = Path(f"/proc/{envoy.proc.pid}/status").read_text()
    rss = next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin}/memory", timeout=5) as r:
        allocated = int(json.loads(r.read())["allocated"])
    return {"rss": rss, "allocated": allocated}


def counters(envoy):
    # Metrics reach Envoy on the filter's 1 s tick.
    time.sleep(1.2)
    return envoy.counter("token_cache_hit"), envoy.counter("token_cache_miss")


def scenario(args, run, ports, idp, tokens_file, one_file, n, size, label=None, distinct=None):
    """`n`: the lines of `tokens_file`; `distinct`: the tokens among them
    (`n` by default); `label`: the working set in the table, if not that."""
    config = {"issuer": ISSUER, "idp_cluster": "idp", "auth_methods": ["bearer"]}
    if size != DEFAULT_SIZE:
        config["token_cache_size"] = size
    name = f"ws-{n}-{size}" if label is None else f"ws-mixed-{size}"
    envoy = Envoy(name, "wasm.yaml", run, ports, WASM=args.oidc_wasm, CONFIG=json.dumps(config),
                  IDP_PORT=idp.port)
    try:
        envoy.wait_ready()
        status, body = get(envoy.port, "/api", {"Authorization": one_file.read_text().strip()})
        if status != 200:
            raise RuntimeError(f"{name}: status {status}: {body[:200]!r}")
        # Connections, JIT tiers, discovery and keys: one token, 1 s.
        wrk(envoy.port, 1, one_file)
        base = memory(envoy)

        # Warm pass: every token sent at least once (wrk runs for a time,
        # not a count: short runs until the requests cover the file).
        position, sent, t = 0, 0, time.time()
        while sent < n:
            r = wrk(envoy.port, 2, tokens_file, position)
            sent += r["requests"]
            position = (position + r["requests"]) % n
            if r["non2xx"]:
                raise RuntimeError(f"{name}: {r['non2xx']} refusals in the warm pass")
        warm = {"seconds": round(time.time() - t, 1), "requests": sent, **memory(envoy)}

        hits, misses = counters(envoy)
        r = wrk(envoy.port, args.seconds, tokens_file, position)
        hits2, misses2 = counters(envoy)
        end = memory(envoy)
        looked_up = (hits2 - hits) + (misses2 - misses)
        distinct = distinct or n
        cached = min(distinct, size)
        result = {
            "distinct": distinct, "label": label or f"{n:,}", "mixed": label is not None,
            "token_cache_size": size, "cached": cached,
            "rps": r["rps"], "p50_us": r["p50_us"], "p99_us": r["p99_us"], "requests": r["requests"],
            "non2xx": r["non2xx"], "hit_rate": (hits2 - hits) / looked_up if looked_up else None,
            "base": base, "warm": warm, "end": end,
            "rss_growth": end["rss"] - base["rss"],
            "allocated_growth": end["allocated"] - base["allocated"],
        }
        result["rss_per_entry"] = result["rss_growth"] / cached
        log(f"{result['label']:>7} tokens, token_cache_size {size:>7,}: {r['rps']:>9,.0f} req/s, hit rate "
            f"{result['hit_rate']:.3f}, RSS +{result['rss_growth'] / 2**20:.1f} MiB "
            f"({result['rss_per_entry']:,.0f} B per cached entry), Envoy allocator "
            f"{result['allocated_growth'] / 2**20:+.1f} MiB; warm pass {warm['seconds']}s")
        return result
    finally:
        envoy.stop()
        Envoy.live.remove(envoy)


def table(results):
    lines = ["| token_cache_size | distinct tokens | req/s | p99 ms | hit rate | entries kept | "
             "Envoy RSS growth | per entry kept | Envoy allocator growth |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        default = " (default)" if r["token_cache_size"] == DEFAULT_SIZE else ""
        lines.append(
            f"| {r['token_cache_size']:,}{default} | {r['label']} | {r['rps']:,.0f} | "
            f"{r['p99_us'] / 1000:.2f} | {r['hit_rate']:.1%} | {r['cached']:,} | "
            f"{r['rss_growth'] / 2**20:.1f} MiB | {r['rss_per_entry']:,.0f} B | "
            f"{r['allocated_growth'] / 2**20:+.1f} MiB |")
    lines.append("")
    lines += marginal(results)
    return "\n".join(lines)


def marginal(results):
    """Per entry, between the smallest and largest cache on the same working
    set: both Envoys verified the same tokens and served the same requests,
    so what else grew (JIT code, buffers) cancels out, as in
    tests/cache_memory.rs."""
    out = []
    rows = [r for r in results if not r["mixed"]]
    for n in sorted({r["distinct"] for r in rows}):
        same = sorted((r for r in rows if r["distinct"] == n), key=lambda r: r["cached"])
        lo, hi = same[0], same[-1]
        if hi["cached"] > lo["cached"]:
            per = (hi["rss_growth"] - lo["rss_growth"]) / (hi["cached"] - lo["cached"])
            out.append(f"- {n:,} tokens: {per:,.0f} B of RSS per entry kept "
                       f"({hi['cached']:,} entries against {lo['cached']:,}, same requests)")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oidc-wasm", required=True)
    ap.add_argument("--seconds", type=int, default=10, help="measured run per scenario")
    ap.add_argument("--distinct", default="1000,10000,100000", help="working sets, comma-separated")
    ap.add_argument("--sizes", default=f"{DEFAULT_SIZE},131072", help="token_cache_size values")
    ap.add_argument("--mixed", default="1000:20000",
                    help="HOT:ONCE, a mix with the default cache: HOT tokens in turn, each request "
                         "between them a token sent once in the cycle ('' for none)")
    ap.add_argument("--run-dir", default=str(ROOT / ".run" / "working-set"))
    args = ap.parse_args()
    distinct = [int(x) for x in args.distinct.split(",")]
    sizes = [int(x) for x in args.sizes.split(",")]
    run = Path(args.run_dir).resolve()
    run.mkdir(parents=True, exist_ok=True)
    for old in run.glob("*.log"):
        old.unlink()
    ports = set()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        hot, once = (int(x) for x in args.mixed.split(":")) if args.mixed else (0, 0)
        if args.mixed and not 0 < hot <= once:
            sys.exit(f"--mixed {args.mixed}: HOT:ONCE needs 0 < HOT <= ONCE")
        minted = mint(run, max(distinct + [hot + once]))
        # bench/envoy/idp.yaml serves the documents from the run directory.
        for doc in ("discovery.json", "jwks.json", "token-reply.json"):
            (run / doc).write_text((minted / doc).read_text())
        idp = Envoy("idp", "idp.yaml", run, ports)
        idp.wait_ready()
        one = minted / "one.txt"
        results = []
        for n in distinct:
            tokens_file = first_lines(minted / "rs256.txt", n, run / f"rs256-{n}.txt")
            for size in sizes:
                results.append(scenario(args, run, ports, idp, tokens_file, one, n, size))
        if hot:
            # Clients that keep their tokens among a stream of tokens seen
            # once in the cache's lifetime (a scan, many short-lived clients):
            # whether the stream pushes the kept ones out of the cache.
            lines = (minted / "rs256.txt").read_text().splitlines()
            mixed = run / f"rs256-mixed-{hot}-{once}.txt"
            mixed.write_text("".join(f"{lines[i % hot]}\n{lines[hot + i]}\n" for i in range(once)))
            label = f"{hot:,} in turn + {once:,} once each"
            results.append(scenario(args, run, ports, idp, mixed, one, 2 * once, DEFAULT_SIZE, label,
                                    hot + once))
    finally:
        stop_all()
    (run / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    bad = [f"{r['distinct']}/{r['token_cache_size']}: {r['non2xx']} refusals" for r in results if r["non2xx"]]
    if bad:
        log("FAILED: " + "; ".join(bad))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
