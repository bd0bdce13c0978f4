"""Benchmark: pulling a 1 GiB file with hash verification, lkdh against OpenSSH's own `sftp` and
`scp` clients, same loopback sshd (tests/sshd_server.py), same file, same run.

Contenders, in rounds (each round runs every one once, in turn, so the page cache, the CPU
frequency and the other helpers' load treat them alike):
- `lkdh openssh`: harness sftp_transfer.download over OpenSSH's `ssh` (openssh_sftp.py): what
  `ssh.sftp_client: auto` uses; SHA-256 while writing, fsync before the rename, all included;
- `lkdh paramiko`: the same download over paramiko's transport (keys with a passphrase);
- `OpenSSH sftp -b`, `OpenSSH scp`: the peers, given the same cipher and the same isolation
  (`-F none`, the pinned known_hosts, BatchMode, no agent); they neither hash nor fsync.
Each figure is the median MiB/s over the rounds; the ratio of lkdh to the faster OpenSSH client
is the goal's figure (issue 14: at least 0.8). CPU seconds (this process and its children: the
client side only; sshd's share is the same for all) are printed too, since the machine is shared.

Run: `python bench/bench_sftp.py [--size-mib N] [--rounds N]` (needs /usr/sbin/sshd, ssh, sftp, scp).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sshd_server import SshdServer, sshd_missing_reason

from harness.target.windows.openssh_sftp import OpenSshEndpoint, OpenSshSftp
from harness.target.windows.sftp_transfer import download
from harness.target.windows.ssh_session import PREFERRED_CIPHER, SshSession

Pull = Callable[[SshdServer, Path, Path], None]


def make_file(path: Path, size_mib: int) -> None:
    with path.open("wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(1 << 20))


def isolation(server: SshdServer) -> list[str]:
    """The options the harness gives ssh (openssh_sftp.py), for the peers too."""
    return [
        "-F", "none", "-c", PREFERRED_CIPHER, "-i", str(server.client_key),
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
    ]  # fmt: skip


def lkdh_openssh(server: SshdServer, source: Path, target: Path) -> None:
    endpoint = OpenSshEndpoint("127.0.0.1", server.port, server.user, server.client_key, server.known_hosts)
    download(OpenSshSftp(endpoint), str(source), target, None, resume=False)


def lkdh_paramiko(server: SshdServer, source: Path, target: Path) -> None:
    with SshSession(
        "127.0.0.1", server.port, server.user, server.client_key, known_hosts=server.known_hosts, posix=True
    ) as session:
        session.connect()
        download(session, str(source), target, None, resume=False)


def openssh_sftp(server: SshdServer, source: Path, target: Path) -> None:
    batch = target.with_name("batch")  # sftp(1): quote names with spaces in double quotes
    batch.write_text(f'get "{source}" "{target}"\n')
    argv = [
        "sftp",
        "-q",
        "-b",
        str(batch),
        "-P",
        str(server.port),
        *isolation(server),
        f"{server.user}@127.0.0.1",
    ]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def openssh_scp(server: SshdServer, source: Path, target: Path) -> None:
    argv = [
        "scp",
        "-q",
        "-P",
        str(server.port),
        *isolation(server),
        f"{server.user}@127.0.0.1:{source}",
        str(target),
    ]
    subprocess.run(argv, check=True)


CONTENDERS: dict[str, Pull] = {
    "lkdh openssh (sha256 + fsync)": lkdh_openssh,
    "lkdh paramiko (sha256 + fsync)": lkdh_paramiko,
    "OpenSSH sftp -b": openssh_sftp,
    "OpenSSH scp": openssh_scp,
}


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    missing = sshd_missing_reason()
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2
    seconds: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    cpu: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        workdir = Path(folder)
        source = workdir / "MEMORY.DMP"
        make_file(source, args.size_mib)
        with SshdServer(workdir / "sshd") as server:
            for _ in range(args.rounds):
                for name, pull in CONTENDERS.items():
                    target = workdir / "copy.bin"
                    target.unlink(missing_ok=True)
                    began, began_cpu = time.perf_counter(), cpu_seconds()
                    pull(server, source, target)
                    seconds[name].append(time.perf_counter() - began)
                    cpu[name].append(cpu_seconds() - began_cpu)
                    assert target.stat().st_size == args.size_mib << 20, f"{name}: incomplete copy"
                    target.unlink()
                loads.append(os.getloadavg()[0])
    print(f"{os.cpu_count()} cores, load average {min(loads):.1f}-{max(loads):.1f} during the run")
    speed = {name: args.size_mib / statistics.median(runs) for name, runs in seconds.items()}
    for name in CONTENDERS:
        runs = " ".join(f"{s:.2f}" for s in seconds[name])
        print(
            f"{name:32} {speed[name]:7.1f} MiB/s  client CPU {statistics.median(cpu[name]):5.2f} s"
            f"  (median of {args.rounds}: {runs} s)"
        )
    peer = max(speed["OpenSSH sftp -b"], speed["OpenSSH scp"])
    for name in ("lkdh openssh (sha256 + fsync)", "lkdh paramiko (sha256 + fsync)"):
        print(
            f"ratio {name} / sftp {speed[name] / speed['OpenSSH sftp -b']:.2f}, / scp "
            f"{speed[name] / speed['OpenSSH scp']:.2f}, / the faster {speed[name] / peer:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
