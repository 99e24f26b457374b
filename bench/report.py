#!/usr/bin/env python3
"""Reads what bench/run.sh measured and renders BENCHMARKS.md.

    report.py pgbench NAME CLIENTS DIR   # one pgbench run -> a JSON line
    report.py render RESULTS.jsonl       # all results -> Markdown
    report.py compare OLD.jsonl LABEL NEW.jsonl
                                         # two runs' figures side by side -> Markdown
    report.py interleaved LABEL COMMIT ROUNDS SECONDS OLD1.jsonl,... NEW1.jsonl,...
                                         # bench/compare.sh's rounds, medians side by side -> Markdown
    report.py campaigns COMMIT ROUNDS SECONDS RESULTS.jsonl
                                         # bench/campaigns.sh's rounds -> Markdown
"""
import glob
import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone

TARGETS = {
    "enqueue_ratio": 0.5,       # enqueue_call TPS / bare INSERT TPS
    "claim_4_workers": 5000,    # calls/s
    "history_p50_ms": 1.0,
    "remaining_p50_ms": 0.2,
}


def percentile(values, p):
    values = sorted(values)
    if not values:
        return None
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def pgbench(name, clients, directory):
    out = open(os.path.join(directory, "pgbench.out")).read()
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    latencies = []
    for log in glob.glob(os.path.join(directory, "tx*")):
        for line in open(log):
            fields = line.split()
            if len(fields) >= 3:
                latencies.append(int(fields[2]) / 1000.0)  # microseconds -> ms
    print(json.dumps({
        "name": name, "clients": int(clients), "tps": tps, "transactions": len(latencies),
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
    }))


def machine():
    model = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
    return f"{os.cpu_count()} cores ({model}), {int(mem) // 1024 // 1024} GiB, {platform.system()} {platform.release()}"


