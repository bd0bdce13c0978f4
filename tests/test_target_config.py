"""Target config files: a complete example loads, every mistake is reported at file:line:col.

Files are real files in tmp_path, read by the same YAML reader the scenarios use.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import harness.target.windows.config as config_module
from harness.target.windows.config import (
    HyperVSettings,
    LibvirtSettings,
    NoHypervisorSettings,
    TargetConfig,
)
from harness.target_config import TargetConfigErrors, load_target_config, parse_target_config

EXAMPLE = """\
name: win11-lab
host: win11-lab.example.test
winrm:
  port: 5986
  scheme: https
  transport: ntlm
  username: lkdh-admin
  password: {env: LKDH_WINRM_PASSWORD}
  tls: {ca_bundle: certs/win11-lab.pem}
  operation_timeout: 20
  connect_timeout: 10
ssh:
  port: 22
  user: lkdh-admin
  key_file: ~/.ssh/lkdh_ed25519
  known_hosts: known_hosts
hypervisor:
  kind: hyperv
  host: hv01.example.test
  winrm:
    transport: kerberos
    username: LAB\\hv-operator
    password: {keyring: {service: lkdh, username: hv-operator}}
    tls: {pinned_thumbprint: "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01"}
  vm_name: Win11 Lab
  checkpoint: clean driver-ready
driver:
  package: ../driver/build/LkdhTestDriver
  certificate: ../driver/build/LkdhTest.cer
  hardware_id: Root\\LkdhTestDriver
  lkdctl: ../driver/build/lkdctl.exe
verifier: {enabled: true, flags: 0x209BB}
live_dumps: {report_type: LkdhTestDriver, minimum_spacing_seconds: 60}
non_admin_user: {username: lkdh-user, password: {env: LKDH_USER_PASSWORD}}
timeouts: {command: 120, boot: 600, transfer: 900}
"""

MINIMAL = """\
name: lab
host: 127.0.0.1
winrm:
  username: admin
  password: {env: LKDH_WINRM_PASSWORD}
driver:
  package: pkg
  hardware_id: Root\\LkdhTestDriver
  lkdctl: lkdctl.exe
