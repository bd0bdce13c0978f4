"""Putting the Windows test double into a KVM test guest, and reaching it as the Windows target would.

`install_double` copies a bundle over the guest's real SFTP server: the harness package, the double
(windows_double.py, windows_guest_double.py) and the third-party packages they import, taken from
this interpreter's site-packages. The guest is Debian bookworm with Python 3.11, the same ABI as the
harness's own environment, so compiled wheels (pydantic_core, numpy) run there as they are. Then it
adds the account the harness logs in as, `lkdh-admin`, whose login shell is windows_guest_shell.py
(cmd.exe's part), and links `/C:` to the simulator's disk so SFTP paths are Windows OpenSSH's.
`lkdh-admin` has uid 0, as the harness's account is an elevated administrator on Windows: the double
must be able to reboot and panic the kernel.

The lab's target config says `commands: ssh` (harness/target/windows/command_channel.py): every
command goes out as the same bootstrap command line and stdin the WinRM path sends, over a real
network connection to a real sshd, to the account's shell as Windows OpenSSH hands it to cmd.exe.
There is no WinRM server for Linux, so the one part of the Windows target's path this cannot
exercise is the WinRM transport itself.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from harness.target.windows.ssh_session import SshSession

TESTS = Path(__file__).resolve().parent
REPO_ROOT = TESTS.parent
ADMIN = "lkdh-admin"
BUNDLE_DIR = "/opt/lkdh"
SHELL = f"{BUNDLE_DIR}/bin/lkdh-cmd"
GUEST_ENTRY = "windows_guest_double"
"""The module the guest runs; the tests/ modules it imports are found by importing it (`_modules_used`),
so a module split out of the double later is bundled without anyone remembering to list it."""
EXTRA_PACKAGES = ("pefile", "ordlookup", "peutils")
"""Imported only when a driver is installed (the double reads the .sys version with pefile)."""
SKIPPED_PARTS = frozenset({"tests", "testing", "__editable__", "_distutils_hack"})


IMPORTED_BY_ENTRY = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
importlib.import_module(sys.argv[2])
print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})))
"""
"""Run in a fresh interpreter: this process has pytest's own imports, which the guest does not need."""


def _modules_used() -> list[Path]:
    """Every module file the guest's entry module imports, found by importing it in a fresh interpreter."""
    found = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY_ENTRY, str(TESTS), GUEST_ENTRY],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    return [Path(origin) for origin in json.loads(found.stdout)]


def _test_modules_used(modules: list[Path]) -> list[Path]:
    """The tests/ modules among them (the double and what it was split into)."""
    return sorted(path for path in modules if path.parent == TESTS)


def _site_packages_used(modules: list[Path]) -> list[Path]:
    """Top-level modules and packages of site-packages among them."""
    roots: set[Path] = set()
    for path in modules:
        if "site-packages" not in path.parts:
            continue
        site = next(parent for parent in path.parents if parent.name == "site-packages")
        top = site / path.relative_to(site).parts[0]
        if not top.name.startswith(("__editable__", "_distutils_hack")):
            roots.add(top)
    site = next(iter(roots)).parent
    for name in EXTRA_PACKAGES:
        for candidate in (site / name, site / f"{name}.py"):
            if candidate.exists():
                roots.add(candidate)
    for root in list(roots):  # wheels keep their shared libraries beside the package (numpy.libs)
        libs = root.parent / f"{root.name}.libs"
        if libs.is_dir():
            roots.add(libs)
    return sorted(roots)


def _keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if SKIPPED_PARTS & set(Path(info.name).parts) else info


def build_bundle(destination: Path) -> Path:
    """A .tar.gz of everything the double needs in the guest, relative to BUNDLE_DIR."""
    with tarfile.open(destination, "w:gz", compresslevel=1) as bundle:
        bundle.add(REPO_ROOT / "harness", "harness", filter=_keep)
        modules = _modules_used()
        for module in _test_modules_used(modules):
            bundle.add(module, module.name)
        bundle.add(TESTS / "windows_guest_shell.py", "bin/lkdh-cmd")
        for root in _site_packages_used(modules):
            bundle.add(root, root.name, filter=_keep)
    return destination


def install_double(root: SshSession, bundle: Path, setup: dict[str, object], timeout: float) -> None:
    """Unpack the bundle in the guest, add the administrator account and the double's state folder."""
    with root.open_sftp() as sftp:
        sftp.put(str(bundle), "/tmp/lkdh-bundle.tar.gz")
        sftp.putfo(io.BytesIO(json.dumps(setup).encode()), "/tmp/lkdh-setup.json")
    script = f"""set -e
mkdir -p {BUNDLE_DIR} /var/lib/lkdh-double/machine /home/{ADMIN}/.ssh
tar -xzf /tmp/lkdh-bundle.tar.gz -C {BUNDLE_DIR}
chmod 755 {SHELL}
mv /tmp/lkdh-setup.json /var/lib/lkdh-double/setup.json
ln -sfn /var/lib/lkdh-double/machine /C:
useradd -o -u 0 -g 0 -M -d /home/{ADMIN} -s {SHELL} {ADMIN}
cp /root/.ssh/authorized_keys /home/{ADMIN}/.ssh/authorized_keys
chmod 700 /home/{ADMIN}/.ssh
rm /tmp/lkdh-bundle.tar.gz
sync
"""
    result = root.run(["sh", "-c", script], timeout=timeout)
    assert result.ok, result.stderr.decode(errors="replace")
