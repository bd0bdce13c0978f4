"""The package preflight against packages built here for real (tests/driver_package.py: mingw-w64,
windres, osslsigncode) and broken copies of them: wrong machine, unsigned, tampered, unstamped, an
INF whose OS floor is below the kernel API the .sys imports, a catalog that does not cover a file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from driver_package import (
    DMF_COMMIT,
    DRIVER_SOURCE,
    BuiltPackage,
    build_package,
    compile_sys,
    make_catalog,
    stamp_inf,
)
from signing import SigningIdentity, make_identity, osslsigncode, sign

from harness.target.windows import authenticode
from harness.target.windows.inf_file import InfError, read_inf
from harness.target.windows.package_check import PackageError, check_package


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    return make_identity(tmp_path_factory.mktemp("identity"), "lkdh-package-test")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, identity: SigningIdentity) -> BuiltPackage:
    return build_package(tmp_path_factory.mktemp("package") / "LkdhTestDriver", identity)


@pytest.fixture
def package(built: BuiltPackage, tmp_path: Path) -> Path:
    """A private copy of the good package that a test may break."""
    return Path(shutil.copytree(built.folder, tmp_path / "LkdhTestDriver"))


def refused(folder: Path, identity: SigningIdentity, architecture: str = "amd64") -> PackageError:
    with pytest.raises(PackageError) as caught:
        check_package(folder, architecture=architecture, trusted=identity.cer)
    return caught.value


def test_a_good_package_passes_and_names_its_version_commit_and_hash(
    package: Path, identity: SigningIdentity
) -> None:
    facts = check_package(package, architecture="amd64", trusted=identity.cer)
    assert (facts.driver_version, facts.dmf_commit) == ("1.2.3.4", DMF_COMMIT)
    assert facts.sys.name == "LkdhTestDriver.sys" and facts.catalog.name == "LkdhTestDriver.cat"
    assert facts.os_build_floor == 19041
    assert len(facts.sys_sha256) == 64


def test_the_image_hash_is_the_digest_osslsigncode_computes(built: BuiltPackage) -> None:
    verify = osslsigncode("verify", "-in", built.sys)
    calculated = re.search(r"Calculated message digest\s*:\s*([0-9A-F]+)", verify.stdout)
    assert calculated, verify.stdout
    assert authenticode.pe_image_hash(built.sys).hex().upper() == calculated[1]


def test_a_package_for_another_machine_is_refused(package: Path, identity: SigningIdentity) -> None:
    error = refused(package, identity, architecture="arm64")
    assert error.file == "LkdhTestDriver.inf"
    assert "NTarm64" in error.reason, "the INF has no arm64 models section"
    inf = package / "LkdhTestDriver.inf"
    inf.write_text(inf.read_text().replace("NTamd64", "NTarm64"), encoding="ascii")
    error = refused(package, identity, architecture="arm64")
    assert error.file == "LkdhTestDriver.sys" and "built for IMAGE_FILE_MACHINE_AMD64" in error.reason


def test_an_unsigned_sys_is_refused(
    package: Path, identity: SigningIdentity, built: BuiltPackage, tmp_path: Path
) -> None:
    unsigned = compile_sys(package / "LkdhTestDriver.sys", "1.2.3.4", tmp_path / "work")
    make_catalog(tmp_path / "LkdhTestDriver.cat", [unsigned, package / "LkdhTestDriver.inf"])
    (package / "LkdhTestDriver.cat").unlink()
    sign(tmp_path / "LkdhTestDriver.cat", identity, package / "LkdhTestDriver.cat")
    _restamp(package)
    error = refused(package, identity)
    assert (error.file, error.reason) == ("LkdhTestDriver.sys", "is not signed")


def test_a_tampered_sys_is_refused_by_its_signature(package: Path, identity: SigningIdentity) -> None:
    sys_path = package / "LkdhTestDriver.sys"
    data = bytearray(sys_path.read_bytes())
    data[0x400] ^= 0x01  # a byte of the first section
    sys_path.write_bytes(bytes(data))
    _restamp(package)
    error = refused(package, identity)
    assert error.file == "LkdhTestDriver.sys" and "signature does not verify" in error.reason


def test_an_inf_changed_after_the_catalog_is_not_covered(package: Path, identity: SigningIdentity) -> None:
    inf = package / "LkdhTestDriver.inf"
    inf.write_text(inf.read_text().replace('"lkdh"', '"lkdh (edited)"'), encoding="ascii")
    error = refused(package, identity)
    assert error.file == "LkdhTestDriver.inf" and "not covered by LkdhTestDriver.cat" in error.reason


def test_a_signature_by_another_certificate_is_refused(package: Path, tmp_path: Path) -> None:
    stranger = make_identity(tmp_path / "stranger", "not-the-test-certificate")
    error = refused(package, stranger)
    assert error.file == "LkdhTestDriver.sys" and "signature does not verify" in error.reason


def test_an_unstamped_or_inconsistent_version_is_refused(package: Path, identity: SigningIdentity) -> None:
    stamp = package / "lkdh-package.json"
    good = stamp.read_text()
    stamp.write_text(good.replace("1.2.3.4", "0.0.0.0"))
    assert "not stamped" in refused(package, identity).reason
    stamp.write_text(good.replace("1.2.3.4", "1.2.3.5"))
    assert "version resource says 1.2.3.4" in refused(package, identity).reason
    stamp.unlink()
    assert refused(package, identity).file == "lkdh-package.json"


def test_the_shipped_inf_floor_matches_the_api_floor_of_the_driver(
    package: Path, identity: SigningIdentity
) -> None:
    """ExAllocatePool2 exists from build 19041: an INF decorated ...16299 lets the package install on
    a Windows where the driver cannot load. The shipped INF must say 19041."""
    inf = package / "LkdhTestDriver.inf"
    inf.write_text(inf.read_text().replace("10.0...19041", "10.0...16299"), encoding="ascii")
    error = refused(package, identity)
    assert error.file == "LkdhTestDriver.inf" and "ExAllocatePool2" in error.reason
    shipped = read_inf(DRIVER_SOURCE / "LkdhTestDriver.inf")
    (manufacturer,) = shipped.section("Manufacturer")
    assert manufacturer.values[1:] == ("NT$ARCH$.10.0...19041",)


def test_inf_reader_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.inf"
    bad.write_text('[Version]\nSignature = "$WINDOWS NT$"\nProvider = %Missing%\n', encoding="ascii")
    with pytest.raises(InfError, match=r"bad\.inf:3: %Missing% is not defined"):
        read_inf(bad)
    bad.write_text("Signature = x\n[Version]\n", encoding="ascii")
    with pytest.raises(InfError, match=r"bad\.inf:1: text before the first"):
        read_inf(bad)


def test_a_stamped_inf_reads_as_stampinf_left_it(tmp_path: Path) -> None:
    inf = read_inf(stamp_inf(tmp_path / "x.inf", "2.0.1.7"))
    driver_ver = inf.value("version", "driverver")
    assert driver_ver is not None and driver_ver.values == ("12/01/2025", "2.0.1.7")
    assert inf.value("Strings", "ProviderName") is not None
    assert [entry.values for entry in inf.section("Lkdh.NTamd64.10.0...19041")] == [
        ("LkdhTestDriver_Device", "Root\\LkdhTestDriver")
    ]


def _restamp(package: Path) -> None:
    """Keep lkdh-package.json's hash in step with a replaced .sys, so the check under test is reached."""
    import hashlib
    import json

    stamp = package / "lkdh-package.json"
    document = json.loads(stamp.read_text())
    document["sys_sha256"] = hashlib.sha256((package / "LkdhTestDriver.sys").read_bytes()).hexdigest()
    stamp.write_text(json.dumps(document))
