#!/usr/bin/env python3
"""make mutants: proves that the test suite catches the loss of every security check.

Each defect in Tests/Mutants/defects.toml removes or weakens one check of docs/SECURITY.md by a small
textual patch (an exact `find` text, which must occur exactly once, replaced by `replace`). For each
defect, one at a time, this script patches a scratch copy of the working tree (.build-mutants/src,
kept between runs so builds are incremental), builds it, and runs only the tests named for that
defect (`tests`, a Swift Testing filter). A defect is caught when those tests fail (or time out);
the run fails unless every defect is caught and the unpatched tests pass.

Defects marked `unprivileged = true` guard a check that root's privileges would mask (file modes):
when run as root, their tests run as an unprivileged user (Tests/Support/run-unprivileged).

  Tests/Mutants/mutants.py [--only ID[,ID...]] [--timeout SECONDS]

Results: a table on stdout and in .build-mutants/results.md (pasted into docs/SECURITY.md).
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORK = os.path.join(ROOT, ".build-mutants")
SRC = os.path.join(WORK, "src")


def sh(args, cwd, timeout=None, quiet=True):
    """Runs a command; returns (exit status or 'timeout', combined output)."""
    try:
        p = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return "timeout", (e.stdout or b"").decode(errors="replace")


def sync_scratch_copy():
    """The tracked files of the working tree (with uncommitted edits), copied into SRC."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout.decode().split("\0")
    wanted = set()
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src):
            continue
        dst = os.path.join(SRC, rel)
        wanted.add(rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(src, "rb") as f:
            data = f.read()
        if not os.path.exists(dst) or open(dst, "rb").read() != data:
            with open(dst, "wb") as f:
                f.write(data)
            shutil.copymode(src, dst)
    for top in ("Sources", "Tests"):
        for dirpath, _, names in os.walk(os.path.join(SRC, top)):
            for name in names:
                rel = os.path.relpath(os.path.join(dirpath, name), SRC)
                if rel not in wanted:
                    os.remove(os.path.join(dirpath, name))


def build():
    status, out = sh(["swift", "build", "--build-tests"], SRC)
    return status == 0, out


def run_tests(filter_, unprivileged, timeout):
    binary = os.path.join(SRC, ".build", "debug", "coldarchivePackageTests.xctest")
    args = [binary, "--testing-library", "swift-testing", "--filter", filter_]
    if unprivileged and os.geteuid() == 0:
        args = [os.path.join(SRC, "Tests", "Support", "run-unprivileged")] + args
    started = time.monotonic()
    status, out = sh(args, SRC, timeout=timeout)
    return status, out, time.monotonic() - started


def tests_ran(output):
    """Swift Testing's closing line names how many tests ran; a filter matching nothing proves nothing."""
    for line in output.splitlines()[::-1]:
        if "Test run with" in line:
            return " 0 tests" not in line
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated defect ids")
    parser.add_argument("--timeout", type=int, default=120, help="seconds a defect's tests may run before the defect counts as caught (a hang)")
    options = parser.parse_args()
    with open(os.path.join(ROOT, "Tests", "Mutants", "defects.toml"), "rb") as f:
        defects = tomllib.load(f)["defect"]
    ids = [d["id"] for d in defects]
    if len(ids) != len(set(ids)):
        sys.exit("defects.toml: defect ids must be unique")
    if options.only:
        only = set(options.only.split(","))
        unknown = only - set(ids)
        if unknown:
            sys.exit(f"unknown defect ids: {', '.join(sorted(unknown))}")
        defects = [d for d in defects if d["id"] in only]

    os.makedirs(SRC, exist_ok=True)
    sync_scratch_copy()
    print(f"== building the unpatched copy in {SRC}", flush=True)
    ok, out = build()
    if not ok:
        print(out[-4000:])
        sys.exit("the unpatched copy does not build")

    # Every defect's tests must pass before any patch: a failing test catches nothing.
    print("== the tests named by the defects pass without any defect", flush=True)
    for unprivileged in (False, True):
        group = [d for d in defects if d.get("unprivileged", False) == unprivileged]
        if not group:
            continue
        combined = "|".join(sorted({d["tests"] for d in group}))
        status, out, _ = run_tests(combined, unprivileged, options.timeout * 4)
        if status != 0 or not tests_ran(out):
            print(out[-6000:])
            sys.exit(f"the unpatched tests fail{' (unprivileged)' if unprivileged else ''}; fix them first")

    rows, missed, broken = [], [], []
    for n, defect in enumerate(defects, 1):
        path = os.path.join(SRC, defect["file"])
        with open(path, encoding="utf-8") as f:
            original = f.read()
        occurrences = original.count(defect["find"])
        if occurrences != 1:
            broken.append(defect["id"])
            rows.append((defect, f"NOT APPLIED (find text occurs {occurrences} times)", 0.0))
            print(f"[{n}/{len(defects)}] {defect['id']}: find text occurs {occurrences} times in {defect['file']}", flush=True)
            continue
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original.replace(defect["find"], defect["replace"]))
            ok, out = build()
            if not ok:
                broken.append(defect["id"])
                rows.append((defect, "DOES NOT BUILD", 0.0))
                print(f"[{n}/{len(defects)}] {defect['id']}: the patched copy does not build\n{out[-3000:]}", flush=True)
                continue
            status, out, seconds = run_tests(defect["tests"], defect.get("unprivileged", False), options.timeout)
            if status == "timeout":
                result = "caught (tests hung)"
            elif " 0 tests" in next((l for l in out.splitlines()[::-1] if "Test run with" in l), ""):
                # A filter that matches nothing proves nothing, whatever the exit status.
                result = "NO TEST RAN"
                broken.append(defect["id"])
            elif status != 0:
                result = "caught"
            elif not tests_ran(out):
                result = "NO TEST RAN"
                broken.append(defect["id"])
            else:
                result = "MISSED"
                missed.append(defect["id"])
            rows.append((defect, result, seconds))
            print(f"[{n}/{len(defects)}] {defect['id']}: {result} ({seconds:.1f} s)", flush=True)
        finally:
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)

    table = ["| defect | check it removes | tests | unprivileged | result |", "| --- | --- | --- | --- | --- |"]
    for defect, result, _ in rows:
        table.append(f"| `{defect['id']}` | {defect['check']} | `{defect['tests']}` | {'yes' if defect.get('unprivileged') else ''} | {result} |")
    text = "\n".join(table) + "\n"
    with open(os.path.join(WORK, "results.md"), "w") as f:
        f.write(text)
    print("\n" + text)
    caught = len(rows) - len(missed) - len(broken)
    print(f"{caught} of {len(rows)} defects caught; missed: {', '.join(missed) or 'none'}; not applied: {', '.join(broken) or 'none'}")
    if missed or broken:
        sys.exit(1)


if __name__ == "__main__":
    main()
