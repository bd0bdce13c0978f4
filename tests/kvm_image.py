"""A small Debian guest for the KVM tests, built once with debootstrap and cached by its recipe's hash.

The half of the VM path that is not Windows (revert, boot, crash, reconnect, console) is the same code
for any guest, so a real Linux guest under real KVM exercises it where no Windows image exists.
The image is built without loop devices or mounts (which containers and CI runners often forbid):
debootstrap fills a folder, `mke2fs -d` turns the folder into an ext4 file system, `qemu-img
convert` makes it qcow2 (internal snapshots need qcow2). The guest boots Debian's own kernel
directly (`-kernel`/`-initrd`), so no boot loader is installed.

What the guest holds, and why:
- linux-image-amd64: Debian's kernel; its `pvpanic_mmio` module drives QEMU's ISA pvpanic device
  (ACPI id QEMU0001), which tells QEMU about a panic (QMP event GUEST_PANICKED);
- openssh-server with a host key made here, so the tests pin it in known_hosts instead of trusting a
  first-seen key; root logs in with a key made here (test keys for a guest only loopback reaches);
- python3 (the Windows double runs inside the guest in part B);
- no systemd: PID 1 is a 15-line shell script (INIT) that mounts, loads pvpanic's driver, sets QEMU
  user networking's fixed address and starts sshd. Where /dev/kvm cannot run Debian's kernel the
  guest runs under TCG, and there systemd's boot took minutes on two busy cores; the harness
  sees the same thing either way (network gone, QEMU's RESET, a new boot identity). A reboot is
  `lkdh-reboot`: sync, then the kernel restarts the machine;
- an initrd with only the modules the guest boots from (virtio, ext4), rebuilt in a chroot: the
  default one carries "most" modules (36 MB) and unpacking it is slow without hardware help.

Cache: `~/.cache/lkdh-kvm/<hash>/` (LKDH_KVM_CACHE overrides); the hash covers everything below that
shapes the image, so changing the recipe builds a new one and an unchanged recipe reuses the old.
Two stages: debootstrap's tree is kept as `base-<hash of suite and packages>.tar`, so a change to the
configuration alone (init, keys, initrd) skips debootstrap; downloaded packages are kept in `debs/`,
so even a new package list downloads only what is new. A build is written
to a temporary folder and renamed into place, so a build cut short is never mistaken for a good one.
Packages come from the mirror the host's own apt uses (LKDH_KVM_MIRROR overrides).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
PACKAGES = ("linux-image-amd64", "openssh-server", "python3", "kmod", "iproute2")
IMAGE_SIZE = "1536M"
GUEST_ADDRESS = "10.0.2.15/24"
GUEST_GATEWAY = "10.0.2.2"
KERNEL_ARGS = "root=/dev/vda rw console=ttyS0 panic=1 net.ifnames=0 random.trust_cpu=on init=/sbin/lkdh-init"
"""`panic=1`: the guest reboots a second after a panic, as a Windows guest does after a bugcheck
(the pvpanic notifier has told QEMU by then); `console=ttyS0`: the kernel's messages, the panic's
included, reach the serial console that QEMU writes to a file."""

INIT = f"""\
#!/bin/sh
# PID 1 of the lkdh test guest (tests/kvm_image.py says why it is not systemd).
# The initrd has moved /proc, /sys and /dev here already; mount them only when booted without one.
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mountpoint -q /run || mount -t tmpfs -o mode=755 run /run
mkdir -p /run/sshd
hostname lkdh-guest
# No udev: load by name what it would have loaded for QEMU's devices (NIC, pvpanic).
modprobe virtio_net
modprobe pvpanic_mmio
ip link set lo up
ip link set eth0 up
ip address add {GUEST_ADDRESS} dev eth0
ip route add default via {GUEST_GATEWAY}
/usr/sbin/sshd -e
echo "lkdh-guest: up, boot $(cat /proc/sys/kernel/random/boot_id)" > /dev/console
while :; do wait; sleep 5; done
"""
"""The whole boot: file systems, pvpanic's driver, the network QEMU user networking expects
(10.0.2.15, gateway 10.0.2.2, no DHCP to wait for), sshd. Then it waits, as PID 1 must never exit."""

REBOOT = """\
#!/bin/sh
# Reboot the guest for real: flush the disk, then the kernel restarts the machine (sysrq 'b').
sync
echo b > /proc/sysrq-trigger
"""

GUEST_FILES = {
    "etc/hostname": "lkdh-guest\n",
    "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 lkdh-guest\n",
    "etc/fstab": "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
    "sbin/lkdh-init": INIT,
    "sbin/lkdh-reboot": REBOOT,
    "etc/initramfs-tools/conf.d/lkdh.conf": "MODULES=list\n",
    "etc/initramfs-tools/modules": "virtio_pci\nvirtio_blk\next4\n",
    "etc/ssh/sshd_config.d/lkdh.conf": (
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUseDNS no\n"
        "PermitRootLogin prohibit-password\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
    ),
}
EXECUTABLES = ("sbin/lkdh-init", "sbin/lkdh-reboot")

BUILD_LOCK_POLL = 2.0


class GuestBuildError(RuntimeError):
    """The guest image could not be built; the message names the step and carries its output."""


@dataclass(frozen=True)
class GuestImage:
    """A built guest: disk, kernel, initrd, and the keys that pin both ends of SSH."""

    folder: Path

    @property
    def disk(self) -> Path:
        return self.folder / "rootfs.qcow2"

    @property
    def kernel(self) -> Path:
        return self.folder / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.folder / "initrd.img"

    @property
    def client_key(self) -> Path:
        return self.folder / "client_ed25519"

    @property
    def host_public_key(self) -> str:
        """`ssh-ed25519 AAAA...`: the guest's host key, for known_hosts."""
        fields = (self.folder / "ssh_host_ed25519_key.pub").read_text().split()
        return f"{fields[0]} {fields[1]}"

    @property
    def build_seconds(self) -> float:
        return float(json.loads((self.folder / "build.json").read_text())["seconds"])


