"""Plots of a scripts/bench.sh run: throughput and latency against offered load for the
cluster (transfers and whitelist batches), the lookup latency distribution and, when a
scale run was made, registration throughput and lookup p99 against devices stored."""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out = sys.argv[1]


def rows(pattern, key):
    found = []
    for path in glob.glob(os.path.join(out, pattern)):
        if "half" in path:
            continue
        with open(path) as f:
            found.append(json.loads(f.read().strip().splitlines()[-1]))
    return sorted(found, key=lambda r: r[key])


def cluster(name, data, offered, finalized, unit):
    if not data:
        return
    x = [offered(r) for r in data]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(x, x, "--", color="grey", label="offered")
    a.plot(x, [r[finalized] for r in data], "o-", label="finalized")
    a.set_xlabel(f"offered {unit}/s")
    a.set_ylabel(f"finalized {unit}/s")
    a.set_title(f"{name}: throughput vs offered load")
    a.legend()
    for p in ("p50_ms", "p90_ms", "p99_ms"):
        b.plot(x, [r[p] for r in data], "o-", label=p.split("_")[0])
    b.set_yscale("log")
    b.set_xlabel(f"offered {unit}/s")
    b.set_ylabel("submit to final, ms")
    b.set_title(f"{name}: commit latency vs offered load")
    b.legend()
    fig.suptitle("4 validators and the load generator on one 2-core machine")
    fig.tight_layout()
    path = os.path.join(out, f"{name}.png")
    fig.savefig(path, dpi=90)
    print(path)


cluster("transfers", rows("transfers-*.json", "offered_tps"), lambda r: r["offered_tps"], "finalized_tps", "tx")
cluster("whitelist", rows("whitelist-*.json", "offered_tps"), lambda r: r["offered_tps"] * r["devices_per_tx"], "finalized_devices_per_s", "devices")

lookups = [(n, os.path.join(out, f"lookups-{n}.json")) for n in ("single", "batched")]
lookups = [(n, json.load(open(p))) for n, p in lookups if os.path.exists(p)]
if lookups:
    fig, ax = plt.subplots(figsize=(6, 4))
    for n, d in lookups:
        pts = d["request_percentiles_ms"]
        label = "single requests" if n == "single" else f"batches of {d['batch']} (per batch)"
        ax.plot([p for p, _ in pts], [ms for _, ms in pts], label=f"{label}: {d['lookups_per_s']:.0f} lookups/s")
    ax.set_yscale("log")
    ax.set_xlabel("percentile")
    ax.set_ylabel("request latency, ms")
    ax.set_title("validate-device lookups against one node (8 connections)")
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out, "lookups.png")
    fig.savefig(path, dpi=90)
    print(path)

scale = os.path.join(out, "scale.jsonl")
if os.path.exists(scale):
    data = [json.loads(l) for l in open(scale)]
    x = [r["devices"] / 1e6 for r in data]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.plot(x, [r["devices_per_s"] for r in data], "o-")
    a.set_xlabel("devices registered (millions)")
    a.set_ylabel("devices/s (segment)")
    a.set_title("registration throughput as the state grows")
    b.plot(x, [r["lookup_p99_ms"] for r in data], "o-", label="p99")
    b.plot(x, [r["lookup_p50_ms"] for r in data], "o-", label="p50")
    b.set_xlabel("devices registered (millions)")
    b.set_ylabel("validate-device request, ms")
    b.set_title("lookup latency as the state grows")
    b.legend()
    fig.suptitle("scale run: one validator")
    fig.tight_layout()
    path = os.path.join(out, "scale.png")
    fig.savefig(path, dpi=90)
    print(path)
