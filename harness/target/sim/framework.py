"""The DMF framework's own data for the test driver, laid out in kernel memory and listed in the
order the framework stores it in the module's ring (DMF_FACTS.md F16, F32, F35).

The tree comes from `module_tree` (the one description checked against the driver source); the
bytes follow `harness.dump.dmf_layout`, so a dump's DMF data decodes as DMF's debugger extension
would read it: the DMF_MODULE_COLLECTION whose first field is the WDFMEMORY handle Create puts in P2
(F32), its array of top-level DMF_OBJECT pointers, and per module the DMF_OBJECT (pointing at its
config, context and instance name), the config, the NUL-terminated instance name and the context.

Where KMDF puts an object's buffer relative to its handle is [INF]: a WDFMEMORY's buffer follows
its FxMemoryBuffer object header (`FX_MEMORY_OBJECT_HEADER` bytes here), so the handle decodes to an
address just below the buffer, never to the buffer itself. Config and context bodies are a
recognisable counter pattern apart from the fields DMF's own code would have set [INF].
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass

from harness.dump import dmf_layout as D
from harness.target.sim.memory import KernelMemory
from harness.target.sim.module_tree import (
    DMF_OBJECT_SIZE,
    ModuleInstance,
    dmf_data_entries,
)

FX_MEMORY_OBJECT_HEADER = 0x70
"""[INF] Bytes of KMDF's FxMemoryBuffer object ahead of a small WDFMEMORY's buffer."""

POOL = "NonPagedPoolNx"


@dataclass(frozen=True)
class FrameworkBlock:
    """One piece of framework data stored in the ring."""

    what: str
    address: int
    size: int


@dataclass(frozen=True)
class FrameworkData:
    """Where the framework's structures live on this boot, and the DmfCollection handle (P2)."""

    collection_handle: int
    collection_address: int
    module_objects: dict[str, int]
    blocks: tuple[FrameworkBlock, ...]


def _wdf_memory(memory: KernelMemory, payload: bytes, tag: str = "FxMe") -> tuple[int, int]:
    """A WDFMEMORY with `payload` as its buffer: (handle, buffer address)."""
    header = b"FxMemBuf" + bytes(FX_MEMORY_OBJECT_HEADER - 8)
    base = memory.allocate(FX_MEMORY_OBJECT_HEADER + len(payload), POOL, header + payload, tag=tag)
    return D.wdf_handle(base), base + FX_MEMORY_OBJECT_HEADER


def build_framework_data(memory: KernelMemory, modules: tuple[ModuleInstance, ...]) -> FrameworkData:
    """Allocate the framework's structures for `modules` and list them in storing order (F35)."""
    device = D.wdf_handle(memory.allocate(0x40, POOL, b"FxDevice", tag="FxDv"))
    placed: dict[int, tuple[int, int, int, int]] = {}  # id(module) -> object, config, name, context
    objects: dict[str, int] = {}
    for top in modules:
        for module in top.children_first():
            placed[id(module)] = _place_module(memory, module, device)
            objects[module.instance_name] = placed[id(module)][0]
    array_handle, array = _wdf_memory(
        memory, struct.pack(f"<{len(modules)}Q", *(placed[id(m)][0] for m in modules))
    )
    collection_handle, collection = _wdf_memory(memory, bytes(D.DMF_MODULE_COLLECTION_SIZE), tag="DmfC")
    head = D.DMF_MODULE_COLLECTION(
        ModuleCollectionHandleMemory=collection_handle,
        ClientDriverDmfModules=array,
        ClientDriverDmfModulesMemory=array_handle,
        NumberOfClientDriverDmfModules=len(modules),
        ManualCallToD0EntrySucceeded=1,
        ClientDevice=device,
    )
    head.DmfObjectFeature[D.DMF_FEATURE_LIVE_KERNEL_DUMP] = placed[id(modules[0])][0]
    memory.write(collection, bytes(head))
    blocks = [
        FrameworkBlock("DMF_MODULE_COLLECTION", collection, D.DMF_MODULE_COLLECTION_SIZE),
        FrameworkBlock("top-level module handles", array, 8 * len(modules)),
    ]
    addresses = {"object": 0, "config": 1, "name": 2, "context": 3}
    for entry in dmf_data_entries(modules)[2:]:
        assert entry.module is not None
        address = placed[id(entry.module)][addresses[entry.kind]]
        blocks.append(FrameworkBlock(f"{entry.module.instance_name} {entry.kind}", address, entry.size))
    return FrameworkData(collection_handle, collection, objects, tuple(blocks))


def _place_module(memory: KernelMemory, module: ModuleInstance, device: int) -> tuple[int, int, int, int]:
    """Allocate one module's config, name, context and DMF_OBJECT; return their addresses."""
    kind = module.type
    config = (
        memory.allocate(kind.config_size, POOL, _pattern(kind.config_size, 0x11), tag="DmfM")
        if kind.config_size
        else 0
    )
    name_bytes = module.instance_name.encode("ascii") + b"\0"
    name = memory.allocate(len(name_bytes), POOL, name_bytes, tag="Dmf0")
    context = (
        memory.allocate(kind.context_size, POOL, _pattern(kind.context_size, 0x55), tag="FxCx")
        if kind.context_size
        else 0
    )
    handle, obj = _wdf_memory(memory, bytes(DMF_OBJECT_SIZE), tag="DmfO")
    head = D.DMF_OBJECT_HEAD(
        ModuleConfig=config,
        ModuleConfigSize=kind.config_size,
        ModuleContext=context,
        ReferenceCount=1,
        ParentDevice=device,
        MemoryDmfObject=handle,
        ModuleState=D.MODULE_STATE_OPENED,
        ModuleOpenedDuring=D.MODULE_OPENED_DURING_CREATE,
        ClientModuleInstanceName=name,
        ClientModuleInstanceNameSizeBytes=len(name_bytes),
        Signature=D.DMF_OBJECT_SIGNATURE,
    )
    head.ChildListEntry.Flink = head.ChildListEntry.Blink = obj  # an empty list entry: itself
    tail = _pattern(DMF_OBJECT_SIZE - ctypes.sizeof(head), 0x3D)
    memory.write(obj, bytes(head) + tail)
    return obj, config, name, context


def _pattern(size: int, seed: int) -> bytes:
    """A counter pattern, never all zeros, so a reader can tell the block apart from padding."""
    return bytes((seed + i * 7) & 0xFF or 1 for i in range(size))
