"""The DMF module tree of the test driver: the one description the simulator lays out and a test
checks against `driver/LkdhTestDriver` (tests/test_sim_module_tree.py), so the two cannot drift.

What the framework stores as "DMF data" depends on this tree only (DMF_FACTS.md F16, F35): after
every module's Open, `DMF_ModuleLiveKernelDump_ModuleCollectionInitialize` (FW.c:168-204) stores the
DMF_MODULE_COLLECTION, the array of **top-level** DMF_OBJECT pointers, then per top-level module,
children first (FW.c:92-101), its DMF_OBJECT, its config (when not NULL), its instance name, and
its context (the `DMF_MODULE_DECLARE_CONTEXT` LiveKernelDumpInitialize, DmfModule.h:445-455).

Top level, in collection order: the Feature modules first (DmfModuleCollection.c:3030-3040, only
LiveKernelDump here: the driver enables no BranchTrack), then what the client's
EvtDmfDeviceModulesAdd adds (Driver.c: one DMF_IoctlHandler named "LkdhControl"), DMF_Bridge last
(DmfModuleCollection.c:3376-3390). DMF_LiveKernelDump's children (LKD.c:1063-1135): the RingBuffer
"DataBufferSource", and on RS3 and later an IoctlHandler and the BufferQueue
"LiveKernelDumpBufferQueue" (whose own children are the BufferPools "BufferPoolProducer" and
"BufferPoolConsumer", Dmf_BufferQueue.c:242-257), and on 19H1 and later, with
IncludeDmfDataInBugCheckTriageDump, a DMF_CrashDump (F22, F41).

Sizes are `sizeof` of the bfac434 structures on x64, computed from their definitions by the C
layout rules (natural alignment, no packing) [SRC]: each ModuleType names its header. The one
exception is DMF_OBJECT, whose tail holds DMF_MODULE_DESCRIPTOR, DMF_SYNCHRONIZATION[], a KEVENT
and other nested types: "about 0x3D0" (F35) is inferred [INF]; the fields up to `Signature` (0x78
bytes) are laid out exactly (framework.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

WINDOWS_10_RS3_BUILD = 16299
"""LKD.c:1085-1114 (`IS_WIN10_RS3_OR_LATER`): the IoctlHandler and BufferQueue children exist."""

WINDOWS_10_19H1_BUILD = 18362
"""LKD.c:1116-1133 (`IS_WIN10_19H1_OR_LATER`): the CrashDump child can exist (F41)."""

DMF_OBJECT_SIZE = 0x3D0
"""[INF] sizeof(DMF_OBJECT) on x64 (F35: "about 0x3D0")."""

DMF_MODULE_COLLECTION_SIZE = 0x68
"""sizeof(DMF_MODULE_COLLECTION) on x64 (DmfIncludeInternal.h:347-386; F35)."""


@dataclass(frozen=True)
class ModuleType:
    """A DMF module type: its name and the x64 sizes of its config and context (0 = none)."""

    name: str
    config_size: int
    context_size: int
    source: str

    @property
    def short_name(self) -> str:
        """The descriptor's ModuleName: DMF_MODULE_DESCRIPTOR_INIT stores `""#Name`, without DMF_."""
        return self.name.removeprefix("DMF_")


LIVE_KERNEL_DUMP = ModuleType("DMF_LiveKernelDump", 0x48, 0x38, "Dmf_LiveKernelDump.h:50-68, .c:78-107")
RING_BUFFER = ModuleType(
    "DMF_RingBuffer", 0x0C, 0x40, "Dmf_RingBuffer.h DMF_CONFIG_RingBuffer, .c RING_BUFFER"
)
IOCTL_HANDLER = ModuleType("DMF_IoctlHandler", 0x58, 0x30, "Dmf_IoctlHandler.h config, .c context")
BUFFER_QUEUE = ModuleType("DMF_BufferQueue", 0x20, 0x10, "Dmf_BufferQueue.h config, .c context")
BUFFER_POOL = ModuleType("DMF_BufferPool", 0x1C, 0x60, "Dmf_BufferPool.h config, .c context")
CRASH_DUMP = ModuleType("DMF_CrashDump", 0x60, 0xA8, "Dmf_CrashDump.h config, .c context")
BRIDGE = ModuleType("DMF_Bridge", 0xF0, 0xF0, "Dmf_Bridge.h config, .c context (30 callbacks each)")

