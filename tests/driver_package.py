"""Driver packages built here for real: what driver/build.ps1 makes on Windows, made with the tools
this machine has, so the package preflight and the install path meet real artefacts.

- LkdhTestDriver.sys: a native-subsystem x64 PE compiled by mingw-w64, importing WdfVersionBind
  from WDFLDR.SYS (every KMDF driver's import: the KMDF loader binds it) and ExAllocatePool2 from
  ntoskrnl.exe, with the version resource of driver/LkdhTestDriver/LkdhTestDriver.rc compiled by
  windres from the same LkdhStamp.h build.ps1 writes. It is no working driver (DriverEntry does
  nothing useful): only its PE shape, imports and version are real.
- LkdhTestDriver.inf: driver/LkdhTestDriver/LkdhTestDriver.inf stamped as stampinf does ($ARCH$,
  $KMDFVERSION$, DriverVer).
- LkdhTestDriver.cat: a PKCS#7 certificate trust list as Inf2Cat writes (SHA-256 member digests:
  the Authenticode image hash for the .sys, a flat hash for the INF), signed by osslsigncode.
- lkdh-package.json: the version stamp (format in driver/README.md).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import algos, core
from signing import SigningIdentity, require, sign

from harness.target.windows import authenticode as A

REPO = Path(__file__).resolve().parents[1]
DRIVER_SOURCE = REPO / "driver" / "LkdhTestDriver"
DMF_COMMIT = "bfac434fd3497259095a1f8d70ed734493228091"

_SYS_SOURCE = r"""
typedef long NTSTATUS;
__declspec(dllimport) NTSTATUS WdfVersionBind(void *, void *, void *, void *);
__declspec(dllimport) void *ExAllocatePool2(unsigned long long, unsigned long long, unsigned long);
NTSTATUS DriverEntry(void *driver, void *registry_path)
{
    if (driver == 0) { /* never taken: the imports are what matters */
        ExAllocatePool2(0x40, 16, 0x686b644c);
        return WdfVersionBind(driver, registry_path, 0, 0);
    }
    return 0;
}
"""
_DEF_FILES = {
    "wdfldr": "LIBRARY WDFLDR.SYS\nEXPORTS\nWdfVersionBind\n",
    "ntoskrnl": "LIBRARY ntoskrnl.exe\nEXPORTS\nExAllocatePool2\n",
}
SPC_PE_IMAGE_DATA = "1.3.6.1.4.1.311.2.1.15"
SPC_CAB_DATA = "1.3.6.1.4.1.311.2.1.25"
CATALOG_LIST = "1.3.6.1.4.1.311.12.1.1"
CATALOG_LIST_MEMBER = "1.3.6.1.4.1.311.12.1.2"


@dataclass(frozen=True)
class BuiltPackage:
    folder: Path
    sys: Path
    inf: Path
    cat: Path
    stamp: Path
    version: str


def compile_sys(out: Path, version: str, work: Path) -> Path:
    """The .sys: mingw-w64 C, import libraries from .def files by dlltool, the real .rc by windres."""
    gcc = require("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
    dlltool = require("x86_64-w64-mingw32-dlltool", "binutils-mingw-w64-x86-64")
    windres = require("x86_64-w64-mingw32-windres", "binutils-mingw-w64-x86-64")
    work.mkdir(parents=True, exist_ok=True)
    libraries = []
    for name, text in _DEF_FILES.items():
        (work / f"{name}.def").write_text(text, encoding="ascii")
        library = work / f"lib{name}.a"
        _run([dlltool, "-d", work / f"{name}.def", "-l", library])
        libraries.append(library)
    write_stamp_header(work / "LkdhStamp.h", version, DMF_COMMIT)
    resource = work / "version.o"
    _run([windres, "-DLKDH_STAMPED", "-I", work, "-I", DRIVER_SOURCE, DRIVER_SOURCE / "LkdhTestDriver.rc",
          "-O", "coff", "-o", resource])  # fmt: skip
    source = work / "driver.c"
    source.write_text(_SYS_SOURCE, encoding="ascii")
    _run([gcc, "-O2", "-nostdlib", "-ffreestanding", "-Wl,--subsystem,native", "-Wl,--entry,DriverEntry",
          "-o", out, source, resource, *libraries])  # fmt: skip
    return out


def write_stamp_header(path: Path, version: str, dmf_commit: str) -> None:
    """LkdhStamp.h exactly as driver/build.ps1 writes it."""
    major, minor, build, revision = version.split(".")
    path.write_text(
        f"#define LKDH_DRIVER_VERSION_MAJOR {major}\n#define LKDH_DRIVER_VERSION_MINOR {minor}\n"
        f"#define LKDH_DRIVER_VERSION_BUILD {build}\n#define LKDH_DRIVER_VERSION_REVISION {revision}\n"
        f'#define LKDH_DRIVER_VERSION_STRING "{version}"\n#define LKDH_DMF_COMMIT "{dmf_commit}"\n',
        encoding="ascii",
    )


def stamp_inf(out: Path, version: str, *, arch: str = "amd64", kmdf: str = "1.15") -> Path:
    """What stampinf -a amd64 -k 1.15 -v VERSION -d DATE does to the INF's placeholders."""
    text = (DRIVER_SOURCE / "LkdhTestDriver.inf").read_text(encoding="ascii")
    text = text.replace("$ARCH$", arch).replace("$KMDFVERSION$", kmdf)
    text = text.replace("DriverVer   =\n", f"DriverVer   = 12/01/2025,{version}\n")
    out.write_text(text, encoding="ascii")
    return out