"""


def _write(tmp_path: Path, text: str, name: str = "target.yaml") -> Path:
    folder = tmp_path / "vm"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(TargetConfigErrors) as caught:
        load_target_config(path)
    prefix = f"{path}:"
    lines = str(caught.value).splitlines()
    assert all(line.startswith(prefix) for line in lines), lines
    return [line.removeprefix(prefix) for line in lines]


def test_the_complete_example_loads_with_paths_from_the_config_folder(tmp_path: Path) -> None:
    path = _write(tmp_path, EXAMPLE)
    config = load_target_config(path)
    folder = path.parent
    assert config.name == "win11-lab"
    assert config.winrm.tls.ca_bundle == folder / "certs" / "win11-lab.pem"
    assert config.winrm.tls.mode == "ca_bundle"
    assert config.ssh is not None
    assert config.ssh.key_file == Path.home() / ".ssh" / "lkdh_ed25519"
    assert config.ssh.known_hosts == folder / "known_hosts"
    assert config.ssh_host == "win11-lab.example.test"  # defaults to the target's host
    assert config.driver.package == tmp_path / "driver" / "build" / "LkdhTestDriver"  # `..` folded
    assert config.driver.hardware_id == "Root\\LkdhTestDriver"
    assert config.verifier.flags == 0x209BB
    hypervisor = config.hypervisor
    assert isinstance(hypervisor, HyperVSettings)
    assert hypervisor.vm_name == "Win11 Lab"
    assert hypervisor.winrm.tls.pinned_thumbprint == "ABCDEF0123456789ABCDEF0123456789ABCDEF01"
    assert hypervisor.winrm.password is not None and hypervisor.winrm.password.keyring is not None


def test_the_example_in_the_config_module_docstring_is_valid(tmp_path: Path) -> None:
    """vm/example-target.yaml is written from that docstring: it must not drift from the models."""
    doc = config_module.__doc__ or ""
    block = doc.split("A complete example (vm/example-target.yaml is written from it)::\n\n", 1)[1]
    example = textwrap.dedent(block.split("\n\n", 1)[0])
    config = parse_target_config(example, tmp_path / "example-target.yaml")
    assert isinstance(config.hypervisor, LibvirtSettings)
    assert config.hypervisor.uri == "qemu:///system"


def test_defaults_of_a_minimal_config(tmp_path: Path) -> None:
    config = load_target_config(_write(tmp_path, MINIMAL))
    assert (config.winrm.port, config.winrm.scheme, config.winrm.transport) == (5986, "https", "ntlm")
    assert config.winrm.tls.mode == "system"  # verification on, system trust store
    assert isinstance(config.hypervisor, NoHypervisorSettings)
    assert config.ssh is None and config.ssh_host is None
    assert config.timeouts.command == 120
    assert config.verifier.flags == "standard"
    assert config.driver.lkdctl == tmp_path / "vm" / "lkdctl.exe"


def test_a_literal_password_is_refused_at_its_position_and_not_repeated(tmp_path: Path) -> None:
    text = MINIMAL.replace("password: {env: LKDH_WINRM_PASSWORD}", "password: Hunter2-Very-Secret")
    errors = _errors(tmp_path, text)
    assert len(errors) == 1
    assert errors[0].startswith("5:13: winrm.password: a secret is never written in the config file")
    assert "Hunter2" not in "\n".join(errors)


def test_a_password_mistaken_for_a_variable_name_is_not_shown(tmp_path: Path) -> None:
    text = MINIMAL.replace("{env: LKDH_WINRM_PASSWORD}", "{env: 'Hunter2 Very Secret'}")
    errors = _errors(tmp_path, text)
    assert errors == [
        "5:19: winrm.password.env: not an environment variable name (letters, digits and '_', at most 128)"
    ]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("{env: 31337}", "5:19: winrm.password.env: expected a string, found an integer (not shown"),
        ("[Hunter2]", "5:13: winrm.password: expected a mapping with keys env, keyring, found a list"),
        ("{keyring: Hunter2}", "5:23: winrm.password.keyring: expected a mapping with keys service"),
    ],
)
def test_a_misshapen_secret_reference_is_described_without_its_value(
    tmp_path: Path, written: str, expected: str
) -> None:
    errors = _errors(tmp_path, MINIMAL.replace("{env: LKDH_WINRM_PASSWORD}", written))
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    assert "31337" not in errors[0] and "Hunter2" not in errors[0]


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    errors = _errors(tmp_path, MINIMAL.replace("  username: admin", "  usename: admin"))
    assert len(errors) == 1
    assert errors[0].startswith(
        "4:3: winrm.usename: unknown key 'usename' in winrm (did you mean 'username'?)"
    )
    assert "allowed keys: port, scheme, transport, username" in errors[0]


def test_missing_required_sections_are_named(tmp_path: Path) -> None:
    text = "name: lab\nhost: lab.example.test\nwinrm: {username: a, password: {env: P}}\n"
    assert _errors(tmp_path, text) == ["1:1: the target config: missing required key 'driver'"]


@pytest.mark.parametrize(
    ("winrm", "message"),
    [
        ("{scheme: http, username: a, password: {env: P}}", "set allow_insecure_http: true"),
        (
            "{scheme: http, allow_insecure_http: true, transport: basic, username: a, password: {env: P}}",
            "transport basic over http would expose credentials",
        ),
        ("{transport: certificate}", "transport certificate needs client_cert and client_key"),
        ("{username: a}", "transport ntlm needs username and password"),
        (
            "{username: a, password: {env: P}, tls: {insecure_skip_verify: true}}",
            "insecure_skip_verify lets anyone on the network pose as the VM",
        ),
        (
            "{username: a, password: {env: P}, tls: {ca_bundle: ca.pem, pinned_thumbprint: "
            + "A" * 40
            + "}}",
            "give at most one of ca_bundle, pinned_thumbprint and insecure_skip_verify",
        ),
        ("{username: a, password: {env: P}, tls: {pinned_thumbprint: ABC}}", "40 (SHA-1) or 64 (SHA-256)"),
        (
            "{username: a, password: {env: P}, port: 70000}",
            "expected an integer (1..0xFFFF), found integer 70000",
        ),
        ("{username: a, password: {env: P}, transport: digest}", "expected one of 'ntlm', 'kerberos'"),
    ],
)
def test_unsafe_or_inconsistent_winrm_settings_are_refused(tmp_path: Path, winrm: str, message: str) -> None:
    text = MINIMAL.replace(
        "winrm:\n  username: admin\n  password: {env: LKDH_WINRM_PASSWORD}\n", f"winrm: {winrm}\n"
    )
    errors = _errors(tmp_path, text)
    assert len(errors) == 1, errors
    assert errors[0].startswith("3:"), errors  # on the winrm line
    assert message in errors[0]


def test_plain_http_and_no_verification_are_allowed_when_asked_for_loudly(tmp_path: Path) -> None:
    http = "{scheme: http, port: 5985, allow_insecure_http: true, username: a, password: {env: P}}"
    insecure = (
        "{username: a, password: {env: P},"
        " tls: {insecure_skip_verify: true, i_accept_that_credentials_can_be_stolen: true}}"
    )
    for winrm, expected_mode in ((http, "system"), (insecure, "insecure")):
        text = MINIMAL.replace(
            "winrm:\n  username: admin\n  password: {env: LKDH_WINRM_PASSWORD}\n", f"winrm: {winrm}\n"
        )
        config = load_target_config(_write(tmp_path, text))
        assert config.winrm.tls.mode == expected_mode


LIBVIRT = """\
hypervisor:
  kind: libvirt
  ssh: {host: kvm.example.test, user: lkdh, key_file: id}
  domain: {domain}
  snapshot: clean