MODULE_TYPES: dict[str, ModuleType] = {
    t.name: t
    for t in (LIVE_KERNEL_DUMP, RING_BUFFER, IOCTL_HANDLER, BUFFER_QUEUE, BUFFER_POOL, CRASH_DUMP, BRIDGE)
}


@dataclass(frozen=True)
class ModuleInstance:
    """One module of the tree, named as DMF names it (DmfCore.c:290-305): the client's
    ClientModuleInstanceName, or the descriptor's ModuleName when the client passed ""."""

    type: ModuleType
    client_instance_name: str = ""
    children: tuple[ModuleInstance, ...] = field(default=())

    @property
    def instance_name(self) -> str:
        return self.client_instance_name or self.type.short_name

    def children_first(self) -> Iterator[ModuleInstance]:
        """This module and its descendants in the order DMF_LiveKernelDump_ModuleInitialize
        visits them: every child (recursively) before its parent."""
        for child in self.children:
            yield from child.children_first()
        yield self


@dataclass(frozen=True)
class ClientModule:
    """A module the client's EvtDmfDeviceModulesAdd adds (what the driver-source test reads)."""

    type_name: str
    instance_name: str


TEST_DRIVER_CLIENT_MODULES: tuple[ClientModule, ...] = (ClientModule("DMF_IoctlHandler", "LkdhControl"),)
"""driver/LkdhTestDriver/Driver.c, LkdhDmfModulesAdd: checked against the source by a test."""


def live_kernel_dump_module(build: int, include_crash_dump: bool) -> ModuleInstance:
    """DMF_LiveKernelDump with the children its ChildModulesAdd creates for `build` (F35, F41, F42)."""
    children = [ModuleInstance(RING_BUFFER, "DataBufferSource")]
    if build >= WINDOWS_10_RS3_BUILD:
        pools = (
            ModuleInstance(BUFFER_POOL, "BufferPoolProducer"),
            ModuleInstance(BUFFER_POOL, "BufferPoolConsumer"),
        )
        children += [
            ModuleInstance(IOCTL_HANDLER),
            ModuleInstance(BUFFER_QUEUE, "LiveKernelDumpBufferQueue", pools),
        ]
    if build >= WINDOWS_10_19H1_BUILD and include_crash_dump:
        children.append(ModuleInstance(CRASH_DUMP))
    return ModuleInstance(LIVE_KERNEL_DUMP, "", tuple(children))


def lkdh_driver_modules(build: int, include_crash_dump: bool = False) -> tuple[ModuleInstance, ...]:
    """The top-level modules of the test driver's collection, in collection order."""
    clients = tuple(
        ModuleInstance(MODULE_TYPES[c.type_name], c.instance_name) for c in TEST_DRIVER_CLIENT_MODULES
    )
    return (live_kernel_dump_module(build, include_crash_dump), *clients, ModuleInstance(BRIDGE))


@dataclass(frozen=True)
class StoredEntry:
    """One DMF-data ring entry the framework stores (F35): what it is, whose, and its size."""

    kind: str  # "collection", "handles", "object", "config", "name", "context"
    module: ModuleInstance | None
    size: int


def dmf_data_entries(modules: tuple[ModuleInstance, ...]) -> list[StoredEntry]:
    """The framework's ring entries for `modules`, in storing order (FW.c:168-204, 92-128)."""
    entries = [
        StoredEntry("collection", None, DMF_MODULE_COLLECTION_SIZE),
        StoredEntry("handles", None, 8 * len(modules)),
    ]
    for top in modules:
        for module in top.children_first():
            entries.append(StoredEntry("object", module, DMF_OBJECT_SIZE))
            if module.type.config_size:
                entries.append(StoredEntry("config", module, module.type.config_size))
            entries.append(StoredEntry("name", module, len(module.instance_name) + 1))
            if module.type.context_size:
                entries.append(StoredEntry("context", module, module.type.context_size))
    return entries
