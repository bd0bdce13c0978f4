"""Throwaway code-signing identities and osslsigncode, for tests that sign what they build.

A self-signed certificate with the codeSigning EKU stands in for the WDK's test certificate
(WDKTestCert); osslsigncode (Debian package osslsigncode) signs PE files and catalogs with it the
way SignTool does (`/fd sha256`).
"""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from required_tools import require_tool


def require(tool: str, package: str) -> str:
    """The tool's path; a missing one skips, or fails under CI=true (required_tools.py)."""
    return require_tool(tool, install=f"Debian: apt-get install {package}")


@dataclass(frozen=True)
class SigningIdentity:
    certificate: Path
    key: Path

    @property
    def cer(self) -> Path:
        """The certificate in DER, as Windows exports a .cer (what the target config names)."""
        der = self.certificate.with_suffix(".cer")
        if not der.exists():
            pem = x509.load_pem_x509_certificate(self.certificate.read_bytes())
            der.write_bytes(pem.public_bytes(serialization.Encoding.DER))
        return der


def make_identity(folder: Path, common_name: str) -> SigningIdentity:
    """A throwaway self-signed code-signing certificate (EKU codeSigning) and its key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    identity = SigningIdentity(folder / f"{common_name}.crt.pem", folder / f"{common_name}.key.pem")
    identity.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    identity.key.touch(mode=0o600)
    identity.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return identity


def osslsigncode(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    tool = require("osslsigncode", "osslsigncode")
    command = [tool, *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def sign(unsigned: Path, identity: SigningIdentity, signed: Path, description: str = "lkdctl") -> Path:
    """Sign a PE file or a catalog with SHA-256, as `signtool sign /fd sha256` does."""
    result = osslsigncode(
        "sign", "-certs", identity.certificate, "-key", identity.key, "-h", "sha256", "-n", description,
        "-in", unsigned, "-out", signed,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return signed
