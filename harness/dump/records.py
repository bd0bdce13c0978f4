"""The decoded, immutable view of a kernel dump's structures (what callers hold; layout.py is raw).

Names are snake_case versions of the on-disk names, so a value can be matched against WinDbg's or
rizin's output field by field. Header fields that still hold Windows's "PAGE" fill are ``None``
(unset, DUMP_FORMAT.md), never the fill value, so a test cannot mistake 0x45474150 for data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from . import layout as L

# DumpHeader64 field -> DUMP_HEADER64 field, for the fields copied as plain integers.
_HEADER_INTS = {
    "major_version": "MajorVersion",
    "minor_version": "MinorVersion",
    "directory_table_base": "DirectoryTableBase",
    "pfn_database": "PfnDataBase",
    "ps_loaded_module_list": "PsLoadedModuleList",
    "ps_active_process_head": "PsActiveProcessHead",
    "machine_image_type": "MachineImageType",
    "number_processors": "NumberProcessors",
    "bugcheck_code": "BugCheckCode",
    "kd_debugger_data_block": "KdDebuggerDataBlock",
    "dump_type": "DumpType",
    "required_dump_space": "RequiredDumpSpace",
    "system_time": "SystemTime",
    "system_up_time": "SystemUpTime",
    "mini_dump_fields": "MiniDumpFields",
    "secondary_data_state": "SecondaryDataState",
    "product_type": "ProductType",
    "suite_mask": "SuiteMask",
    "writer_status": "WriterStatus",
    "attributes": "Attributes",
    "boot_id": "BootId",
}


def unset_if_page(value: int) -> int | None:
    """None when ``value`` is the "PAGE" fill of a u32 or u64 field, else the value."""
    return None if value in (L.PAGE_FILL_U32, L.PAGE_FILL_U64) else value


def decode_comment(raw: bytes) -> str | None:
    """The header comment up to its NUL; None when all 128 bytes are still the "PAGE" fill."""
    if raw == L.PAGE * (len(raw) // 4):
        return None
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


@dataclass(frozen=True, slots=True)
class DumpHeader64:
    """DUMP_HEADER64 (file offset 0); ``None`` = the field still holds the "PAGE" fill."""

    major_version: int | None
    minor_version: int | None
    directory_table_base: int | None
    pfn_database: int | None
    ps_loaded_module_list: int | None
    ps_active_process_head: int | None
    machine_image_type: int | None
    number_processors: int | None
    bugcheck_code: int | None
    bugcheck_parameters: tuple[int | None, int | None, int | None, int | None]
    kd_debugger_data_block: int | None
    dump_type: int | None
    required_dump_space: int | None
    system_time: int | None
    system_up_time: int | None
    mini_dump_fields: int | None
    secondary_data_state: int | None
    product_type: int | None
    suite_mask: int | None
    writer_status: int | None
    attributes: int | None
    boot_id: int | None
    comment: str | None

    @classmethod
    def from_raw(cls, raw: L.DUMP_HEADER64) -> DumpHeader64:
        ints = {name: unset_if_page(getattr(raw, field)) for name, field in _HEADER_INTS.items()}
        params = tuple(unset_if_page(getattr(raw, f"BugCheckParameter{i}")) for i in range(1, 5))
        return cls(**ints, bugcheck_parameters=params, comment=decode_comment(bytes(raw.Comment)))

    @property
    def build(self) -> int | None:
        """The Windows build number (MinorVersion)."""
        return self.minor_version

    @property
    def is_live_dump(self) -> bool:
        """Attributes bit 4, LiveDumpGeneratedDump: written by the live-dump service, not a bugcheck."""
        return bool((self.attributes or 0) & L.ATTR_LIVE_DUMP_GENERATED_DUMP)

    @property
    def is_kernel_generated_triage(self) -> bool:
        """Attributes bit 3, KernelGeneratedTriageDump."""
        return bool((self.attributes or 0) & L.ATTR_KERNEL_GENERATED_TRIAGE_DUMP)

    @property
    def machine_name(self) -> str:
        """ "x64", "ARM64", "x86", or the MachineImageType in hex."""
        if self.machine_image_type is None:
            return "unset"
        return L.MACHINE_NAMES.get(self.machine_image_type, f"0x{self.machine_image_type:x}")

    @property
    def dump_type_name(self) -> str:
        if self.dump_type is None:
            return "unset"
        return L.DUMP_TYPE_NAMES.get(self.dump_type, f"unknown ({self.dump_type})")


@dataclass(frozen=True, slots=True)
class TriageDump64:
    """TRIAGE_DUMP64 at 0x2000, every field as stored (``*_offset`` values are absolute file offsets)."""

    service_pack_build: int
    size_of_dump: int
    valid_offset: int
    context_offset: int
    exception_offset: int
    mm_offset: int
    unloaded_drivers_offset: int
    prcb_offset: int
    process_offset: int
    thread_offset: int
    call_stack_offset: int
    size_of_call_stack: int
    driver_list_offset: int
    driver_count: int
    string_pool_offset: int
    string_pool_size: int
    broken_driver_offset: int
    triage_options: int
    top_of_stack: int
    bstore_offset: int
    size_of_bstore: int
    limit_of_bstore: int
    data_page_address: int
    data_page_offset: int
    data_page_size: int
    debugger_data_offset: int
    debugger_data_size: int
    data_blocks_offset: int
    data_blocks_count: int

    @classmethod
    def from_raw(cls, raw: L.TRIAGE_DUMP64) -> TriageDump64:
        return cls(*(getattr(raw, name) for name, _ in L.TRIAGE_DUMP64._fields_))


@dataclass(frozen=True, slots=True)
class DataBlock:
    """One TRIAGE_DATA_BLOCK: ``size`` bytes captured from kernel VA ``address``, stored at ``offset``."""

    address: int
    offset: int
    size: int

    @property
    def end(self) -> int:
        """One past the last virtual address the block covers."""
        return self.address + self.size


@dataclass(frozen=True, slots=True)
class Driver:
    """A loaded module from the triage driver list; ``name`` is the string-pool path as stored
    (real dumps store ``\\SystemRoot\\system32\\ntoskrnl.exe``, not just the file name)."""

    name: str
    base: int
    size: int

    @property
    def file_name(self) -> str:
        """The last path component: ``ntoskrnl.exe``."""
        return self.name.rsplit("\\", 1)[-1]


@dataclass(frozen=True, slots=True)
class Blob:
    """One secondary-data blob: its tag GUID and where its data lies in the file."""

    guid: uuid.UUID
    data_offset: int
    size: int
