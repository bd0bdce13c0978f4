"""Benchmark: the tuned SFTP download against OpenSSH's own `sftp` client, same server, same run.

Both fetch the same 512 MiB random file from one loopback sshd (tests/sshd_server.py), alternating
so that page cache and CPU frequency treat them alike. OpenSSH's client is the yardstick the guest's
dumps would otherwise be fetched with; the ratio says how much the Python path costs. Ours does more
per byte (SHA-256 while writing, fsync before the rename), and that is included on purpose.

Run: `python bench/bench_sftp.py [--size-mib N] [--repeat N]` (needs /usr/sbin/sshd and `sftp`).
Prints the median MiB/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sshd_server import SshdServer, sshd_missing_reason

from harness.target.windows.sftp_transfer import download
from harness.target.windows.ssh_session import PREFERRED_CIPHER, SshSession


def make_file(path: Path, size_mib: int) -> None:
    with path.open("wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(1 << 20))


def tuned_download(server: SshdServer, source: Path, target: Path) -> float:
    target.unlink(missing_ok=True)
    with SshSession(
        "127.0.0.1", server.port, server.user, server.client_key, known_hosts=server.known_hosts, posix=True
    ) as session:
        session.connect()
        began = time.perf_counter()
        download(session, str(source), target, None, resume=False)
        return time.perf_counter() - began


def openssh_download(server: SshdServer, source: Path, target: Path, workdir: Path) -> float:
    target.unlink(missing_ok=True)
    batch = workdir / "batch"
    batch.write_text(f'get "{source}" "{target}"\n')
    argv = [
        "sftp", "-q", "-b", str(batch), "-P", str(server.port), "-i", str(server.client_key),
        "-c", PREFERRED_CIPHER, "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={server.known_hosts}",
        f"{server.user}@127.0.0.1",
    ]  # fmt: skip
    began = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began  # includes its connection set-up (a few ms on loopback)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    missing = sshd_missing_reason()
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        source = workdir / "MEMORY.DMP"
        make_file(source, args.size_mib)
        ours: list[float] = []
        theirs: list[float] = []
        with SshdServer(workdir / "sshd") as server:
            for _ in range(args.repeat):
                ours.append(tuned_download(server, source, workdir / "ours.bin"))
                theirs.append(openssh_download(server, source, workdir / "theirs.bin", workdir))
    times = {"lkdh download (paramiko, tuned)": ours, "OpenSSH sftp -b": theirs}
    speeds = {name: args.size_mib / statistics.median(seconds) for name, seconds in times.items()}
    for name, speed in speeds.items():
        print(f"{name:34} {speed:8.1f} MiB/s  (median of {args.repeat}, {args.size_mib} MiB)")
    ours_speed, theirs_speed = speeds.values()
    print(f"{'ratio lkdh / OpenSSH':34} {ours_speed / theirs_speed:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