"""


@pytest.mark.parametrize("name", ["'win11; reboot'", "'$(id)'", "'a b'", "'-rf'", "'`x`'", '"a\'b"'])
def test_names_that_reach_remote_commands_are_checked(tmp_path: Path, name: str) -> None:
    errors = _errors(tmp_path, MINIMAL + LIBVIRT.replace("{domain}", name))
    assert len(errors) == 1
    assert errors[0].startswith("13:11: hypervisor.domain: ")
    assert "is not a libvirt name: letters, digits" in errors[0]


def test_hyperv_names_may_hold_inner_spaces_but_no_shell_characters(tmp_path: Path) -> None:
    hyperv = (
        "hypervisor: {kind: hyperv, host: hv.example.test, vm_name: 'Win11 Lab; Stop-Computer',"
        " checkpoint: ok, winrm: {username: a, password: {env: P}}}\n"
    )
    errors = _errors(tmp_path, MINIMAL + hyperv)
    assert (
        len(errors) == 1
        and "hypervisor.vm_name: 'Win11 Lab; Stop-Computer' is not a Hyper-V name" in errors[0]
    )


def test_an_unknown_hypervisor_kind_points_at_kind(tmp_path: Path) -> None:
    errors = _errors(tmp_path, MINIMAL + "hypervisor:\n  kind: vmware\n")
    assert errors == ["11:9: hypervisor.kind: `kind` must be one of hyperv, libvirt, qemu, none"]


def test_libvirt_ssh_host_is_required(tmp_path: Path) -> None:
    text = MINIMAL + LIBVIRT.replace("{domain}", "win11").replace("host: kvm.example.test, ", "")
    assert _errors(tmp_path, text) == ["12:8: hypervisor.ssh: missing required key 'host'"]


def test_a_wrong_verifier_flags_value_lists_both_forms(tmp_path: Path) -> None:
    errors = _errors(tmp_path, MINIMAL + "verifier: {flags: fast}\n")
    assert errors == [
        "10:19: verifier.flags: expected one of: 'standard'; an integer (0..0xFFFFFFFF); found string 'fast'"
    ]


def test_several_mistakes_are_all_reported_in_file_order(tmp_path: Path) -> None:
    text = MINIMAL.replace("host: 127.0.0.1", "host: 'http://lab'") + "timeouts: {boot: -1, command: 'ten'}\n"
    errors = _errors(tmp_path, text)
    assert [e.split(":")[0] for e in errors] == ["2", "10", "10"]
    assert "'http://lab' is not a host name or an IP address" in errors[0]
    assert any("timeouts.boot" in e for e in errors) and any("timeouts.command" in e for e in errors)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: a\nname: b\n", r"^2:1: name: duplicate key 'name' \(first written at line 1, column 1\)$"),
        ("name: [a\n", r"^\d+:\d+: YAML syntax: "),
        ("- a\n- b\n", r"^1:1: a target config is a mapping with keys name, host, winrm, ...; found a list"),
        ("", r"^1:1: a target config is one YAML mapping; found no YAML document$"),
        (MINIMAL + "---\n" + MINIMAL, r"^11:1: a target config is one YAML mapping; found 2 YAML documents$"),
    ],
)
def test_file_level_problems(tmp_path: Path, text: str, expected: str) -> None:
    errors = _errors(tmp_path, text)
    assert any(re.match(expected, error) for error in errors), errors


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(TargetConfigErrors) as caught:
        load_target_config(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}:1:1: no such file"


def test_models_refuse_unknown_keys_and_are_frozen_without_yaml() -> None:
    """target/ knows nothing of YAML: the models work on plain data too."""
    data = {
        "name": "lab",
        "host": "::1",
        "winrm": {"username": "a", "password": {"env": "P"}},
        "driver": {"package": "p", "hardware_id": "Root\\X", "lkdctl": "l"},
    }
    config = TargetConfig.model_validate(data)
    assert config.driver.package == Path("p")  # no file, no base folder: left relative
    with pytest.raises(ValueError, match="frozen"):
        config.name = "other"  # type: ignore[misc]


def test_shipped_example_target_config_validates() -> None:
    """vm/example-target.yaml is what users copy: it must load as it stands."""
    example = Path(__file__).resolve().parents[1] / "vm" / "example-target.yaml"
    config = load_target_config(example)
    assert config.winrm.tls.mode == "pinned" and config.hypervisor.kind == "libvirt"
    assert config.non_admin_user is not None
