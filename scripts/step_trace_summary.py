#!/usr/bin/env python3
"""Summarises a step trace (kiln serve -Dkiln.stepTrace=FILE): where a serving run's time went.

    python3 scripts/step_trace_summary.py steps.csv [more.csv ...]

Steps are grouped by kind (decode: no prompt tokens; mixed: prompt chunks, with or without decodes)
and, within a kind, by the number of sequences (buckets of powers of two). For each group: the
steps, their share of the traced wall time, the mean tokens and sequences, the mean time of each
phase (schedule; launch = issuing the model's and the sampler's ops; overlap = handing out the
previous step's tokens while the device computes; wait = the rest of the device's work; update),
and the tokens sampled per second of the group's time. The idle time between steps
(the engine waiting for requests) is reported apart.
"""
import csv
import sys


def bucket(n):
    b = 1
    while b < n:
        b <<= 1
    return b


def summarise(path):
    # A trace cut off mid-line (the server killed before it flushed) loses its last row.
    rows = [r for r in csv.DictReader(open(path)) if None not in r.values() and "" not in r.values()]
    if not rows:
        print(f"{path}: no steps")
        return
    for r in rows:
        for k in r:
            r[k] = int(r[k])
        r["busy_us"] = r["schedule_us"] + r["launch_us"] + r["overlapped_us"] + r["wait_us"] + r["update_us"]
    first, last = rows[0], rows[-1]
    wall = last["start_us"] + last["busy_us"] - first["start_us"]
    busy = sum(r["busy_us"] for r in rows)
    groups = {}
    for r in rows:
        kind = "decode" if r["prefill_tokens"] == 0 else "mixed"
        groups.setdefault((kind, bucket(r["seqs"])), []).append(r)
    print(f"{path}: {len(rows)} steps over {wall / 1e6:.2f} s, busy {busy / 1e6:.2f} s "
          f"(idle {100 * (wall - busy) / max(wall, 1):.1f}%), {sum(r['sampled'] for r in rows)} tokens sampled, "
          f"{sum(r['prefill_tokens'] for r in rows)} prompt tokens")
    print(f"{'kind':>6} {'seqs<=':>6} {'steps':>6} {'time%':>6} {'tokens':>7} {'seqs':>6} {'sched':>7} {'launch':>7} "
          f"{'overlap':>8} {'wait':>7} {'update':>7} {'step ms':>8} {'sampled/s':>10}")
    for (kind, b), rs in sorted(groups.items()):
        n = len(rs)
        t = sum(r["busy_us"] for r in rs)
        mean = lambda k: sum(r[k] for r in rs) / n
        print(f"{kind:>6} {b:>6} {n:>6} {100 * t / busy:>6.1f} {mean('tokens'):>7.0f} {mean('seqs'):>6.0f} "
              f"{mean('schedule_us'):>7.0f} {mean('launch_us'):>7.0f} {mean('overlapped_us'):>8.0f} "
              f"{mean('wait_us'):>7.0f} {mean('update_us'):>7.0f} {t / n / 1000:>8.2f} {sum(r['sampled'] for r in rs) / (t / 1e6):>10.0f}")


for p in sys.argv[1:]:
    summarise(p)
    print()
