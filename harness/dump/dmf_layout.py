"""DMF's own structures as a dump carries them (x64, DMF bfac434), stated once for the decoder
(``dmf.py``) and for the simulator that lays them out.

Each is a ctypes structure with the C compiler's natural alignment, so the offsets are the x64
ones; ``tests/test_dmf_decode.py`` pins them. Sources (microsoft/DMF at bfac434):
``Dmf/Framework/DmfIncludeInternal.h`` (DMF_MODULE_COLLECTION at lines 347-386, DMF_OBJECT at
170-300, DMF_OBJECT_SIGNATURE at 305), ``DmfModule.h`` (DMF_CALLBACKS_WDF_CHECK: a ULONG and 29
BOOLEANs), ``DmfDefinitions.h`` (DmfFeatureType: Invalid, BranchTrack, LiveKernelDump).
KMDF encodes a handle as the object's address XOR ``FX_HANDLE_VALUE_MASK``
(Windows-Driver-Frameworks ``fxobject.hpp``: ``FxHandleValueMask = ~FxHandleFlagMask``, mask 0x7),
which is why the P2 of a live dump (a WDFMEMORY handle, F32) is never the address of a block.
"""

from __future__ import annotations

import ctypes

u8 = ctypes.c_uint8
u32 = ctypes.c_uint32
i32 = ctypes.c_int32
u64 = ctypes.c_uint64

FX_HANDLE_FLAG_MASK = 0x7
FX_HANDLE_VALUE_MASK = ((1 << 64) - 1) ^ FX_HANDLE_FLAG_MASK
"""fxobject.hpp:62-69: handle = object address ^ this mask (the low 3 flag bits kept)."""

DMF_OBJECT_SIGNATURE = 0x012345678
"""DmfIncludeInternal.h: DMF_OBJECT.Signature, "for debug purposes"."""

DMF_FEATURE_LIVE_KERNEL_DUMP = 2
DMF_FEATURE_COUNT = 3


def wdf_handle(object_address: int) -> int:
    """The handle KMDF gives out for the object at ``object_address``."""
    return object_address ^ FX_HANDLE_VALUE_MASK


def wdf_object_address(handle: int) -> int:
    """The object a KMDF handle stands for (its flag bits dropped)."""
    return (handle & ~FX_HANDLE_FLAG_MASK & ((1 << 64) - 1)) ^ FX_HANDLE_VALUE_MASK


class DMF_CALLBACKS_WDF_CHECK(ctypes.LittleEndianStructure):
    _fields_ = [("Size", u32), ("Implemented", u8 * 29)]


class DMF_MODULE_COLLECTION(ctypes.LittleEndianStructure):
    """0x68 bytes on x64 (F35); its first field is the WDFMEMORY handle Create puts in P2 (F32)."""

    _fields_ = [
        ("ModuleCollectionHandleMemory", u64),
        ("ClientDriverDmfModules", u64),  # DMF_OBJECT** : the top-level modules' objects
        ("ClientDriverDmfModulesMemory", u64),
        ("NumberOfClientDriverDmfModules", i32),
        ("ManualCallToD0EntrySucceeded", u8),
        ("DmfObjectFeature", u64 * DMF_FEATURE_COUNT),
        ("DmfCallbacksWdfCheck", DMF_CALLBACKS_WDF_CHECK),
        ("ManualDestroyCallbackIsPending", u8),
        ("ClientDevice", u64),
    ]


class LIST_ENTRY64(ctypes.LittleEndianStructure):
    _fields_ = [("Flink", u64), ("Blink", u64)]


class DMF_OBJECT_HEAD(ctypes.LittleEndianStructure):
    """The first 0x78 bytes of DMF_OBJECT, up to and including Signature (the rest of the ~0x3D0
    bytes holds nested descriptor, callback and lock structures the decoder does not need)."""

    _fields_ = [
        ("ChildListEntry", LIST_ENTRY64),
        ("ModuleConfig", u64),
        ("ModuleConfigSize", u64),
        ("ModuleContext", u64),
        ("ReferenceCount", i32),
        ("ReferenceCountLock", u64),  # KSPIN_LOCK in kernel mode
        ("ParentDevice", u64),
        ("MemoryDmfObject", u64),  # the DMFMODULE handle (a WDFMEMORY)
        ("ModuleState", u32),
        ("ModuleOpenedDuring", u32),
        ("ModuleNotificationRegisteredDuring", u32),
        ("ModuleName", u64),
        ("ClientModuleInstanceName", u64),
        ("ClientModuleInstanceNameSizeBytes", u64),
        ("Signature", u64),
    ]


DMF_MODULE_COLLECTION_SIZE = ctypes.sizeof(DMF_MODULE_COLLECTION)
DMF_OBJECT_HEAD_SIZE = ctypes.sizeof(DMF_OBJECT_HEAD)
MODULE_STATE_OPENED = 4
MODULE_OPENED_DURING_CREATE = 2
MODULE_STATE_NAMES = {
    0: "Invalid",
    1: "PreCreate",
    2: "Created",
    3: "Opening",
    4: "Opened",
    5: "Closing",
    6: "Closed",
    7: "Destroying",
}
