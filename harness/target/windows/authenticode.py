"""Authenticode, as far as a package preflight needs it: the PE image hash, the members of a
catalog (.cat), and signature verification by osslsigncode.

- The PE image hash (Microsoft "Windows Authenticode Portable Executable Signature Format"): the
  file hashed without the optional header's CheckSum, without the security directory entry, and
  without the attribute certificate table itself. Written by hand (a few lines over pefile's
  offsets) because signify, the library that does it, fails to import here; tests compare it with
  the digest osslsigncode computes for the same file.
- A catalog is a PKCS#7 SignedData whose content is a certificate trust list (szOID_CTL
  1.3.6.1.4.1.311.10.1); each member carries an SPC_INDIRECT_DATA attribute holding the digest of
  one file (the PE image hash for PE files, a flat hash for others such as the INF) and a "File"
  name/value attribute. asn1crypto reads the DER; the CTL's own shape is declared here.
- Signatures are verified by the `osslsigncode verify` command (Debian package osslsigncode),
  with the trust anchors the caller names (the test certificate), never a network lookup.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pefile
from asn1crypto import algos, cms, core
from asn1crypto.x509 import Time as Asn1Time
from cryptography import x509
from cryptography.hazmat.primitives import serialization

OID_CTL = "1.3.6.1.4.1.311.10.1"
OID_SPC_INDIRECT_DATA = "1.3.6.1.4.1.311.2.1.4"
OID_CAT_NAMEVALUE = "1.3.6.1.4.1.311.12.2.1"
OSSLSIGNCODE_SECONDS = 60.0


class CatalogError(ValueError):
    """A catalog that is not the PKCS#7 certificate trust list Inf2Cat writes."""


def pe_image_hash(path: Path, algorithm: str = "sha256") -> bytes:
    """The Authenticode digest of a PE file (pefile.PEFormatError if it is no PE)."""
    data = path.read_bytes()
    pe = pefile.PE(data=data, fast_load=True)
    try:
        checksum = pe.OPTIONAL_HEADER.get_field_absolute_offset("CheckSum")
        security = pe.OPTIONAL_HEADER.DATA_DIRECTORY[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]]
        security_entry = security.get_file_offset()
        table_start, table_size = security.VirtualAddress, security.Size  # a file offset, for this entry
    finally:
        pe.close()
    end = table_start if table_size else len(data)
    digest = hashlib.new(algorithm)
    digest.update(data[:checksum])
    digest.update(data[checksum + 4 : security_entry])
    digest.update(data[security_entry + 8 : end])
    if table_size:
        digest.update(data[table_start + table_size :])
    return digest.digest()


def flat_hash(path: Path, algorithm: str) -> bytes:
    return hashlib.new(algorithm, path.read_bytes()).digest()


# -- the certificate trust list inside a catalog ---------------------------------------------------
class _SpcAttributeTypeAndOptionalValue(core.Sequence):
    _fields: ClassVar[list[Any]] = [("type", core.ObjectIdentifier), ("value", core.Any, {"optional": True})]


class _SpcIndirectDataContent(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("data", _SpcAttributeTypeAndOptionalValue),
        ("message_digest", algos.DigestInfo),
    ]


class _CatNameValue(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("tag", core.BMPString),
        ("flags", core.Integer),
        ("value", core.OctetString),
    ]


class _SubjectAttribute(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("type", core.ObjectIdentifier),
        ("values", core.SetOf, {"spec": core.Any}),
    ]


class _SubjectAttributes(core.SetOf):
    _child_spec = _SubjectAttribute


class _TrustedSubject(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("identifier", core.OctetString),
        ("attributes", _SubjectAttributes, {"optional": True}),
    ]


class _TrustedSubjects(core.SequenceOf):
    _child_spec = _TrustedSubject


