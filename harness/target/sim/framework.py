"""The DMF framework's own data, which it stores in the module's ring once all modules exist (F16).

For the test driver the module tree is DMF_LiveKernelDump with its child DMF_RingBuffer. The
framework stores, in this order: the module-collection structure, the array of client module
handles, then per module (children first) the DMF object, its config, its instance name and its
context. Sizes are those of the x64 structures in DMF bfac434 where the source gives them [SRC],
plausible otherwise [INF]; the bytes carry recognisable markers so a reader of the dump can tell
framework data from client data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from harness.target.sim.memory import KernelMemory

COLLECTION_STRUCTURE_SIZE = 0x60
DMF_OBJECT_SIZE = 0x1C8
MODULE_TREE = (
    # (module name, config size, context size): children first, as the framework walks them.
    ("DMF_RingBuffer", 0x18, 0x50),
    ("DMF_LiveKernelDump", 0x48, 0x40),
)


@dataclass(frozen=True)
class FrameworkBlock:
    """One piece of framework data stored in the ring."""

    what: str
    address: int
    size: int


@dataclass(frozen=True)
class FrameworkData:
    """Where the framework's structures live on this boot, and the collection handle (P2, F02)."""

    collection_handle: int
    blocks: tuple[FrameworkBlock, ...]


def build_framework_data(memory: KernelMemory) -> FrameworkData:
    """Allocate the framework's structures in non-paged pool and list them in storing order."""
    blocks: list[FrameworkBlock] = []

    def put(what: str, data: bytes) -> int:
        address = memory.allocate(len(data), "NonPagedPoolNx", data, tag="DMFc")
        blocks.append(FrameworkBlock(what, address, len(data)))
        return address

    collection = put("DMF module collection", _marked(b"DMFCOLLN", COLLECTION_STRUCTURE_SIZE))
    module_handles: list[int] = []
    module_blocks: list[tuple[str, bytes]] = []
    for name, config_size, context_size in MODULE_TREE:
        module_blocks += [
            (f"{name} object", _marked(b"DMFOBJCT" + name.encode(), DMF_OBJECT_SIZE)),
            (f"{name} config", _marked(b"DMFCONFG", config_size)),
            (f"{name} instance name", (name + "\0").encode("ascii")),
            (f"{name} context", _marked(b"DMFCNTXT", context_size)),
        ]
    handles_address = memory.allocate(8 * len(MODULE_TREE), "NonPagedPoolNx", b"\0", tag="DMFc")
    blocks.append(FrameworkBlock("client module handles", handles_address, 8 * len(MODULE_TREE)))
    for what, data in module_blocks:
        address = put(what, data)
        if what.endswith(" object"):
            module_handles.append(address)
    memory.write(handles_address, struct.pack(f"<{len(module_handles)}Q", *module_handles))
    return FrameworkData(collection_handle=collection, blocks=tuple(blocks))


def _marked(marker: bytes, size: int) -> bytes:
    """`size` bytes starting with `marker`, the rest a repeating counter (never all zeros)."""
    body = bytes((i * 7 + 3) & 0xFF for i in range(max(size - len(marker), 0)))
    return (marker + body)[:size]
