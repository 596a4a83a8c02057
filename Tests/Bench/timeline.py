"""Per-thread CPU use of a command over time, every 100 ms, from /proc: which stage is the
bottleneck in which phase (docs/BENCHMARKS.md, "Where the time goes").

    python3 Tests/Bench/timeline.py .build/release/coldarchive create --keyring K --out a.car DIR

Columns are the process's threads in creation order (the main thread first, names listed at the
end), each the percentage of one core it used in that interval.
"""
import os
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    previous, started, names = {}, time.monotonic(), {}
    while process.poll() is None:
        time.sleep(0.1)
        current = {}
        try:
            for tid in os.listdir(f"/proc/{process.pid}/task"):
                with open(f"/proc/{process.pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                current[int(tid)] = int(fields[11]) + int(fields[12])  # utime + stime
                if int(tid) not in names:
                    with open(f"/proc/{process.pid}/task/{tid}/comm") as f:
                        names[int(tid)] = f.read().strip()
        except (FileNotFoundError, ProcessLookupError):
            break
        # A column per thread ever seen, blank once it has exited.
        used = [f"{(current[tid] - previous.get(tid, 0)) * 100 // ticks_per_second * 10:4d}" if tid in current else "    "
                for tid in sorted(names)]
        previous = current
        print(f"{time.monotonic() - started:5.1f} s " + " ".join(used))
    print("columns: " + ", ".join(names[tid] for tid in sorted(names)))
    sys.exit(process.wait())


if __name__ == "__main__":
    main()