def render(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    by = {}
    for r in rows:
        by.setdefault(r["name"], []).append(r)
    one = lambda name: by[name][0]
    server = one("server")
    out = []
    w = out.append
    w("# Benchmarks\n")
    w("Measured by `bench/run.sh` in one run; every figure below comes from that run. Regenerate with "
      "`bench/run.sh` (about ten minutes).\n")
    w(f"- commit: `{server['commit']}`, {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
    w(f"- machine: {machine()}")
    w(f"- server: {server['version']}, `shared_buffers = 2GB`, `fsync = off` (the same for every workload and "
      "its baseline), pg_dialer built with `--release`")
    w(f"- clients: pgbench on the same machine over the unix socket, `-M prepared`")
    w(f"- data set (`bench/data.sql`, loaded in {one('load')['seconds']:.0f} s): 10,000 users with profiles, "
      "active subscriptions and usage rows; 3 providers (concurrency limits 40, 30, 20) with 10,000 numbers "
      "over 40 US area codes and London; 1,000,000 history rows (100 per user)\n")

    w("## Targets\n")
    w("| measure | target | measured | |")
    w("|---|---|---|---|")
    results = []
    for c in (1, 2, 8):
        e = next(r for r in by["enqueue_call"] if r["clients"] == c)
        b = next(r for r in by["bare_insert"] if r["clients"] == c)
        ratio = e["tps"] / b["tps"]
        results.append((f"`enqueue_call` TPS vs bare INSERT, {c} client{'s' if c > 1 else ''}",
                        f">= {TARGETS['enqueue_ratio']}x", f"{ratio:.2f}x", ratio >= TARGETS["enqueue_ratio"]))
    claim4 = next(r for r in by["claim_due_calls"] if r["workers"] == 4)
    rate4 = claim4["claimed"] / claim4["seconds"]
    results.append(("`claim_due_calls`, 4 workers", f">= {TARGETS['claim_4_workers']:,} calls/s", f"{rate4:,.0f} calls/s",
                    rate4 >= TARGETS["claim_4_workers"]))
    hist = one("history_page")
    results.append(("a user's latest 50 history rows through RLS, p50", f"< {TARGETS['history_p50_ms']} ms",
                    f"{hist['p50_ms']:.3f} ms", hist["p50_ms"] < TARGETS["history_p50_ms"]))
    rem = one("compute_remaining_usage")
    results.append(("`compute_remaining_usage`, p50", f"< {TARGETS['remaining_p50_ms']} ms", f"{rem['p50_ms']:.3f} ms",
                    rem["p50_ms"] < TARGETS["remaining_p50_ms"]))
    for label, target, got, ok in results:
        w(f"| {label} | {target} | {got} | {'met' if ok else '**missed**'} |")
    w("")

    w("## `enqueue_call` against a bare INSERT\n")
    w("`enqueue_call` as a signed-in user (role and claims set in the transaction, as PostgREST sets them), with a "
      "template and variables: it normalizes the number, checks template, variables, voice, subscription and quota "
      "under the user's lock. The baseline is the owner's bare `INSERT` of the same row, with none of that: the "
      "ceiling.\n")
    w("| clients | bare INSERT TPS | `enqueue_call` TPS | ratio | `enqueue_call` p50 | p99 |")
    w("|---|---|---|---|---|---|")
    for c in (1, 2, 8):
        e = next(r for r in by["enqueue_call"] if r["clients"] == c)
        b = next(r for r in by["bare_insert"] if r["clients"] == c)
        w(f"| {c} | {b['tps']:,.0f} | {e['tps']:,.0f} | {e['tps'] / b['tps']:.2f}x | {e['p50_ms']:.2f} ms | {e['p99_ms']:.2f} ms |")
    w("")

    w("## `claim_due_calls` draining 100,000 calls\n")
    w("Each worker claims up to 50 due calls, checks in the same transaction that no provider is over its limit, "
      "then finishes 50 calls in progress (their results arrive), so providers have room again. Throughput is "
      "claimed calls over the time from the first claim to the last.\n")
    w("| workers | calls claimed | calls/s | claimed twice | limits exceeded | per provider |")
    w("|---|---|---|---|---|---|")
    for r in by["claim_due_calls"]:
        w(f"| {r['workers']} | {r['claimed']:,} | {r['claimed'] / r['seconds']:,.0f} | {r['claimed'] - r['distinct']} | "
          f"0 (checked in every claim) | {', '.join(f'{k} {v:,}' for k, v in sorted(r['per_provider'].items()))} |")
    w("")

    w("## `record_call_result`\n")
    chk = one("record_call_result_check")
    w(f"First deliveries of a VAPI end-of-call report, each for another call in progress, as `service_role`: "
      f"{chk['delivered']:,} delivered, {chk['history_rows']:,} history rows written.\n")
    w("| clients | TPS | p50 | p99 |")
    w("|---|---|---|---|")
    for r in by["record_call_result"]:
        w(f"| {r['clients']} | {r['tps']:,.0f} | {r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms |")
    w("")

    w("## Latencies, one client\n")
    w("| query | p50 | p99 | transactions |")
    w("|---|---|---|---|")
    for name, label in (("compute_remaining_usage", "`compute_remaining_usage()` as a user"),
                        ("pick_provider_number", "`pick_provider_number()` for a random US number"),
                        ("history_page", "a user's latest 50 history rows through RLS, with the user's filter"),
                        ("history_page_rls_only", "the same through RLS alone, no filter of the user's own")):
        r = one(name)
        w(f"| {label} | {r['p50_ms']:.3f} ms | {r['p99_ms']:.3f} ms | {r['transactions']:,} |")
    w("")
    w("The history page's plan, as the user (`EXPLAIN`), with the filter a PostgREST client sends "
      "(`?user_id=eq.<id>&order=created_at.desc&limit=50`): the identity is a one-time InitPlan, the rows come "
      "from an index scan of the user's latest calls.\n")
    w("```")
    w(one("history_explain")["plan"].rstrip())
    w("```\n")

    w("## `rollover_billing_periods` over 100,000 ended subscriptions\n")
    ro = one("rollover")
    w(f"{ro['renewed']:,} subscriptions renewed, each with a fresh usage row, in {ro['seconds']:.1f} s "
      f"({ro['renewed'] / ro['seconds']:,.0f} per second), one transaction.\n")

    notes = os.path.join(os.path.dirname(__file__), "NOTES.md")
    if os.path.exists(notes):
        w(open(notes).read().rstrip() + "\n")
    return "\n".join(out)


def figures(path):
    """The headline figures of one run, as (section, measure, value, higher is better)."""
    rows = [json.loads(l) for l in open(path) if l.strip()]
    by = {}
    for r in rows:
        by.setdefault(r["name"], []).append(r)
    out = []
    for c in (1, 2, 8):
        e = next(r for r in by["enqueue_call"] if r["clients"] == c)
        b = next(r for r in by["bare_insert"] if r["clients"] == c)
        out.append(("enqueue", f"`enqueue_call` TPS, {c} client{'s' if c > 1 else ''}", e["tps"], True))
        out.append(("enqueue", f"`enqueue_call` / bare INSERT, {c} client{'s' if c > 1 else ''}",
                    e["tps"] / b["tps"], True))
    for r in by["claim_due_calls"]:
        out.append(("claim", f"`claim_due_calls` calls/s, {r['workers']} worker{'s' if r['workers'] > 1 else ''}",
                    r["claimed"] / r["seconds"], True))
    for r in by["record_call_result"]:
        out.append(("result", f"`record_call_result` TPS, {r['clients']} client{'s' if r['clients'] > 1 else ''}",
                    r["tps"], True))
    for name, label in (("compute_remaining_usage", "`compute_remaining_usage()` p50, ms"),
                        ("pick_provider_number", "`pick_provider_number()` p50, ms"),
                        ("history_page", "history page p50, ms")):
        out.append(("latency", label, by[name][0]["p50_ms"], False))
    ro = by["rollover"][0]
    out.append(("rollover", "`rollover_billing_periods` subscriptions/s", ro["renewed"] / ro["seconds"], True))
    return out


def compare(old_path, label, new_path):
    old = {m: v for _, m, v, _ in figures(old_path)}
    out = [f"## Side by side with {label}\n",
           f"{label} measured on this machine in the same session, just before or after this run, by its own "
           "`bench/run.sh` (the workloads are the same). Change: positive is better (more throughput, less "
           "latency).\n",
           f"| measure | {label} | this version | change |", "|---|---|---|---|"]
    for _, measure, value, higher in figures(new_path):
        before = old[measure]
        change = (value / before - 1) if higher else (before / value - 1)
        fmt = (lambda v: f"{v:.3f}") if not higher or value < 10 else (lambda v: f"{v:,.0f}")
        out.append(f"| {measure} | {fmt(before)} | {fmt(value)} | {change:+.0%} |")
    return "\n".join(out) + "\n"


def interleaved(label, commit, rounds, seconds, old_paths, new_paths):
    """The medians of bench/compare.sh's rounds, each version beside the other."""
    def medians(paths):
        runs = [figures(p) for p in paths.split(",")]
        return [(measure, higher, [run[i][2] for run in runs]) for i, (_, measure, _, higher) in enumerate(runs[0])]
    old = {m: v for m, _, v in medians(old_paths)}
    fmt = lambda v, higher: f"{v:.3f}" if not higher or v < 10 else f"{v:,.0f}"
    out = [f"## Side by side with {label}, interleaved\n",
           f"Measured by `bench/compare.sh` in one run at `{commit}`, "
           f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}: {label} and this version in one "
           f"PostgreSQL cluster, each on its own copy of the data set, every workload run on one and then the "
           f"other, {rounds} rounds (the order alternating), {seconds} s per pgbench run and 30,000 calls per claim "
           f"run. Figures are the medians of the rounds, with their range; change: positive is better (more "
           f"throughput, less latency).\n",
           f"| measure | {label} | this version | change | {label} range | this version's range |",
           "|---|---|---|---|---|---|"]
    for measure, higher, values in medians(new_paths):
        before, after = percentile(old[measure], 50), percentile(values, 50)
        change = (after / before - 1) if higher else (before / after - 1)
        span = lambda vs: f"{fmt(min(vs), higher)} to {fmt(max(vs), higher)}"
        out.append(f"| {measure} | {fmt(before, higher)} | {fmt(after, higher)} | {change:+.0%} | "
                   f"{span(old[measure])} | {span(values)} |")
    return "\n".join(out) + "\n"


def campaigns(commit, rounds, seconds, path):
    """bench/campaigns.sh: enqueue_calls against the bare INSERT of its rows,
    claims with windows against claims without, each round's ratio."""
    rows = [json.loads(line) for line in open(path)]
    by = lambda name: [r for r in rows if r["name"] == name]
    rate = lambda r: r["claimed"] / r["seconds"] if r["seconds"] else 0.0
    fmt = lambda vs: ", ".join(f"{v:,.2f}" if v < 10 else f"{v:,.0f}" for v in vs)
    bare, batch = by("bare_insert_batch"), by("enqueue_calls")
    without, within, due = by("claims_without_windows"), by("claims_with_windows"), by("claims_with_windows_due")
    batch_ratio = [b["tps"] / a["tps"] for a, b in zip(bare, batch)]
    claim_ratio = [rate(b) / rate(a) for a, b in zip(without, within)]
    due_ratio = [rate(b) / rate(a) for a, b in zip(without, due)]
    out = ["## Campaigns and calling windows\n",
           f"Measured by `bench/campaigns.sh` at `{commit}`, "
           f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, on {machine()}: {rounds} rounds, "
           f"{seconds} s per pgbench run (1 client), each round's figures in order. A batch is 10,000 calls "
           "(recipient, variables) with a shared template, sent as one `enqueue_calls()` by a signed-in user, "
           "or inserted by the owner with one `INSERT ... SELECT` of the same rows (no checks); both roll back. "
           "Claims drain 10,000 due calls with one worker (`claim_due_calls(50)`) from a queue of 20,000: "
           "without windows the other half is due tomorrow; with windows the due half has a window open now "
           "and the other half one closed now, due at its opening (where enqueue puts it); "
           "\"with windows, due\" has that half due now, so the claims move each to its opening.\n",
           "| measure | rounds | target |", "|---|---|---|",
           f"| bare INSERT of 10,000 rows, batches/s | {fmt([r['tps'] for r in bare])} | |",
           f"| `enqueue_calls()` of 10,000 calls, batches/s | {fmt([r['tps'] for r in batch])} | |",
           f"| `enqueue_calls()` / bare INSERT | {fmt(batch_ratio)} | at least 0.5 |",
           f"| claims without windows, calls/s | {fmt([rate(r) for r in without])} | |",
           f"| claims with windows, calls/s | {fmt([rate(r) for r in within])} | |",
           f"| with windows / without | {fmt(claim_ratio)} | at least 0.8 |",
           f"| claims with windows, outside half due, calls/s | {fmt([rate(r) for r in due])} | |",
           f"| with windows, due / without | {fmt(due_ratio)} | |"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if sys.argv[1] == "pgbench":
        pgbench(*sys.argv[2:5])
    elif sys.argv[1] == "render":
        sys.stdout.write(render(sys.argv[2]))
    elif sys.argv[1] == "compare":
        sys.stdout.write(compare(*sys.argv[2:5]))
    elif sys.argv[1] == "interleaved":
        sys.stdout.write(interleaved(*sys.argv[2:8]))
    elif sys.argv[1] == "campaigns":
        sys.stdout.write(campaigns(*sys.argv[2:6]))
    else:
        sys.exit(__doc__)
