#!/usr/bin/env python3
"""coldarchive's audit series (issue 18): how fast an auditor checks a vault without any key.

    auditbench.py --bin .build/release/coldarchive [--runs 5] [--gigabytes 1] [--work .build-bench]

Two vaults are generated once in --work:
  months    a monthly series of 120 small archives (ten years): `audit --quick` (signatures, chains,
            calendar, journal; no chunk hashing) is timed on it;
  large     a monthly series of 4 archives of incompressible data, GIGABYTES in all: the full `audit`
            (every chunk hashed) is timed against `b2sum` over the same archive files, page cache warm.
Results (median wall of --runs alternating runs) on stdout and in results-audit.{md,json}.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # importing benchlib leaves no __pycache__ in the tree
sys.path.insert(0, HERE)
from benchlib import keyring  # noqa: E402
ROOT = os.path.dirname(os.path.dirname(HERE))


def sh(command, check=True):
    return subprocess.run(["bash", "-c", command], check=check, capture_output=True, text=True)


def timed(command):
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"benchmark command failed ({result.returncode}): {command}\n{result.stdout[-1000:]}{result.stderr[-1000:]}")
    return wall


def make_vault(binary, keys, root, months, bytes_each):
    source = root + "-source"
    shutil.rmtree(source, ignore_errors=True)
    os.makedirs(source)
    sh(f"'{binary}' vault init '{root}' --series crm --keyring '{keys}'")
    year, month = 2016, 11
    for i in range(months):
        with open(os.path.join(source, "orders.csv"), "w") as f:
            f.write(f"id,month\n{i},{year}-{month:02d}\n")
        if bytes_each:
            with open(os.path.join(source, "scan.bin"), "wb") as f:
                left = bytes_each
                while left > 0:
                    f.write(os.urandom(min(left, 1 << 24)))
                    left -= 1 << 24
        sh(f"'{binary}' create --vault '{root}' --series crm --period {year}-{month:02d} --keyring '{keys}' '{source}'")
        month += 1
        if month == 13:
            year, month = year + 1, 1
    shutil.rmtree(source)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--work", default=os.path.join(ROOT, ".build-bench"))
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    os.makedirs(args.work, exist_ok=True)
    keys = keyring(binary, args.work)
    months = os.path.join(args.work, "vault-120-months")
    large = os.path.join(args.work, "vault-large")
    for root, count, each in ((months, 120, 0), (large, 4, int(args.gigabytes * (1 << 30) / 4))):
        if not os.path.exists(root + ".complete"):
            print(f"making {root}", file=sys.stderr)
            shutil.rmtree(root, ignore_errors=True)
            make_vault(binary, keys, root, count, each)
            open(root + ".complete", "w").close()
    trust = os.path.join(keys, "signing.pub")
    archives = sorted(os.path.join(large, "series", "crm", n) for n in os.listdir(os.path.join(large, "series", "crm")) if n.endswith(".car"))
    size = sum(os.path.getsize(a) for a in archives)
    files = " ".join(f"'{a}'" for a in archives)
    commands = {
        "audit --quick, 120 monthly archives": f"'{binary}' audit --quick --vault '{months}' --trust '{trust}' --to 2026-10 > /dev/null",
        "audit, 4 archives": f"'{binary}' audit --vault '{large}' --trust '{trust}' --to 2017-02 > /dev/null",
        "b2sum, the same 4 files": f"b2sum {files} > /dev/null",
    }
    sh(f"cat {files} > /dev/null")
    samples = {name: [] for name in commands}
    for r in range(args.runs):
        for name, command in (commands.items() if r % 2 == 0 else reversed(list(commands.items()))):
            samples[name].append(timed(command))
    results = [{"what": name, "wall_s": round(statistics.median(v), 3), "walls": [round(x, 3) for x in v]} for name, v in samples.items()]
    audit, b2 = results[1]["wall_s"], results[2]["wall_s"]
    lines = ["| what | wall s (median) | all walls |", "| --- | ---: | --- |"]
    lines += [f"| {r['what']} | {r['wall_s']:.3f} | {' '.join(map(str, r['walls']))} |" for r in results]
    lines.append("")
    lines.append(f"{len(archives)} archives, {size / 1e6:.0f} MB: audit hashes at {size / 1e6 / audit:.0f} MB/s, b2sum at "
                 f"{size / 1e6 / b2:.0f} MB/s: {b2 / audit:.2f}× b2sum's speed")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(args.work, "results-audit.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.work, "results-audit.md"), "w") as f:
        f.write(table)
    print(table)


if __name__ == "__main__":
    main()