def missing_reason() -> str | None:
    """Why this machine cannot build the guest, or None when it can."""
    if os.geteuid() != 0:
        return "building the KVM guest needs root (debootstrap)"
    for tool in ("debootstrap", "mke2fs", "qemu-img", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} not found (.ci/run installs debootstrap, qemu-utils, openssh-client)"
    return None


def recipe() -> dict[str, object]:
    """Everything that shapes the image; its hash names the cache folder."""
    return {
        "suite": SUITE,
        "packages": PACKAGES,
        "size": IMAGE_SIZE,
        "files": GUEST_FILES,
        "executables": EXECUTABLES,
        "kernel_args": KERNEL_ARGS,
        "layout": 4,
    }


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(recipe(), sort_keys=True).encode()).hexdigest()[:16]


def cache_root() -> Path:
    return Path(os.environ.get("LKDH_KVM_CACHE", "~/.cache/lkdh-kvm")).expanduser()


def host_mirror(sources: Path = Path("/etc/apt")) -> str | None:
    """The Debian mirror the host's apt is set up with (deb822 or one-line form), if one is found."""
    if os.environ.get("LKDH_KVM_MIRROR"):
        return os.environ["LKDH_KVM_MIRROR"]
    files = [*sorted((sources / "sources.list.d").glob("*.sources")), sources / "sources.list"]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and SUITE in suites.group(1).split():
                return uris.group(1)
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE and "://" in parts[1]:
                return parts[1]
    return None


def ensure_image(log: Path | None = None) -> GuestImage:
    """The cached guest for the current recipe, building it first if there is none.

    Concurrent callers (xdist workers, two checkouts) wait on one lock file; the second finds the
    image the first built.
    """
    root = cache_root()
    image = GuestImage(root / recipe_hash())
    if (image.folder / "build.json").exists():
        return image
    root.mkdir(parents=True, exist_ok=True)
    import fcntl

    with (root / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (image.folder / "build.json").exists():
            _build(image.folder, root / "debs", log)
    return image


def _run(step: str, argv: list[str], log: Path | None, timeout: float = 3600) -> None:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    if log is not None:
        with log.open("ab") as out:
            out.write(f"$ {' '.join(argv)}\n".encode() + result.stdout + result.stderr)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).decode("utf-8", "replace")[-2000:]
        raise GuestBuildError(f"guest build step '{step}' failed (exit {result.returncode}):\n{tail}")


