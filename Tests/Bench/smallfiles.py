#!/usr/bin/env python3
"""coldarchive's small-files series: what a CRM attachment store of hundreds of thousands of small files
costs to restore, list and archive, on the file systems it lives on.

    smallfiles.py --bin .build/release/coldarchive [--files 600000] [--runs 5] [--targets ext4,deleted,tmpfs,xfs]

It generates a deterministic tree (FILES files of 40–80 bytes, 1 000 per directory), archives it once with
coldarchive and once with `tar --xattrs --acls | zstd -3 -T0`, then times, alternating the two tools run by
run, with `sync` before every timed command:

  restore   coldarchive restore (verify first, ends durable with syncfs)  |  zstd -dc | tar --xattrs --acls -x; sync
  list      coldarchive list (text, then --json)                         |  zstd -dc | tar -tv
  create    coldarchive create                                           |  tar --xattrs --acls -cf - | zstd -3 -T0

Restores go to each target in turn:
  ext4      a freshly made ext4 image (mkfs.ext4 -N 1000000, loop-mounted) for every single restore;
  deleted   the same, onto which the same tree was restored and then deleted (`rm -rf; sync`) just before:
            what a monthly restore drill into scratch space meets;
  xfs       a freshly made XFS image (Debian's xfsprogs) for every restore;
  tmpfs     /dev/shm.
Disk targets need root (mount); without it only tmpfs runs. The images live in --work, on the machine's
disk. Results: median wall, user and system CPU and peak RSS; a table on stdout and results-smallfiles.{md,json}.
"""
import argparse
import os
import random
import shutil
import statistics
import sys

