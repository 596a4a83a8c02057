#!/usr/bin/env python3
"""coldarchive's series benchmark (issue 19): what restore day costs beyond a whole restore.

    seriesbench.py --bin .build/release/coldarchive [--size 1GB] [--runs 5] [--work .build-bench]

On the 1 GB CRM tree of bench.py (Tests/Fixtures/crm_sample.py, made once in WORK/data-SIZE):
  selective  restore ARCHIVE --include PATH of the file closest to 1 MB, to tmpfs and to a fresh ext4
             image: wall time (median), bytes and data chunks read (from the report), against a whole
             restore of the same archive to tmpfs. The keyring has no passphrase, so no key derivation is
             in the figure; the unlock of a passphrase-protected keyring (Argon2id, its own cost) is timed
             on its own with `keys status`.
It writes WORK/results-series.{json,md}.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Target, keyring, measure, sh, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def closest_file(root, size):
    """The archive path (from the top-level name) of the regular file whose size is closest to `size`."""
    best = None
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                continue
            gap = abs(os.path.getsize(path) - size)
            if best is None or gap < best[0]:
                best = (gap, path)
    top = os.path.dirname(root)
    return os.path.relpath(best[1], top), os.path.getsize(best[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--size", default="1GB")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", default=os.path.join(ROOT, ".build-bench"))
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    os.makedirs(args.work, exist_ok=True)
    data = os.path.join(args.work, f"data-{args.size}", "crm")
    if not os.path.exists(data):
        subprocess.run([sys.executable, os.path.join(ROOT, "Tests/Fixtures/crm_sample.py"), "--out", data, "--size", args.size], check=True)
    keys = keyring(binary, args.work)
    archive = os.path.join(args.work, f"series-{args.size}.car")
    if os.path.exists(archive):
        os.remove(archive)
    sh(f"'{binary}' create --keyring '{keys}' --out '{archive}' '{data}' > /dev/null")
    member, member_bytes = closest_file(data, 1 << 20)
    print(f"selective restore of {member} ({member_bytes} bytes)", file=sys.stderr)

    kinds = Target.usable(["tmpfs", "ext4"])
    results = []
    for kind in kinds:
        target = Target(kind, args.work, "series", "4G")
        walls, cpus, reports = [], [], []
        for _ in range(args.runs):
            target.prepare()
            sh(f"cat '{archive}' > /dev/null; sync")
            out = os.path.join(target.root, "restored")
            report_file = os.path.join(args.work, "selective-report.json")
            m = measure(f"'{binary}' restore '{archive}' --keyring '{keys}' --to '{out}' --include '{member}' --json > '{report_file}'")
            with open(report_file) as f:
                reports.append(json.load(f))
            walls.append(m["wall"])
            cpus.append(m["cpu"])
            target.release()
        last = reports[-1]
        results.append({"op": f"restore --include one {member_bytes / 1e6:.1f} MB file, to {kind}", "runs": args.runs,
                        "wall_s": round(statistics.median(walls), 3), "cpu_s": round(statistics.median(cpus), 3),
                        "walls": [round(w, 3) for w in walls], "bytes_read": last["bytesRead"],
                        "data_chunks_read": last["dataChunksRead"], "data_chunks": last["dataChunks"],
                        "archive_bytes": os.path.getsize(archive), "entries": last["entries"]})
        print(f"  {results[-1]}", file=sys.stderr)
    # The whole restore of the same archive, for scale.
    target = Target("tmpfs", args.work, "series", "4G")
    walls = []
    for _ in range(min(args.runs, 3)):
        target.prepare()
        sh(f"cat '{archive}' > /dev/null; sync")
        walls.append(measure(f"'{binary}' restore '{archive}' --keyring '{keys}' --to '{target.root}/restored' > /dev/null")["wall"])
        target.release()
    results.append({"op": "whole restore of the same archive, to tmpfs", "runs": len(walls), "wall_s": round(statistics.median(walls), 3),
                    "walls": [round(w, 3) for w in walls], "archive_bytes": os.path.getsize(archive)})
    os.remove(archive)

    lines = ["| operation | runs | wall (median) | bytes read | data chunks read |", "|---|---|---|---|---|"]
    for r in results:
        read = f"{r['bytes_read']:,} of {r['archive_bytes']:,}" if "bytes_read" in r else "—"
        chunks = f"{r['data_chunks_read']} of {r['data_chunks']}" if "data_chunks_read" in r else "—"
        lines.append(f"| {r['op']} | {r['runs']} | {r['wall_s']} s | {read} | {chunks} |")
    write_results(args.work, "results-series", results, "\n".join(lines) + "\n", {})


if __name__ == "__main__":
    main()
