"""The driver package preflight: refuse a package that cannot install or cannot be the build the
user thinks it is, before anything touches the VM, naming the file and the reason.

What a package must be (driver/README.md, "The package"), and where each rule comes from:
- exactly one INF; it parses, its [Version] names a CatalogFile that is in the folder, its
  DriverVer has a four-part version, and [SourceDisksFiles] names the .sys (INF docs: INF
  Version / SourceDisksFiles sections);
- the models section is decorated for the VM's architecture (NTamd64 / NTarm64), and its
  OS-build floor is at least the highest floor of the kernel APIs the .sys imports
  (ExAllocatePool2 exists from Windows 10 2004, build 19041: an INF that lets the package
  install on an older build gives a driver that fails to load with STATUS_DRIVER_ENTRYPOINT_NOT_FOUND);
- the .sys is a PE for that machine type (IMAGE_FILE_MACHINE_AMD64 0x8664, ARM64 0xAA64), native
  subsystem, importing WdfVersionBind from WDFLDR.SYS (every KMDF driver does: the KMDF loader binds
  it);
- the version stamp (lkdh-package.json) agrees with the INF's DriverVer and the .sys's version
  resource, its sys_sha256 is the .sys's, and it is not the unstamped 0.0.0.0;
- the .sys and the .cat carry Authenticode signatures that verify against the configured test
  certificate, and the catalog lists the .sys (Authenticode image hash) and the INF (flat hash).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pefile

from harness.target.base import TargetError
from harness.target.windows import authenticode
from harness.target.windows.inf_file import InfError, InfFile, read_inf

PACKAGE_STAMP = "lkdh-package.json"
STAMP_FORMAT = 1
UNSTAMPED_VERSION = "0.0.0.0"

MACHINE_TYPES = {"amd64": 0x8664, "arm64": 0xAA64}
"""INF architecture decoration → IMAGE_FILE_HEADER.Machine."""
IMAGE_SUBSYSTEM_NATIVE = 1
KERNEL_API_FLOORS = {"ExAllocatePool2": 19041, "ExAllocatePool3": 19041}
"""ntoskrnl exports the test driver may import, and the first Windows build that has them."""


class PackageError(TargetError):
    """The driver package is refused: `file` is the one at fault, `reason` says why."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"driver package refused: {file}: {reason}")
        self.file = file
        self.reason = reason


@dataclass(frozen=True)
class PackageFacts:
    """What the preflight proved about the package (the run record names version and hash)."""

    inf: Path
    sys: Path
    catalog: Path
    architecture: str
    driver_version: str
    dmf_commit: str
    sys_sha256: str
    os_build_floor: int


def check_package(folder: Path, *, architecture: str, trusted: Path | None) -> PackageFacts:
    """Every rule of the module docstring for the package in `folder`, for a VM of `architecture`
    ("amd64" or "arm64"), with signatures trusted when they chain to `trusted`."""
    if architecture not in MACHINE_TYPES:
        raise PackageError(str(folder), f"unknown VM architecture {architecture!r}")
    infs = sorted(folder.glob("*.inf"))
    if len(infs) != 1:
        raise PackageError(str(folder), f"a package has exactly one .inf, found {len(infs)}")
    try:
        inf = read_inf(infs[0])
    except InfError as error:
        raise PackageError(infs[0].name, str(error)) from None
    catalog = _catalog(inf, folder, architecture)
    sys_path = _sys_file(inf, folder, architecture)
    version = _driver_version(inf)
    floor = _os_build_floor(inf, architecture)
    imports, file_version = _check_pe(sys_path, architecture)
    needed = max((KERNEL_API_FLOORS.get(name, 0) for name in imports), default=0)
    if needed > floor:
        api = max(imports, key=lambda name: KERNEL_API_FLOORS.get(name, 0))
        raise PackageError(
            inf.path.name,
            f"the models section allows OS build {floor}, but {sys_path.name} imports {api}, which exists"
            f" only from build {needed}: decorate it NT{architecture}.10.0...{needed}",
        )
    stamp = _check_stamp(folder, sys_path, version, file_version)
    _check_signatures(sys_path, catalog, trusted)
    _check_coverage(catalog, [sys_path, inf.path])
    return PackageFacts(
        inf.path, sys_path, catalog, architecture, version, stamp["dmf_commit"], stamp["sys_sha256"], floor
    )


def _catalog(inf: InfFile, folder: Path, architecture: str) -> Path:
    entry = inf.value("Version", f"CatalogFile.NT{architecture}") or inf.value("Version", "CatalogFile")
    if entry is None or not entry.values or not entry.values[0]:
        raise PackageError(inf.path.name, "[Version] names no CatalogFile: the package cannot be signed")
    catalog = folder / entry.values[0]
    if not catalog.is_file():
        raise PackageError(inf.where(entry), f"CatalogFile {entry.values[0]} is not in the package")
    return catalog


def _sys_file(inf: InfFile, folder: Path, architecture: str) -> Path:
    entries = inf.section(f"SourceDisksFiles.{architecture}") + inf.section("SourceDisksFiles")
    names = [entry.key for entry in entries if entry.key and entry.key.lower().endswith(".sys")]
    if len(names) != 1:
        raise PackageError(inf.path.name, f"[SourceDisksFiles] must name one .sys, names {names or 'none'}")
    sys_path = folder / names[0]
    if not sys_path.is_file():
        raise PackageError(inf.path.name, f"{names[0]} is named in [SourceDisksFiles] but not in the package")
    return sys_path


