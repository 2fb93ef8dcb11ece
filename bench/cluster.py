#!/usr/bin/env python3
"""Scaling of `run --cluster` over simulated machines (issue 14). Not a test.

Usage: python3 bench/cluster.py [--workers 1,2,3,4] [--cpu 0.45] [--no-build] [--readme]

Each worker is a machine of its own: a network namespace linked to the host by a veth
pair (the nats-server listens on the host side of the first link) and a cgroup v1 CPU
quota of --cpu cores. On the bench clip of bench/pipeline.py (1080p, 600 frames,
libx264) with emboss → JPEG, for K workers it reports:

- frames/s, and the scaling efficiency fps(K) / (K * fps(1)) (target >= 0.85 at K = 4);
- the job owner's CPU per frame against a local run's (target <= 10 %);
- bytes over the network per frame (all veth links, both directions);
- a local run in one cgroup with the same total CPU (K * --cpu), for the cost of going
  distributed.

Needs root (ip netns, cgroup v1 at /sys/fs/cgroup/cpu) and nats-server.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pipeline as pl  # noqa: E402  (the clip, the photograph, the logging)

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target/release/frameflow"
CGROUP = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000


def sh(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, **kw)


class Machine:
    """A netns + veth + cgroup quota: one simulated worker machine."""

    def __init__(self, i, cpu):
        tag = f"{os.getpid() % 10000}x{i}"
        self.ns = f"ffb-{tag}"
        self.host_if, ns_if = f"ffbh{tag}", f"ffbn{tag}"
        net = 200 + i
        self.host_ip, self.ns_ip = f"10.232.{net}.1", f"10.232.{net}.2"
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", self.ns)
        sh("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        for args in (["addr", "add", f"{self.ns_ip}/30", "dev", ns_if],
                     ["link", "set", ns_if, "up"], ["link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", self.ns, "ip", *args)
        self.cg = cgroup(f"ffb-{tag}", cpu)
        self.proc = None

    def start_worker(self, url):
        # Routes to the server's link (it listens on machine 0's host-side address).
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, str(BIN), "worker", "--cluster", url, "--workers", "1", "-q"],
            stdin=subprocess.DEVNULL)
        # `ip netns exec` execs the launcher, which execs the engine: one pid.
        time.sleep(0.3)
        (self.cg / "cgroup.procs").write_text(str(self.proc.pid))

    def bytes(self):
        s = Path(f"/sys/class/net/{self.host_if}/statistics")
        return int((s / "rx_bytes").read_text()) + int((s / "tx_bytes").read_text())

    def close(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        sh("ip", "link", "del", self.host_if, check=False, stderr=subprocess.DEVNULL)
        sh("ip", "netns", "del", self.ns, check=False, stderr=subprocess.DEVNULL)
        try:
            self.cg.rmdir()
        except OSError:
            pass


def cgroup(name, cpu):
    cg = CGROUP / name
    cg.mkdir(exist_ok=True)
    (cg / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (cg / "cpu.cfs_quota_us").write_text(str(int(cpu * PERIOD_US)))
    return cg


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd, cg=None):
    """Runs cmd (in cgroup `cg`); returns (wall s, its CPU s)."""
    before = children_cpu()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if cg:
        (cg / "cgroup.procs").write_text(str(p.pid))
    _, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{cmd}: exit {p.returncode}: {err.decode()[-2000:]}")
    return wall, children_cpu() - before


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2,3,4")
    ap.add_argument("--cpu", type=float, default=0.45, help="CPU quota of each worker machine (cores)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--cache-dir", default=os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "frameflow-bench"))
    args = ap.parse_args()
    if os.geteuid() != 0 or not CGROUP.is_dir() or not shutil.which("nats-server"):
        raise SystemExit("bench/cluster.py needs root, cgroup v1 at /sys/fs/cgroup/cpu and nats-server")
    if not args.no_build:
        sh("cargo", "build", "--release", "--quiet", cwd=ROOT)
    ks = [int(k) for k in args.workers.split(",")]
    clip = pl.make_clip(Path(args.cache_dir), pl.find_photo(True), "1080p")
    frames = pl.FRAMES
    work = Path(tempfile.mkdtemp(prefix="ffb-cluster-"))
    machines = [Machine(i, args.cpu) for i in range(max(ks))]
    nats = None
    try:
        port = 14000 + os.getpid() % 1000
        host = machines[0].host_ip
        nats = subprocess.Popen(["nats-server", "-a", host, "-p", str(port), "-js", "-sd", str(work / "js")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        url = f"nats://{host}:{port}"
        # Machines other than 0 reach the server (an address of the host) via their link.
        for m in machines[1:]:
            sh("ip", "netns", "exec", m.ns, "ip", "route", "add", f"{host}/32", "via", m.host_ip)
        base = ["run", "-i", str(clip), "-f", "emboss", "--overwrite"]
        # Local, unconstrained: the owner's CPU per frame is compared with this.
        _, local_cpu = run([str(BIN), *base, "-o", str(work / "local")])
        rows = []
        fps1 = None
        for k in ks:
            for m in machines[:k]:
                m.start_worker(url)
            time.sleep(1)
            net0 = sum(m.bytes() for m in machines)
            wall, owner_cpu = run([str(BIN), *base, "-o", str(work / f"k{k}"), "--cluster", url])
            net = sum(m.bytes() for m in machines) - net0
            for m in machines[:k]:
                m.proc.kill()
                m.proc.wait()
                m.proc = None
            cg = cgroup(f"ffb-local-{os.getpid()}", k * args.cpu)
            lwall, _ = run([str(BIN), *base, "-o", str(work / f"l{k}"), "--workers", "1"], cg)
            cg.rmdir()
            fps = frames / wall
            fps1 = fps1 or fps / k
            rows.append((k, fps, fps / (k * fps1), owner_cpu / local_cpu, net / frames, frames / lwall))
            pl.log(f"K={k}: {fps:.1f} fps")
        print(f"\n1080p emboss → JPEG, {frames} frames; each worker {args.cpu} CPU in its own netns + cgroup\n")
        print("| workers | fps | efficiency | owner CPU / local CPU | network bytes/frame | local fps at same CPU |")
        print("|---:|---:|---:|---:|---:|---:|")
        for k, fps, eff, oc, nb, lf in rows:
            print(f"| {k} | {fps:.1f} | {eff:.2f} | {oc * 100:.1f} % | {nb / 1e3:.0f} kB | {lf:.1f} |")
    finally:
        if nats:
            nats.kill()
            nats.wait()
        for m in machines:
            m.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
