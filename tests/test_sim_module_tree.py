"""The simulator's module tree (harness/target/sim/module_tree.py) is the one driver/LkdhTestDriver
really instantiates (DMF_FACTS.md F35): read from the C source by its module-instantiation calls,
not by line numbers, so edits that keep the tree (logging, comments, moved functions) still pass
and a driver that adds, drops or renames a module fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.target.sim.driver_image import TEST_DRIVER
from harness.target.sim.module_tree import TEST_DRIVER_CLIENT_MODULES, ClientModule

DRIVER = Path(__file__).resolve().parents[1] / "driver" / "LkdhTestDriver"


def _strip_comments(source: str) -> str:
    return re.sub(r"/\*.*?\*/|//[^\n]*", " ", source, flags=re.S)


def _function_body(source: str, name: str) -> str | None:
    """The brace-balanced body of the C function `name` (its definition, not a declaration)."""
    for match in re.finditer(rf"\b{re.escape(name)}\s*\([^;{{]*\)\s*\{{", source):
        depth, start = 1, match.end()
        for index in range(start, len(source)):
            depth += {"{": 1, "}": -1}.get(source[index], 0)
            if depth == 0:
                return source[start:index]
    return None


def client_modules_in_source(sources: dict[str, str]) -> tuple[list[ClientModule], bool]:
    """(modules added by the EvtDmfDeviceModulesAdd callback, whether the LiveKernelDump feature is
    configured), read from the driver's C files."""
    text = {name: _strip_comments(body) for name, body in sources.items()}
    everything = "\n".join(text.values())
    feature = "DMF_DmfDeviceInitSetLiveKernelDumpConfig(" in everything
    callback = re.search(r"EvtDmfDeviceModulesAdd\s*=\s*(\w+)\s*;", everything)
    if callback is None:
        return [], feature
    body = next((b for b in (_function_body(t, callback.group(1)) for t in text.values()) if b), "")
    modules: list[ClientModule] = []
    kind, name = None, ""
    pattern = r"DMF_CONFIG_(\w+?)_AND_ATTRIBUTES_INIT\s*\(|DMF_(\w+?)_ATTRIBUTES_INIT\s*\(|"
    pattern += r"ClientModuleInstanceName\s*=\s*\"([^\"]*)\"|DMF_DmfModuleAdd\s*\("
    for call in re.finditer(pattern, body):
        if call.group(1) or call.group(2):
            kind, name = f"DMF_{call.group(1) or call.group(2)}", ""
        elif call.group(3) is not None:
            name = call.group(3)
        elif kind is not None:
            modules.append(ClientModule(kind, name or kind.removeprefix("DMF_")))
    return modules, feature


def driver_sources() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(DRIVER.glob("*.c"))}


def test_f35_the_simulated_tree_is_the_one_the_driver_source_instantiates() -> None:
    """F35: the client modules and the LiveKernelDump feature in the simulator match Driver.c."""
    modules, feature = client_modules_in_source(driver_sources())
    assert feature, "the driver no longer configures the LiveKernelDump feature"
    assert modules == list(TEST_DRIVER_CLIENT_MODULES)


def test_f35_the_image_name_is_the_infs() -> None:
    """F33/F35: the image the simulated dumps list is the one the INF installs."""
    inf = (DRIVER / "LkdhTestDriver.inf").read_text(encoding="utf-8")
    (binary,) = set(re.findall(r"ServiceBinary\s*=\s*%13%\\(\S+)", inf))
    assert binary == TEST_DRIVER.file_name


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # a second client module: the simulator would be missing four ring entries
        (
            lambda s: s.replace(
                "DMF_DmfModuleAdd(DmfModuleInit, &moduleAttributes, WDF_NO_OBJECT_ATTRIBUTES, NULL);",
                "DMF_DmfModuleAdd(DmfModuleInit, &moduleAttributes, WDF_NO_OBJECT_ATTRIBUTES, NULL);\n"
                "    DMF_CONFIG_RingBuffer_AND_ATTRIBUTES_INIT(&ringConfig, &moduleAttributes);\n"
                "    DMF_DmfModuleAdd(DmfModuleInit, &moduleAttributes, WDF_NO_OBJECT_ATTRIBUTES, NULL);",
            ),
            [ClientModule("DMF_IoctlHandler", "LkdhControl"), ClientModule("DMF_RingBuffer", "RingBuffer")],
        ),
        # a renamed instance changes the name block's bytes and size
        (lambda s: s.replace('"LkdhControl"', '"Control"'), [ClientModule("DMF_IoctlHandler", "Control")]),
        # comments and logging do not change the tree
        (
            lambda s: s.replace(
                "PAGED_CODE();", "PAGED_CODE(); /* DMF_DmfModuleAdd( */ // DMF_DmfModuleAdd("
            ),
            None,
        ),
    ],
)
def test_the_source_check_sees_a_changed_tree(edit, expected) -> None:  # type: ignore[no-untyped-def]
    """The parser is not a stub: a changed tree is seen, a comment is not."""
    sources = driver_sources()
    sources["Driver.c"] = edit(sources["Driver.c"])
    modules, _ = client_modules_in_source(sources)
    assert modules == (expected if expected is not None else list(TEST_DRIVER_CLIENT_MODULES))
    if expected is not None:
        assert modules != list(TEST_DRIVER_CLIENT_MODULES)