class _SubjectUsage(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


class CertificateTrustList(core.Sequence):
    """szOID_CTL content (wincrypt.h CTL_INFO), as makecat and Inf2Cat write it."""

    _fields: ClassVar[list[Any]] = [
        ("subject_usage", _SubjectUsage),
        ("list_identifier", core.OctetString, {"optional": True}),
        ("sequence_number", core.Integer, {"optional": True}),
        ("this_update", Asn1Time),
        ("next_update", Asn1Time, {"optional": True}),
        ("subject_algorithm", algos.DigestAlgorithm),
        ("trusted_subjects", _TrustedSubjects, {"optional": True}),
        ("extensions", core.Any, {"explicit": 0, "optional": True}),
    ]


@dataclass(frozen=True)
class CatalogMember:
    """One file a catalog vouches for: its digest and algorithm, and the file name if it says one."""

    digest: bytes
    algorithm: str
    file_name: str | None


class _EncapsulatedContent(core.Sequence):
    """PKCS#7's ContentInfo inside SignedData: the content is ANY (CMS wraps it in an OCTET STRING)."""

    _fields: ClassVar[list[Any]] = [
        ("content_type", core.ObjectIdentifier),
        ("content", core.Any, {"explicit": 0, "optional": True}),
    ]


class _SignedData(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("version", core.Integer),
        ("digest_algorithms", cms.DigestAlgorithms),
        ("encap_content_info", _EncapsulatedContent),
        ("certificates", cms.CertificateSet, {"implicit": 0, "optional": True}),
        ("crls", cms.RevocationInfoChoices, {"implicit": 1, "optional": True}),
        ("signer_infos", cms.SignerInfos),
    ]


class _ContentInfo(core.Sequence):
    _fields: ClassVar[list[Any]] = [
        ("content_type", core.ObjectIdentifier),
        ("content", _SignedData, {"explicit": 0}),
    ]


OID_SIGNED_DATA = "1.2.840.113549.1.7.2"


def _tlv_body(der: bytes) -> bytes:
    """The value of one DER tag-length-value (X.690 8.1.3 lengths)."""
    first = der[1]
    if first < 0x80:
        return der[2 : 2 + first]
    count = first & 0x7F
    length = int.from_bytes(der[2 : 2 + count], "big")
    return der[2 + count : 2 + count + length]


def catalog_members(path: Path) -> list[CatalogMember]:
    """The members of a .cat file; CatalogError says what is wrong with it."""
    try:
        info = _ContentInfo.load(path.read_bytes(), strict=True)
        if info["content_type"].dotted != OID_SIGNED_DATA:
            raise CatalogError(f"{path.name} is PKCS#7 {info['content_type'].dotted}, not signed data")
        encap = info["content"]["encap_content_info"]
        if encap["content_type"].dotted != OID_CTL:
            raise CatalogError(
                f"{path.name} holds {encap['content_type'].dotted}, not a certificate trust list"
            )
        raw = encap["content"].dump()
        if raw[:1] == b"\xa0":  # the [0] EXPLICIT wrapper itself
            raw = _tlv_body(raw)
        if raw[:1] == b"\x04":  # CMS style: the CTL inside an OCTET STRING
            raw = core.OctetString.load(raw).native
        ctl = CertificateTrustList.load(raw)
        members = [_member(subject) for subject in ctl["trusted_subjects"] or []]
    except CatalogError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise CatalogError(f"{path.name} is not a readable catalog: {error}") from None
    return [member for member in members if member is not None]


def _member(subject: _TrustedSubject) -> CatalogMember | None:
    digest, algorithm, name = None, "", None
    for attribute in subject["attributes"] or []:
        kind = attribute["type"].dotted
        for value in attribute["values"]:
            if kind == OID_SPC_INDIRECT_DATA:
                indirect = _SpcIndirectDataContent.load(value.dump())
                digest = indirect["message_digest"]["digest"].native
                algorithm = indirect["message_digest"]["digest_algorithm"]["algorithm"].native
            elif kind == OID_CAT_NAMEVALUE:
                pair = _CatNameValue.load(value.dump())
                if pair["tag"].native.lower() == "file":
                    name = pair["value"].native.decode("utf-16-le").rstrip("\x00")
    return None if digest is None else CatalogMember(digest, algorithm, name)


# -- signatures ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    signed: bool
    detail: str


def verify_signature(path: Path, trusted: Path | None) -> SignatureCheck:
    """`osslsigncode verify` of an embedded (.sys) or catalog (.cat) signature, trusting `trusted`
    (a PEM/DER certificate) when given, else the system store. `signed` False: no signature at all."""
    tool = shutil.which("osslsigncode")
    if tool is None:
        raise FileNotFoundError(
            "osslsigncode is needed to check package signatures (apt-get install osslsigncode)"
        )
    command = [tool, "verify", "-in", str(path)]
    if trusted is not None:
        command += ["-CAfile", str(_pem(trusted))]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=OSSLSIGNCODE_SECONDS, check=False
    )
    text = (result.stdout + result.stderr).strip()
    unsigned = any(
        marker in text for marker in ("No signature found", "Unable to extract existing signature")
    )
    if result.returncode == 0:
        return SignatureCheck(True, True, "signature verified")
    reason = next(
        (line.strip() for line in text.splitlines() if "failed" in line.lower() or "error" in line.lower()),
        text.splitlines()[-1] if text else f"exit code {result.returncode}",
    )
    return SignatureCheck(False, not unsigned, "no signature" if unsigned else reason)


def _pem(certificate: Path) -> Path:
    """osslsigncode's -CAfile wants PEM; a .cer (DER, as Windows exports it) is converted to a
    temporary PEM file that lives as long as this process."""
    data = certificate.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return certificate
    pem = x509.load_der_x509_certificate(data).public_bytes(serialization.Encoding.PEM)
    handle = tempfile.NamedTemporaryFile(prefix="lkdh-trust-", suffix=".pem", delete=False)  # noqa: SIM115
    with handle:
        handle.write(pem)
    atexit.register(Path(handle.name).unlink, missing_ok=True)
    return Path(handle.name)