def make_catalog(out: Path, files: list[Path]) -> Path:
    """An unsigned Inf2Cat-style catalog listing `files` (PE files by image hash, others flat)."""
    subjects = []
    for path in files:
        is_pe = path.read_bytes()[:2] == b"MZ"
        digest = A.pe_image_hash(path) if is_pe else A.flat_hash(path, "sha256")
        indirect = A._SpcIndirectDataContent(
            {
                "data": {"type": SPC_PE_IMAGE_DATA if is_pe else SPC_CAB_DATA},
                "message_digest": {"digest_algorithm": {"algorithm": "sha256"}, "digest": digest},
            }
        )
        name = A._CatNameValue(
            {"tag": "File", "flags": 0x10010001, "value": (path.name.lower() + "\x00").encode("utf-16-le")}
        )
        subjects.append(
            {
                "identifier": digest.hex().upper().encode("utf-16-le"),
                "attributes": [
                    {"type": A.OID_CAT_NAMEVALUE, "values": [core.Any.load(name.dump())]},
                    {"type": A.OID_SPC_INDIRECT_DATA, "values": [core.Any.load(indirect.dump())]},
                ],
            }
        )
    ctl = A.CertificateTrustList(
        {
            "subject_usage": [CATALOG_LIST],
            "list_identifier": hashlib.sha1(out.name.encode()).digest(),
            "this_update": {"utc_time": datetime.datetime.now(datetime.UTC).replace(microsecond=0)},
            "subject_algorithm": algos.DigestAlgorithm({"algorithm": CATALOG_LIST_MEMBER}),
            "trusted_subjects": subjects,
        }
    )
    signed_data = A._SignedData(
        {
            "version": 1,
            "digest_algorithms": [],
            "encap_content_info": A._EncapsulatedContent.load(_encapsulated_ctl(ctl.dump())),
            "signer_infos": [],
        }
    )
    info = A._ContentInfo({"content_type": A.OID_SIGNED_DATA, "content": signed_data})
    out.write_bytes(info.dump())
    return out


def _der(tag: int, body: bytes) -> bytes:
    """One DER tag-length-value (long-form lengths as X.690 8.1.3 says)."""
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _encapsulated_ctl(ctl: bytes) -> bytes:
    """PKCS#7 ContentInfo { szOID_CTL, [0] EXPLICIT ctl }: the content is not in an OCTET STRING."""
    return _der(0x30, core.ObjectIdentifier(A.OID_CTL).dump() + _der(0xA0, ctl))


def write_package_stamp(folder: Path, version: str, sys_path: Path, dmf_commit: str = DMF_COMMIT) -> Path:
    stamp = folder / "lkdh-package.json"
    document = {
        "format": 1,
        "driver_version": version,
        "dmf_commit": dmf_commit,
        "sys_sha256": hashlib.sha256(sys_path.read_bytes()).hexdigest(),
    }
    stamp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return stamp


def build_package(folder: Path, identity: SigningIdentity, *, version: str = "1.2.3.4") -> BuiltPackage:
    """A complete signed package in `folder` (LkdhTestDriver.{sys,inf,cat} + lkdh-package.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    work = folder.parent / f"{folder.name}-work"
    unsigned_sys = compile_sys(work / "unsigned.sys", version, work)
    sys_path = sign(unsigned_sys, identity, folder / "LkdhTestDriver.sys", "LkdhTestDriver")
    inf = stamp_inf(folder / "LkdhTestDriver.inf", version)
    unsigned_cat = make_catalog(work / "LkdhTestDriver.cat", [sys_path, inf])
    cat = sign(unsigned_cat, identity, folder / "LkdhTestDriver.cat", "LkdhTestDriver")
    stamp = write_package_stamp(folder, version, sys_path)
    return BuiltPackage(folder, sys_path, inf, cat, stamp, version)


def _run(command: list[str | Path]) -> None:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command[0]}: {result.stderr}"