def base_hash() -> str:
    """The debootstrap stage's own key: only the suite and the packages shape it."""
    return hashlib.sha256(json.dumps([SUITE, PACKAGES]).encode()).hexdigest()[:16]


def _base_tarball(root: Path, debs: Path, log: Path | None) -> Path:
    """debootstrap's result as a tarball, cached on its own: the guest's configuration (init,
    keys, initrd) can then change and be rebuilt in a minute or two instead of a full debootstrap."""
    tarball = root / f"base-{base_hash()}.tar"
    if tarball.exists():
        return tarball
    debs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="base-", dir=root))
    try:
        rootfs = work / "rootfs"
        argv = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}"]
        argv += [f"--cache-dir={debs}", SUITE, str(rootfs)]
        mirror = host_mirror()
        if mirror:
            argv.append(mirror)
        _run("debootstrap", argv, log)
        partial = work / "base.tar"
        _run("tar", ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], log)
        partial.rename(tarball)
    finally:
        _unmount_below(work)
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def _unmount_below(folder: Path) -> None:
    """debootstrap mounts /proc (and more) inside the tree it builds and, when it is cut short,
    leaves them mounted: removing the tree must never walk into a live mount."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for point in sorted((p for p in points if p.startswith(f"{folder}/")), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, stdin=subprocess.DEVNULL)


def _build(target: Path, debs: Path, log: Path | None) -> None:
    started = time.monotonic()
    tarball = _base_tarball(target.parent, debs, log)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        rootfs = work / "rootfs"
        rootfs.mkdir()
        _run("untar", ["tar", "--numeric-owner", "-C", str(rootfs), "-xf", str(tarball)], log)
        _configure(rootfs, work, log)
        # Debian's default initrd carries "most" modules (36 MB): unpacking and probing them is the
        # longest part of a boot without hardware virtualisation. The guest needs three.
        _run("update-initramfs", ["chroot", str(rootfs), "update-initramfs", "-u", "-k", "all"], log)
        _export_boot_files(rootfs, work)
        raw = work / "rootfs.ext4"
        _run(
            "mke2fs",
            ["mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", str(rootfs), str(raw), IMAGE_SIZE],
            log,
        )
        _run("qemu-img", ["qemu-img", "convert", "-O", "qcow2", str(raw), str(work / "rootfs.qcow2")], log)
        raw.unlink()
        shutil.rmtree(rootfs)
        seconds = time.monotonic() - started
        (work / "build.json").write_text(json.dumps({"recipe": recipe(), "seconds": round(seconds, 1)}))
        work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _configure(rootfs: Path, work: Path, log: Path | None) -> None:
    for name, text in GUEST_FILES.items():
        path = rootfs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name in EXECUTABLES:
        (rootfs / name).chmod(0o755)
    for old in (rootfs / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    host_key = work / "ssh_host_ed25519_key"
    client_key = work / "client_ed25519"
    for key, comment in ((host_key, "lkdh-guest-host"), (client_key, "lkdh-kvm-client")):
        _run(
            "ssh-keygen", ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], log
        )
    shutil.copy(host_key, rootfs / "etc/ssh/ssh_host_ed25519_key")
    shutil.copy(host_key.with_suffix(".pub"), rootfs / "etc/ssh/ssh_host_ed25519_key.pub")
    (rootfs / "etc/ssh/ssh_host_ed25519_key").chmod(0o600)
    ssh_dir = rootfs / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    (ssh_dir / "authorized_keys").chmod(0o600)
    (rootfs / "etc/machine-id").write_text("")  # each boot of a fresh overlay makes its own


def _export_boot_files(rootfs: Path, work: Path) -> None:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise GuestBuildError(f"no kernel or initrd in {rootfs / 'boot'} after debootstrap")
    shutil.copy(kernels[-1], work / "vmlinuz")
    shutil.copy(initrds[-1], work / "initrd.img")
