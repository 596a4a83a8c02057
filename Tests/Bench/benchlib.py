"""What the benchmark scripts share: running and timing shell commands, the restore targets (a fresh
loop-mounted file system image per restore, or tmpfs) and writing results.{json,md}."""
import json
import os
import shutil
import subprocess
import sys
import time


def sh(command, check=True):
    """Runs a shell command, output discarded (stderr kept for the error)."""
    return subprocess.run(["bash", "-c", command], check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def measure(command, env=None):
    """Runs a shell command under /usr/bin/time; returns wall, user, sys (children included) and the peak
    RSS of the largest process in MiB. Exits the benchmark if the command fails."""
    started = time.monotonic()
    result = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S %M", "bash", "-c", "set -o pipefail; " + command],
                            env=dict(os.environ, **(env or {})), capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"benchmark command failed ({result.returncode}): {command}\n{result.stderr[-2000:]}")
    line = next(l for l in reversed(result.stderr.splitlines()) if l.startswith("TIME "))
    _, user, system, rss = line.split()
    return {"wall": wall, "user": float(user), "sys": float(system), "cpu": float(user) + float(system),
            "rss_mib": int(rss) / 1024}


def keyring(binary, work):
    """The benchmarks' keyring, WORK/keys (made once, without a passphrase); returns its path."""
    keys = os.path.join(work, "keys")
    if not os.path.exists(os.path.join(keys, "keyring.json")):
        sh(f"'{binary}' keys init --no-passphrase --keyring '{keys}'")
    return keys


class Target:
    """Where a restore goes. `kind` is tmpfs (a directory in /dev/shm), ext4 or xfs (a new image of
    `size`, made and loop-mounted on the machine's disk for every restore: fair to every tool, none
    inherits another's layout or dirty pages). `prepare` makes it ready, `release` unmounts and deletes."""

    def __init__(self, kind, work, name, size="8G", inodes=None):
        self.kind, self.size, self.inodes = kind, size, inodes
        self.image = os.path.join(work, f"{name}-{kind}.img")
        self.mount = f"/mnt/coldarchive-bench-{name}"
        self.shm = f"/dev/shm/coldarchive-bench-{name}"
        self.root = None

    @staticmethod
    def usable(kinds):
        """The kinds this user can prepare: disk images need root (mount)."""
        if os.geteuid() != 0 and any(k != "tmpfs" for k in kinds):
            print("not root: the disk targets (loop-mounted images) are skipped; tmpfs only", file=sys.stderr)
            return [k for k in kinds if k == "tmpfs"]
        return kinds

    def prepare(self, fill=None):
        """`fill`, a command with TARGET in it, runs on the new file system and its output is deleted
        before the restore (a restore drill into scratch space where as much was just deleted)."""
        self.release()
        if self.kind == "tmpfs":
            os.makedirs(self.shm)
            self.root = self.shm
        else:
            os.makedirs(self.mount, exist_ok=True)
            sh(f"truncate -s {self.size} '{self.image}'")
            if self.kind == "xfs":
                sh(f"mkfs.xfs -q -f '{self.image}'")
            else:
                sh(f"mkfs.ext4 -q -F {f'-N {self.inodes} ' if self.inodes else ''}'{self.image}'")
            sh(f"mount -o loop '{self.image}' {self.mount}")
            self.root = self.mount
        if fill:
            sh(fill.replace("TARGET", f"{self.root}/previous"))
            sh(f"rm -rf '{self.root}/previous'")
        sh("sync")

    def release(self):
        if self.kind == "tmpfs":
            shutil.rmtree(self.shm, ignore_errors=True)
        else:
            sh(f"umount {self.mount}", check=False)
            sh(f"rm -f '{self.image}'", check=False)
        self.root = None


def write_results(work, stem, results, table, extra=None):
    """Writes STEM.json and STEM.md into `work` and prints the table."""
    with open(os.path.join(work, f"{stem}.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(work, f"{stem}.md"), "w") as f:
        f.write(table)
    for name, text in (extra or {}).items():
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    print(table)
