#!/usr/bin/env python3
"""coldarchive's benchmark: create, restore and verify against the tools its users know.

    bench.py --bin .build/release/coldarchive [--sizes 1GB] [--runs 3] [--work .build-bench]
             [--restore-targets tmpfs,ext4] [--peers tar|zstd|age,restic,borg] [--ops create,restore,verify]

For each input size it generates a deterministic CRM-like tree (Tests/Fixtures/crm_sample.py), then, in
alternating order, several runs of:
  create   coldarchive create  |  tar -cf - | zstd -T0 -3 | age -r  |  restic backup  |  borg create --compression zstd,3
  restore  coldarchive restore |  age -d | zstd -d | tar -x; sync    |  restic restore; sync |  borg extract; sync
  verify   coldarchive verify --trust  |  b2sum of the archive file
measured with /usr/bin/time (wall time, user and system CPU, peak RSS of the largest process), page cache
warm, `sync` before each. Restores go to tmpfs and to a freshly made, loop-mounted ext4 image for every
single restore (Tests/Bench/benchlib.py); coldarchive's restore ends durable (syncfs), the peers' with
`sync`. It prints a table and writes results.json, a Markdown table and an SVG chart into --work.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True  # importing benchlib leaves no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Target, keyring, measure, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_size(text):
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    for suffix, factor in units.items():
        if text.upper().endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def du(path):
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            p = os.path.join(base, name)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def run(command, env=None, cwd=None):
    subprocess.run(["bash", "-c", command], env=dict(os.environ, **(env or {})), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def warm(path):
    # Through a pipe: GNU tar writing straight to /dev/null skips reading the files at all.
    run(f"tar -cf - -C '{os.path.dirname(path)}' '{os.path.basename(path)}' | cat > /dev/null")


class Setup:
    def __init__(self, work, binary):
        self.work = work
        self.bin = binary
        self.keys = keyring(binary, work)
        self.age_key = os.path.join(work, "age.key")
        if not os.path.exists(self.age_key):
            run(f"age-keygen -o '{self.age_key}'")
        self.age_recipient = subprocess.run(["age-keygen", "-y", self.age_key], capture_output=True, text=True, check=True).stdout.strip()
        self.env = {"RESTIC_PASSWORD": "bench", "BORG_PASSPHRASE": "bench", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
                    "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes", "BORG_CACHE_DIR": os.path.join(work, "borg-cache"),
                    "RESTIC_CACHE_DIR": os.path.join(work, "restic-cache")}


def fresh(path):
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def tools(s, data, out):
    """The contenders: name -> (prepare, create, restore, verify) shell commands; `restore` is a function of
    the directory to restore into. Every restore ends durable: coldarchive's does (syncfs), the peers' are
    followed by `sync`."""
    parent, name = os.path.dirname(data), os.path.basename(data)
    car, age = os.path.join(out, "a.car"), os.path.join(out, "a.tar.zst.age")
    restic, borg = os.path.join(out, "restic-repo"), os.path.join(out, "borg-repo")
    return {
        "coldarchive": {
            "prepare": f"rm -f '{car}'",
            "create": f"'{s.bin}' create --keyring '{s.keys}' --out '{car}' '{data}' > /dev/null",
            "restore": lambda root: f"'{s.bin}' restore '{car}' --keyring '{s.keys}' --to '{root}/restored' > /dev/null",
            "verify": f"'{s.bin}' verify '{car}' --trust '{s.keys}/signing.pub' > /dev/null",
            "size": car,
        },
        "tar|zstd|age": {
            "prepare": f"rm -f '{age}'",
            "create": f"tar -cf - -C '{parent}' '{name}' | zstd -T0 -3 -q | age -r {s.age_recipient} > '{age}'",
            "restore": lambda root: f"mkdir -p '{root}/restored' && age -d -i '{s.age_key}' '{age}' | zstd -d -q | tar -xf - -C '{root}/restored' && sync",
            "verify": f"b2sum '{age}' > /dev/null",
            "size": age,
        },
        "restic": {
            "prepare": f"rm -rf '{restic}' && restic -q -r '{restic}' init",
            "create": f"restic -q -r '{restic}' backup '{data}'",
            "restore": lambda root: f"restic -q -r '{restic}' restore latest --target '{root}/restored' && sync",
            "size": restic,
        },
        "borg": {
            "prepare": f"rm -rf '{borg}' && borg init --encryption=repokey-blake2 '{borg}'",
            "create": f"borg create --compression zstd,3 '{borg}::a' '{data}'",
            "restore": lambda root: f"mkdir -p '{root}/restored' && cd '{root}/restored' && borg extract '{borg}::a' && sync",
            "size": borg,
        },
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True)
    parser.add_argument("--sizes", default="1GB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=os.path.join(ROOT, ".build-bench"))
    parser.add_argument("--peers", default="tar|zstd|age,restic,borg")
    parser.add_argument("--ops", default="create,restore,verify")
    parser.add_argument("--restore-targets", default="tmpfs,ext4",
                        help="tmpfs (/dev/shm: the VM's disk does not decide the result) and/or ext4, xfs "
                             "(a fresh loop-mounted image on the machine's disk for every restore; needs root)")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    s = Setup(args.work, os.path.abspath(args.bin))
    kinds = Target.usable(args.restore_targets.split(","))
    ops = args.ops.split(",")
    results = []
    for size_text in args.sizes.split(","):
        size = parse_size(size_text)
        data = os.path.join(args.work, f"data-{size_text}", "crm")
        if not os.path.exists(data):
            subprocess.run([sys.executable, os.path.join(ROOT, "Tests/Fixtures/crm_sample.py"), "--out", data, "--size", size_text], check=True)
        input_bytes = du(data)
        out = os.path.join(args.work, "out")
        os.makedirs(out, exist_ok=True)
        if "tmpfs" in kinds:
            prefault("/dev/shm", 3 * input_bytes)
        image = f"{max(4, 3 * input_bytes // (1 << 30) + 1)}G"
        targets = {k: Target(k, args.work, "restore", image) for k in kinds}
        contenders = {k: v for k, v in tools(s, data, out).items() if k == "coldarchive" or k in args.peers.split(",")}
        samples, sizes = {}, {}
        for r in range(args.runs):
            # Which tool goes first alternates from run to run.
            order = list(contenders.items())
            for name, c in (order if r % 2 == 0 else order[::-1]):
                # Every timed command starts with no dirty data of anyone else's waiting to be written:
                # an fsync on ext4 would otherwise pay for the previous tool's writes.
                run(c["prepare"], env=s.env)
                warm(data)
                run("sync")
                samples.setdefault((name, "create"), []).append(measure(c["create"], env=s.env))
                sizes[name] = du(c["size"]) if os.path.isdir(c["size"]) else os.path.getsize(c["size"])
                if "restore" in ops:
                    for kind, target in targets.items():
                        target.prepare()
                        run(f"cat '{c['size']}' > /dev/null" if os.path.isfile(c["size"]) else "true")
                        run("sync")
                        samples.setdefault((name, f"restore to {kind}"), []).append(measure(c["restore"](target.root), env=s.env))
                        target.release()
                if "verify" in c and "verify" in ops:
                    run("sync")
                    samples.setdefault((name, "verify"), []).append(measure(c["verify"], env=s.env))
                print(f"  {size_text} run {r + 1}: {name} done", file=sys.stderr)
        for (name, op), runs in samples.items():
            wall = statistics.median(x["wall"] for x in runs)
            results.append({
                "size": size_text, "input_bytes": input_bytes, "tool": name, "op": op, "runs": len(runs),
                "wall_s": round(wall, 3), "cpu_s": round(statistics.median(x["cpu"] for x in runs), 3),
                "sys_s": round(statistics.median(x["sys"] for x in runs), 3),
                "peak_rss_mib": round(max(x["rss_mib"] for x in runs), 1),
                "mb_per_s": round(input_bytes / 1e6 / wall, 1) if op != "verify" else round(sizes.get(name, 0) / 1e6 / wall, 1),
                "archive_bytes": sizes.get(name),
                "walls": [round(x["wall"], 2) for x in runs],
            })
        shutil.rmtree(out, ignore_errors=True)
    results.sort(key=lambda r: (r["size"], ["create", "restore to tmpfs", "restore to ext4", "restore to xfs", "verify"].index(r["op"]),
                                list(contenders).index(r["tool"])))
    write_results(args.work, "results", results, markdown(results), {"results.svg": chart(results)})


def prefault(directory, size):
    """Writes and deletes `size` bytes (at most half the available memory) where restores go. On a
    virtual machine the hypervisor backs guest memory on first touch: filling never-used tmpfs pages
    cost 2.3 s per GB here, reused ones 0.36 s, and without this step that cost fell on whichever tool
    happened to restore into fresh memory first."""
    with open("/proc/meminfo") as f:
        available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    size = min(size, available // 2)
    path = os.path.join(directory, ".prefault")
    block = bytes(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(block)
    os.remove(path)


def markdown(results):
    lines = ["| input | operation | tool | wall s (median) | MB/s | CPU s | system s | peak RSS MiB | archive MB | coldarchive's speed ÷ tool's | all walls |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in results:
        ours = next((x for x in results if x["size"] == r["size"] and x["op"] == r["op"] and x["tool"] == "coldarchive"), None)
        ratio = f"{r['wall_s'] / ours['wall_s']:.2f}×" if ours and r["tool"] != "coldarchive" else ""
        archive = f"{r['archive_bytes'] / 1e6:.1f}" if r.get("archive_bytes") and r["op"] == "create" else ""
        lines.append(f"| {r['size']} | {r['op']} | {r['tool'].replace('|', chr(92) + '|')} | {r['wall_s']:.2f} | {r['mb_per_s']} | {r['cpu_s']:.2f} | "
                     f"{r['sys_s']:.2f} | {r['peak_rss_mib']:.0f} | {archive} | {ratio} | {' '.join(map(str, r['walls']))} |")
    return "\n".join(lines) + "\n"


def chart(results):
    """A grouped bar chart of throughput (MB/s) per operation and tool, as plain SVG."""
    colors = {"coldarchive": "#1f6feb", "tar|zstd|age": "#8b949e", "restic": "#d29922", "borg": "#2da44e"}
    groups = [(r["size"], r["op"]) for r in results]
    groups = list(dict.fromkeys(groups))
    top = max([r["mb_per_s"] for r in results] + [1])
    width, height, pad = 160 * len(groups) + 80, 360, 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<text x="{pad}" y="18" font-size="14">Throughput, MB/s (median; higher is better)</text>']
    for gi, (size, op) in enumerate(groups):
        rows = [r for r in results if r["size"] == size and r["op"] == op]
        for bi, r in enumerate(rows):
            h = (height - 2 * pad) * r["mb_per_s"] / top
            x = pad + gi * 160 + bi * 34
            y = height - pad - h
            out.append(f'<rect x="{x}" y="{y:.1f}" width="30" height="{h:.1f}" fill="{colors.get(r["tool"], "#999")}"/>')
            out.append(f'<text x="{x + 15}" y="{y - 3:.1f}" text-anchor="middle" font-size="9">{r["mb_per_s"]:.0f}</text>')
        out.append(f'<text x="{pad + gi * 160 + 60}" y="{height - pad + 16}" text-anchor="middle">{op} {size}</text>')
    for li, (tool, color) in enumerate(colors.items()):
        out.append(f'<rect x="{pad + li * 130}" y="{height - 18}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{pad + li * 130 + 14}" y="{height - 9}">{tool}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
