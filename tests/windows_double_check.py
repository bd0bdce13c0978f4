"""The Windows double's answers to what `lkdh target check` asks beyond provisioning's needs.

host-info.ps1 also reports PowerShell's version, edition and language mode and the OS product, and
the check refuses a session that is not FullLanguage (ConstrainedLanguage under WDAC/AppLocker
would stop the templates); the double is a Windows PowerShell 5.1 Desktop host in FullLanguage
mode, as an administrator's session on a lab VM without application control is.

dump-folder-status.ps1 reports each dump folder, whether this account can create a file there
(the template writes and deletes a probe file; so does the double, on the simulator's disk), and
the drive's free space (from the disk the simulator's files are on: the guest's own disk when the
double runs in a KVM guest). Both folders are there, as on a VM `vm/bootstrap.ps1` set up
(Windows creates %SystemRoot%\\LiveKernelReports; bootstrap the Minidump folder): the simulator
makes them only with its first dump, so the double makes them when asked, empty.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PureWindowsPath
from typing import Any

SYSTEM_ROOT = PureWindowsPath("C:/Windows")
HOST_FACTS = {
    "powershell_version": "5.1.19041.5129",
    "powershell_edition": "Desktop",
    "language_mode": "FullLanguage",
    "os_product": "Windows 10 Pro",
    "os_display_version": "22H2",
    "os_build": "19045.5131",
    "os_version": "10.0.19045.0",
    "is_64bit": True,
    "hyperv_module": False,
}


def dump_folder_status(windows_dir: Path) -> dict[str, Any]:
    """dump-folder-status.ps1's answer for the double's %SystemRoot% at `windows_dir`."""
    return {
        "live": _folder(windows_dir, "LiveKernelReports"),
        "minidump": _folder(windows_dir, "Minidump"),
        "memory_dump_path": str(SYSTEM_ROOT / "MEMORY.DMP"),
    }


def _folder(windows_dir: Path, name: str) -> dict[str, Any]:
    folder = windows_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    writable, write_error = True, ""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lkdh-probe-", suffix=".tmp"):
            pass
    except OSError as error:
        writable, write_error = False, f"Access to the path is denied ({error.strerror})"
    usage = shutil.disk_usage(folder)
    return {
        "path": str(SYSTEM_ROOT / name),
        "exists": True,
        "created": False,
        "writable": writable,
        "write_error": write_error,
        "free_bytes": usage.free,
        "total_bytes": usage.total,
    }