sys.dont_write_bytecode = True  # importing benchlib leaves no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Target, keyring, measure, sh, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def generate(path, files):
    """FILES small JSON-like files, 1 000 per directory, the same bytes every time (seeded)."""
    if os.path.exists(os.path.join(path, ".complete")):
        return
    shutil.rmtree(path, ignore_errors=True)
    rng = random.Random(17)
    for n in range(files):
        directory = os.path.join(path, "tickets", f"d{n // 1000:04d}")
        if n % 1000 == 0:
            os.makedirs(directory)
        body = f'{{"id":"T-{n}","status":"{rng.choice(["open", "closed", "pending"])}","n":{rng.randrange(10**9)}'
        body += "x" * rng.randrange(0, 40) + "}\n"
        with open(os.path.join(directory, f"t{n % 1000:04d}.json"), "w") as f:
            f.write(body)
    open(os.path.join(path, ".complete"), "w").close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--files", type=int, default=600_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--targets", default="ext4,deleted,tmpfs,xfs")
    parser.add_argument("--ops", default="restore,list,create")
    parser.add_argument("--work", default=os.path.join(ROOT, ".build-bench"))
    args = parser.parse_args()
    binary = os.path.abspath(args.bin)
    os.makedirs(args.work, exist_ok=True)
    keys = keyring(binary, args.work)
    data = os.path.join(args.work, f"smallfiles-{args.files}")
    print(f"generating {args.files} files in {data}", file=sys.stderr)
    generate(data, args.files)
    car, tzst = os.path.join(args.work, "smallfiles.car"), os.path.join(args.work, "smallfiles.tar.zst")
    sh(f"rm -f '{car}' && '{binary}' create --keyring '{keys}' --out '{car}' '{data}/tickets'")
    sh(f"tar --xattrs --acls -cf - -C '{data}' tickets | zstd -q -3 -T0 > '{tzst}'")

    targets = Target.usable([t for t in args.targets.split(",") if t])
    ours = {
        "restore": lambda root: f"'{binary}' restore '{car}' --keyring '{keys}' --to '{root}/t' > /dev/null",
        "list": lambda _: f"'{binary}' list '{car}' --keyring '{keys}' > /dev/null",
        "list --json": lambda _: f"'{binary}' list --json '{car}' --keyring '{keys}' > /dev/null",
        "create": lambda _: f"'{binary}' create --keyring '{keys}' --out /dev/shm/smallfiles-bench.car '{data}/tickets' > /dev/null",
    }
    peers = {
        "restore": lambda root: f"mkdir -p '{root}/t' && zstd -dc '{tzst}' | tar --xattrs --acls -x -C '{root}/t' && sync",
        "list": lambda _: f"zstd -dc '{tzst}' | tar -tv > /dev/null",
        "list --json": lambda _: f"zstd -dc '{tzst}' | tar -tv > /dev/null",
        "create": lambda _: f"tar --xattrs --acls -cf - -C '{data}' tickets | zstd -q -3 -T0 > /dev/shm/smallfiles-bench.tar.zst",
    }
    peer_name = {"restore": "zstd -dc | tar -x; sync", "list": "zstd -dc | tar -tv", "list --json": "zstd -dc | tar -tv",
                 "create": "tar | zstd -3 -T0"}
    plan = []
    for op in args.ops.split(","):
        if op == "restore":
            plan += [("restore", t) for t in targets]
        elif op == "list":
            plan += [("list", None), ("list --json", None)]
        else:
            plan.append((op, None))
    samples = {}
    fill = f"mkdir -p TARGET && zstd -dc '{tzst}' | tar -x -C TARGET"
    for r in range(args.runs):
        for op, kind in plan:
            # Which tool goes first alternates from run to run.
            order = (("coldarchive", ours), ("peer", peers))
            for tool, commands in (order if r % 2 == 0 else order[::-1]):
                target = Target("ext4" if kind == "deleted" else kind, args.work, "smallfiles", "8G", 1_000_000) if kind else None
                if target:
                    target.prepare(fill if kind == "deleted" else None)
                elif op == "create":
                    # The tree in the page cache, as for every tool (the restores before evict it); through
                    # a pipe, since GNU tar writing to /dev/null reads nothing.
                    sh(f"tar -cf - -C '{data}' tickets | cat > /dev/null")
                else:
                    sh(f"cat '{car}' '{tzst}' > /dev/null")
                sh("sync")
                sample = measure(commands[op](target.root if target else None))
                if target:
                    target.release()
                sh("rm -f /dev/shm/smallfiles-bench.car /dev/shm/smallfiles-bench.tar.zst")
                samples.setdefault((op, kind, tool), []).append(sample)
            print(f"  run {r + 1}: {op} {kind or ''} done", file=sys.stderr)
    results = []
    for (op, kind, tool), runs in samples.items():
        results.append({
            "files": args.files, "op": op, "target": kind or "", "tool": "coldarchive" if tool == "coldarchive" else peer_name[op],
            "runs": len(runs), "wall_s": round(statistics.median(x["wall"] for x in runs), 2),
            "user_s": round(statistics.median(x["user"] for x in runs), 2), "sys_s": round(statistics.median(x["sys"] for x in runs), 2),
            "peak_rss_mib": round(max(x["rss_mib"] for x in runs), 1),
            "walls": [round(x["wall"], 2) for x in runs],
        })
    def cell(text):
        return text.replace("|", "\\|")
    lines = ["| operation | target | tool | wall s (median) | user s | system s | peak RSS MiB | coldarchive's speed ÷ tool's | all walls |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        ours_row = next(x for x in results if x["op"] == r["op"] and x["target"] == r["target"] and x["tool"] == "coldarchive")
        ratio = f"{r['wall_s'] / ours_row['wall_s']:.2f}×" if r is not ours_row else ""
        lines.append(f"| {r['op']} | {r['target']} | {cell(r['tool'])} | {r['wall_s']:.2f} | {r['user_s']:.2f} | {r['sys_s']:.2f} | "
                     f"{r['peak_rss_mib']:.0f} | {ratio} | {' '.join(map(str, r['walls']))} |")
    write_results(args.work, "results-smallfiles", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
