#!/usr/bin/env python3
"""coldarchive's offsite benchmark (issue 20): push to an object store against rclone, scrub against b2sum.

    with-seaweedfs offsitebench.py --bin .build/release/coldarchive [--size 1GB] [--runs 3] [--work .build-bench]

Run under Tests/Support/with-seaweedfs (make bench does), which gives the SeaweedFS endpoint and key.
On the archive of the CRM tree of bench.py (WORK/data-SIZE, archived once into a vault in WORK/offsite-vault):
  push   `coldarchive push ARCHIVE --to s3://BUCKET/...` (multipart, 4 parts in flight, then the whole
         object read back and compared) against `rclone copy ARCHIVE remote:BUCKET/...` (Debian's rclone, an
         s3 remote at the same endpoint), to a new key each run, alternating; medians, and the ratio of the
         pairs (rclone's time over ours: at least 1.0 is the issue's target). rclone checks its upload's
         MD5 against the ETag and reads nothing back; the push figure includes its verification of the
         archive before the upload and its full read-back after.
  scrub  `coldarchive scrub --vault V --copy C` (every chunk of the archive in the vault and in a copy on the
         same disk) against `b2sum` of the same two files, page cache warm; the target is scrub at least 0.8x
         b2sum's speed.
It writes WORK/results-offsite.{json,md}.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import keyring, measure, sh, write_results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--size", default="1GB")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(ROOT, ".build-bench"))
    args = ap.parse_args()
    endpoint = os.environ.get("COLDARCHIVE_TEST_S3_ENDPOINT")
    if not endpoint:
        sys.exit("offsitebench.py runs under Tests/Support/with-seaweedfs (make bench BENCH_SERIES=offsite)")
    binary = os.path.abspath(args.bin)
    data = os.path.join(args.work, f"data-{args.size}", "crm")
    if not os.path.isdir(data):
        subprocess.run([sys.executable, os.path.join(ROOT, "Tests/Fixtures/crm_sample.py"), "--out", data, "--size", args.size], check=True)
    keys = keyring(binary, args.work)
    vault = os.path.join(args.work, "offsite-vault")
    copy = os.path.join(args.work, "offsite-copy")
    if not os.path.isdir(vault):
        sh(f"'{binary}' vault init '{vault}' --series crm --keyring '{keys}'")
        sh(f"'{binary}' create --vault '{vault}' --series crm --period 2026-11 --keyring '{keys}' '{data}'")
    archive = next(os.path.join(d, f) for d, _, fs in os.walk(vault) for f in fs if f.endswith(".car"))
    size = os.path.getsize(archive)
    if not os.path.isdir(copy):
        sh(f"'{binary}' push '{archive}' --to '{copy}' --keyring '{keys}'")

    env = dict(os.environ, AWS_ACCESS_KEY_ID=os.environ["COLDARCHIVE_TEST_S3_KEY"], AWS_SECRET_ACCESS_KEY=os.environ["COLDARCHIVE_TEST_S3_SECRET"],
               AWS_DEFAULT_REGION="us-east-1", RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
               RCLONE_CONFIG_BENCH_ENDPOINT=endpoint, RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=os.environ["COLDARCHIVE_TEST_S3_KEY"],
               RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=os.environ["COLDARCHIVE_TEST_S3_SECRET"], RCLONE_CONFIG_BENCH_REGION="us-east-1")
    # Plain http on loopback; rclone's SDK fails on a CA bundle it cannot load for it.
    os.environ.pop("AWS_CA_BUNDLE", None)
    env.pop("AWS_CA_BUNDLE", None)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rclone", "mkdir", f"bench:{bucket}"], env=env, check=True)
    sh(f"cat '{archive}' > /dev/null")
    ours, theirs, ratios = [], [], []
    for run in range(args.runs):
        pair = {}
        for name in (["coldarchive", "rclone"] if run % 2 == 0 else ["rclone", "coldarchive"]):
            prefix = f"run{run}-{name}"
            if name == "coldarchive":
                command = f"'{binary}' push '{archive}' --to s3://{bucket}/{prefix} --endpoint {endpoint} --keyring '{keys}' > /dev/null"
            else:
                command = f"rclone copy '{archive}' bench:{bucket}/{prefix}"
            pair[name] = measure(command, env=env)
        ours.append(pair["coldarchive"]["wall"])
        theirs.append(pair["rclone"]["wall"])
        ratios.append(pair["rclone"]["wall"] / pair["coldarchive"]["wall"])
        print(f"run {run + 1}: push {pair['coldarchive']['wall']:.2f} s, rclone copy {pair['rclone']['wall']:.2f} s", flush=True)

    scrubs, b2sums = [], []
    for run in range(args.runs):
        scrub = measure(f"'{binary}' scrub --vault '{vault}' --copy '{copy}' --trust '{keys}/signing.pub' > /dev/null")
        copied = os.path.join(copy, os.path.relpath(archive, vault))
        b2 = measure(f"b2sum '{archive}' '{copied}' > /dev/null")
        scrubs.append(scrub["wall"])
        b2sums.append(b2["wall"])
        print(f"run {run + 1}: scrub {scrub['wall']:.2f} s, b2sum {b2['wall']:.2f} s", flush=True)

    results = {"size": args.size, "archive_bytes": size, "runs": args.runs, "push_s": statistics.median(ours),
               "rclone_s": statistics.median(theirs), "push_ratio_median_of_pairs": statistics.median(ratios), "ratios": ratios,
               "scrub_s": statistics.median(scrubs), "b2sum_s": statistics.median(b2sums),
               "scrub_speed_vs_b2sum": statistics.median(b2sums) / statistics.median(scrubs)}
    mib = size / 2**20
    table = "\n".join([
        f"Offsite, a {mib:.0f} MiB archive of the {args.size} CRM tree, SeaweedFS on loopback, {args.runs} alternating pairs:", "",
        "| what | coldarchive | peer | peer / coldarchive |", "| --- | --- | --- | --- |",
        f"| push (upload + full read-back) vs `rclone copy` | {results['push_s']:.2f} s ({mib / results['push_s']:.0f} MiB/s) | "
        f"{results['rclone_s']:.2f} s | {results['push_ratio_median_of_pairs']:.2f} (pairs: {', '.join(f'{r:.2f}' for r in ratios)}) |",
        f"| scrub of the vault and one copy vs `b2sum` of both files | {results['scrub_s']:.2f} s ({2 * mib / results['scrub_s']:.0f} MiB/s) | "
        f"{results['b2sum_s']:.2f} s | {results['scrub_speed_vs_b2sum']:.2f} |", ""])
    write_results(args.work, "results-offsite", results, table)


if __name__ == "__main__":
    main()