def _driver_version(inf: InfFile) -> str:
    entry = inf.value("Version", "DriverVer")
    values = entry.values if entry is not None else ()
    if len(values) < 2 or not re.fullmatch(r"\d{1,5}(\.\d{1,5}){3}", values[1]):
        raise PackageError(
            inf.where(entry), "DriverVer must be 'MM/DD/YYYY,a.b.c.d' (stampinf -v fills it in)"
        )
    return values[1]


def _os_build_floor(inf: InfFile, architecture: str) -> int:
    """The lowest OS build any models section for `architecture` accepts ([Manufacturer] decorations)."""
    floors = []
    for entry in inf.section("Manufacturer"):
        for decoration in entry.values[1:]:
            # NT<arch>[.major[.minor[.product type[.suite mask[.build]]]]] (INF Manufacturer section)
            parts = decoration.split(".")
            if parts[0].lower() != f"nt{architecture}":
                continue
            build = parts[5] if len(parts) > 5 else ""
            floors.append(int(build) if build.isdigit() else 0)
    if not floors:
        raise PackageError(
            inf.path.name,
            f"[Manufacturer] has no models section for NT{architecture}: it cannot install here",
        )
    return min(floors)


def _check_pe(sys_path: Path, architecture: str) -> tuple[set[str], str]:
    """Machine type, subsystem and the KMDF import; (names imported from ntoskrnl.exe, FileVersion)."""
    try:
        pe = pefile.PE(str(sys_path))
    except pefile.PEFormatError as error:
        raise PackageError(sys_path.name, f"not a PE image: {error}") from None
    try:
        machine = pe.FILE_HEADER.Machine
        if machine != MACHINE_TYPES[architecture]:
            found = pefile.MACHINE_TYPE.get(machine, hex(machine))
            raise PackageError(
                sys_path.name, f"built for {found}, but the VM is {architecture} (Machine 0x{machine:04X})"
            )
        if pe.OPTIONAL_HEADER.Subsystem != IMAGE_SUBSYSTEM_NATIVE:
            raise PackageError(
                sys_path.name, f"subsystem {pe.OPTIONAL_HEADER.Subsystem}, not native: no driver"
            )
        imports: dict[str, set[str]] = {}
        for dll in getattr(pe, "DIRECTORY_ENTRY_IMPORT", []):
            names = {item.name.decode("ascii", "replace") for item in dll.imports if item.name}
            imports[dll.dll.decode("ascii", "replace").lower()] = names
        if "WdfVersionBind" not in imports.get("wdfldr.sys", set()):
            raise PackageError(sys_path.name, "imports no WdfVersionBind from WDFLDR.SYS: not a KMDF driver")
        version = _file_version(pe)
    finally:
        pe.close()
    if version is None:
        raise PackageError(sys_path.name, "has no version resource (LkdhTestDriver.rc)")
    return imports.get("ntoskrnl.exe", set()), version


def _file_version(pe: pefile.PE) -> str | None:
    """VS_FIXEDFILEINFO.FileVersion as a.b.c.d."""
    for info in getattr(pe, "VS_FIXEDFILEINFO", None) or []:
        ms, ls = info.FileVersionMS, info.FileVersionLS
        return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"
    return None


def _check_stamp(folder: Path, sys_path: Path, inf_version: str, file_version: str) -> dict[str, str]:
    path = folder / PACKAGE_STAMP
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageError(PACKAGE_STAMP, "missing: driver/build.ps1 writes it beside the INF") from None
    except ValueError as error:
        raise PackageError(PACKAGE_STAMP, f"not JSON: {error}") from None
    if not isinstance(stamp, dict) or stamp.get("format") != STAMP_FORMAT:
        raise PackageError(PACKAGE_STAMP, f"format must be {STAMP_FORMAT}")
    for key in ("driver_version", "dmf_commit", "sys_sha256"):
        if not isinstance(stamp.get(key), str):
            raise PackageError(PACKAGE_STAMP, f"{key} is missing or not a string")
    version = stamp["driver_version"]
    if version == UNSTAMPED_VERSION:
        raise PackageError(PACKAGE_STAMP, "driver_version 0.0.0.0: the build was not stamped")
    for where, other in ((f"{sys_path.name} version resource", file_version), ("INF DriverVer", inf_version)):
        if other != version:
            raise PackageError(PACKAGE_STAMP, f"driver_version {version} but the {where} says {other}")
    if not re.fullmatch(r"[0-9a-f]{40}", stamp["dmf_commit"]):
        raise PackageError(PACKAGE_STAMP, "dmf_commit must be the 40-digit lower-case commit hash")
    actual = hashlib.sha256(sys_path.read_bytes()).hexdigest()
    if stamp["sys_sha256"] != actual:
        raise PackageError(sys_path.name, f"SHA-256 {actual} is not the stamped {stamp['sys_sha256']}")
    return stamp


def _check_signatures(sys_path: Path, catalog: Path, trusted: Path | None) -> None:
    for path in (sys_path, catalog):
        check = authenticode.verify_signature(path, trusted)
        if not check.ok:
            what = "is not signed" if not check.signed else f"signature does not verify: {check.detail}"
            raise PackageError(path.name, what)


def _check_coverage(catalog: Path, files: list[Path]) -> None:
    try:
        members = authenticode.catalog_members(catalog)
    except authenticode.CatalogError as error:
        raise PackageError(catalog.name, str(error)) from None
    listed = {(member.algorithm, member.digest) for member in members}
    for path in files:
        is_pe = path.suffix.lower() == ".sys"
        for algorithm in ("sha256", "sha1"):
            digest = (
                authenticode.pe_image_hash(path, algorithm)
                if is_pe
                else authenticode.flat_hash(path, algorithm)
            )
            if (algorithm, digest) in listed:
                break
        else:
            raise PackageError(
                path.name,
                f"not covered by {catalog.name}: its hash is not in the catalog (changed after Inf2Cat?)",
            )
