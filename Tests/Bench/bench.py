#!/usr/bin/env python3
"""coldarchive's benchmark: create, restore and verify against the tools its users know.

    bench.py --bin .build/release/coldarchive [--sizes 1GB] [--runs 3] [--work .build-bench]

For each input size it generates a deterministic CRM-like tree (Tests/Fixtures/crm_sample.py), then, in
alternating order, several runs of:
  create   coldarchive create  |  tar -cf - | zstd -T0 -3 | age -r  |  restic backup  |  borg create --compression zstd,3
  restore  coldarchive restore |  age -d | zstd -d | tar -x          |  restic restore |  borg extract
  verify   coldarchive verify --trust  |  b2sum of the archive file
measured with /usr/bin/time -v (wall time, CPU seconds, peak RSS of the largest process), page cache warm.
It prints a table and writes results.json, a Markdown table and an SVG chart into --work.
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


def measure(command, env=None, cwd=None):
    """Runs a shell command under /usr/bin/time -v; returns wall, cpu, rss_mib."""
    full_env = dict(os.environ, **(env or {}))
    started = time.monotonic()
    result = subprocess.run(["/usr/bin/time", "-v", "bash", "-c", "set -o pipefail; " + command],
                            env=full_env, cwd=cwd, capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"benchmark command failed ({result.returncode}): {command}\n{result.stderr[-2000:]}")
    stats = {}
    for line in result.stderr.splitlines():
        if ":" in line:
            key, _, value = line.strip().rpartition(": ")
            stats[key] = value
    cpu = float(stats.get("User time (seconds)", 0)) + float(stats.get("System time (seconds)", 0))
    rss = int(stats.get("Maximum resident set size (kbytes)", 0)) / 1024
    return {"wall": wall, "cpu": cpu, "rss_mib": rss}


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
        self.keys = os.path.join(work, "keys")
        if not os.path.exists(os.path.join(self.keys, "keyring.json")):
            run(f"'{binary}' keys init --no-passphrase --keyring '{self.keys}'")
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


def tools(s, data, out, restore_root):
    """The contenders: name -> (prepare, create, restore, verify) shell commands."""
    parent, name = os.path.dirname(data), os.path.basename(data)
    car, age = os.path.join(out, "a.car"), os.path.join(out, "a.tar.zst.age")
    restic, borg = os.path.join(out, "restic-repo"), os.path.join(out, "borg-repo")
    target = os.path.join(restore_root, "restored")
    return {
        "coldarchive": {
            "prepare": f"rm -f '{car}'",
            "create": f"'{s.bin}' create --keyring '{s.keys}' --out '{car}' '{data}' > /dev/null",
            "restore": f"rm -rf '{target}' && '{s.bin}' restore '{car}' --keyring '{s.keys}' --to '{target}' > /dev/null",
            "verify": f"'{s.bin}' verify '{car}' --trust '{s.keys}/signing.pub' > /dev/null",
            "size": car,
        },
        "tar|zstd|age": {
            "prepare": f"rm -f '{age}'",
            "create": f"tar -cf - -C '{parent}' '{name}' | zstd -T0 -3 -q | age -r {s.age_recipient} > '{age}'",
            "restore": f"rm -rf '{target}' && mkdir -p '{target}' && age -d -i '{s.age_key}' '{age}' | zstd -d -q | tar -xf - -C '{target}'",
            "verify": f"b2sum '{age}' > /dev/null",
            "size": age,
        },
        "restic": {
            "prepare": f"rm -rf '{restic}' && restic -q -r '{restic}' init",
            "create": f"restic -q -r '{restic}' backup '{data}'",
            "restore": f"rm -rf '{target}' && restic -q -r '{restic}' restore latest --target '{target}'",
            "size": restic,
        },
        "borg": {
            "prepare": f"rm -rf '{borg}' && borg init --encryption=repokey-blake2 '{borg}'",
            "create": f"borg create --compression zstd,3 '{borg}::a' '{data}'",
            "restore": f"rm -rf '{target}' && mkdir -p '{target}' && cd '{target}' && borg extract '{borg}::a'",
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
    parser.add_argument("--restore-root", default="/dev/shm/coldarchive-bench" if os.path.isdir("/dev/shm") else None,
                        help="where restores go (default: tmpfs, so the VM's disk does not decide the result)")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    s = Setup(args.work, os.path.abspath(args.bin))
    results = []
    for size_text in args.sizes.split(","):
        size = parse_size(size_text)
        data = os.path.join(args.work, f"data-{size_text}", "crm")
        if not os.path.exists(data):
            subprocess.run([sys.executable, os.path.join(ROOT, "Tests/Fixtures/crm_sample.py"), "--out", data, "--size", size_text], check=True)
        input_bytes = du(data)
        out = os.path.join(args.work, "out")
        os.makedirs(out, exist_ok=True)
        restore_root = args.restore_root or out
        os.makedirs(restore_root, exist_ok=True)
        prefault(restore_root, 3 * input_bytes)
        contenders = {k: v for k, v in tools(s, data, out, restore_root).items() if k == "coldarchive" or k in args.peers.split(",")}
        samples = {(name, op): [] for name in contenders for op in ("create", "restore", "verify")}
        sizes = {}
        for r in range(args.runs):
            for name, c in contenders.items():
                # Every timed command starts with no dirty data of anyone else's waiting to be written:
                # an fsync on ext4 would otherwise pay for the previous tool's writes.
                run(c["prepare"], env=s.env)
                warm(data)
                run("sync")
                samples[(name, "create")].append(measure(c["create"], env=s.env))
                sizes[name] = du(c["size"]) if os.path.isdir(c["size"]) else os.path.getsize(c["size"])
                run("sync")
                samples[(name, "restore")].append(measure(c["restore"], env=s.env))
                if "verify" in c:
                    run("sync")
                    samples[(name, "verify")].append(measure(c["verify"], env=s.env))
                print(f"  {size_text} run {r + 1}: {name} done", file=sys.stderr)
        for (name, op), runs in samples.items():
            if not runs:
                continue
            wall = statistics.median(x["wall"] for x in runs)
            results.append({
                "size": size_text, "input_bytes": input_bytes, "tool": name, "op": op, "runs": len(runs),
                "wall_s": round(wall, 3), "cpu_s": round(statistics.median(x["cpu"] for x in runs), 3),
                "peak_rss_mib": round(max(x["rss_mib"] for x in runs), 1),
                "mb_per_s": round(input_bytes / 1e6 / wall, 1) if op != "verify" else round(sizes.get(name, 0) / 1e6 / wall, 1),
                "archive_bytes": sizes.get(name),
            })
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(restore_root, ignore_errors=True)
    with open(os.path.join(args.work, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = markdown(results)
    with open(os.path.join(args.work, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.work, "results.svg"), "w") as f:
        f.write(chart(results))
    print(table)


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
    lines = ["| input | operation | tool | wall s (median) | MB/s | CPU s | peak RSS MiB | archive MB | coldarchive's speed ÷ tool's |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        ours = next((x for x in results if x["size"] == r["size"] and x["op"] == r["op"] and x["tool"] == "coldarchive"), None)
        ratio = f"{r['wall_s'] / ours['wall_s']:.2f}×" if ours and r["tool"] != "coldarchive" else ""
        archive = f"{r['archive_bytes'] / 1e6:.1f}" if r.get("archive_bytes") and r["op"] == "create" else ""
        lines.append(f"| {r['size']} | {r['op']} | {r['tool']} | {r['wall_s']:.2f} | {r['mb_per_s']} | {r['cpu_s']:.2f} | "
                     f"{r['peak_rss_mib']:.0f} | {archive} | {ratio} |")
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
