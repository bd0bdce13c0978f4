"""The operations every target speaks, and what they return (DESIGN.md, "The Target interface").

Operations are small frozen dataclasses so a run record can hold them, print them and compare them;
a target never sees YAML, and a scenario never sees a machine: the runner translates between them.
A buffer is named by the name it was allocated under (the driver on the machine keeps the map from
names to kernel addresses) or, for the unusual cases DMF does not check (NULL, a stale pointer), by a
raw address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness.target.irql import Irql
from harness.target.status import STATUS_NOT_FOUND

BufferRef = str | int
"""A buffer allocated by name, or a raw kernel virtual address."""


@dataclass(frozen=True)
class Alloc:
    """Allocate `size` bytes of kernel pool filled with `pattern` (repeated) and remember it by `name`."""

    name: str
    size: int
    pattern: bytes
    pool: str = "NonPagedPoolNx"

    def content(self) -> bytes:
        """The bytes the allocation holds: what every target writes and a dump must show."""
        return repeat_to(self.pattern, self.size)


def repeat_to(pattern: bytes, size: int) -> bytes:
    """`pattern` repeated and cut to exactly `size` bytes (an empty pattern fills with zeros)."""
    if not pattern:
        return bytes(size)
    count = -(-size // len(pattern))
    return (pattern * count)[:size]


@dataclass(frozen=True)
class Free:
    """Free a named allocation (its address may be reused later, as real pool does)."""

    name: str


@dataclass(frozen=True)
class Store:
    """DMF_LiveKernelDump_DataBufferSourceAdd(buffer (+offset), length) at `irql`."""

    buffer: BufferRef
    length: int
    offset: int = 0
    irql: Irql = Irql.PASSIVE_LEVEL


@dataclass(frozen=True)
class Remove:
    """DMF_LiveKernelDump_DataBufferSourceRemove(buffer (+offset), length) at `irql`."""

    buffer: BufferRef
    length: int
    offset: int = 0
    irql: Irql = Irql.PASSIVE_LEVEL


@dataclass(frozen=True)
class ClientStructure:
    """One LIVEKERNELDUMP_CLIENT_STRUCTURE {Address, Size} (F20)."""

    buffer: BufferRef
    length: int
    offset: int = 0


@dataclass(frozen=True)
class SecondaryData:
    """SizeOfSecondaryData / SecondaryDataBuffer passed to Create (F07, F21)."""

    buffer: BufferRef
    length: int
    offset: int = 0


@dataclass(frozen=True)
class Create:
    """DMF_LiveKernelDump_LiveKernelMemoryDumpCreate (F01-F04).

    `exclude_dmf_data` is the raw BOOLEAN byte, not a bool: values other than 0 and 1 behave
    differently in the shipped module (F17).
    """

    bugcheck_code: int
    parameter: int = 0
    exclude_dmf_data: int = 0
    client_structures: tuple[ClientStructure, ...] = ()
    secondary_data: SecondaryData | None = None
    irql: Irql = Irql.PASSIVE_LEVEL


@dataclass(frozen=True)
class StoreCollection:
    """DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter(value) (F18)."""

    value: int
    irql: Irql = Irql.PASSIVE_LEVEL


@dataclass(frozen=True)
class QueryDmfDataSize:
    """DMF_LiveKernelDump_DmfDataSizeGet: the module's running DmfDataSize counter (F11)."""


@dataclass(frozen=True)
class UserBuffer:
    """Bytes the calling application holds in its own memory (an IOCTL's secondary data)."""

    data: bytes


@dataclass(frozen=True)
class IoctlCreate:
    """IOCTL_LIVEKERNELDUMP_CREATE (0x0022CB00) sent by an application (F23-F27).

    Either `raw` (the exact input bytes, so short, oversized or hand-made buffers can be sent) or the
    fields, which the target packs into the 37-byte structure with the client-structure array and the
    secondary data placed in the caller's user memory. The `*_override` fields replace what is packed
    (a NULL array with a count, a wild pointer). `elevated` is whether the caller's token is an elevated
    administrator's; `write_access` whether the handle was opened for writing.
    """

    bugcheck_code: int = 0
    parameter: int = 0
    exclude_dmf_data: int = 0
    client_structures: tuple[ClientStructure, ...] = ()
    secondary_data: SecondaryData | UserBuffer | None = None
    raw: bytes | None = None
    client_structure_count_override: int | None = None
    client_structure_array_override: int | None = None
    secondary_size_override: int | None = None
    secondary_address_override: int | None = None
    elevated: bool = True
    write_access: bool = True
    device: str = "module-interface"
    """Which handle the application opens: "module-interface" (GuidDeviceInterface) or
    "control-interface" (the test driver's control device): the module serves both (F37)."""


@dataclass(frozen=True)
class Wait:
    """Let time pass on the machine (the simulator advances its virtual clock instantly)."""

    seconds: float


@dataclass(frozen=True)
class Reboot:
    """Restart the machine; driver state and stored buffers are gone afterwards."""


Op = Alloc | Free | Store | Remove | Create | StoreCollection | QueryDmfDataSize | IoctlCreate | Wait | Reboot


@dataclass(frozen=True)
class Crash:
    """The machine bugchecked while running an operation; it has rebooted since."""

    bugcheck_code: int
    parameters: tuple[int, int, int, int]
    reason: str
    dump_path: Path | None = None


@dataclass(frozen=True)
class OpResult:
    """What an operation returned: the NTSTATUS, an address for Alloc, a value for a query, and a
    Crash if one happened."""

    status: int
    address: int | None = None
    value: int | None = None
    crash: Crash | None = None
    detail: str = ""


def buffer_not_found(buffer: BufferRef) -> OpResult:
    """What every target answers for a buffer name the driver does not know on this boot."""
    return OpResult(STATUS_NOT_FOUND, detail=f"the driver has no buffer named {buffer!r} on this boot")


CONSOLE_LOG = "console.log"
"""The machine's serial console as a target keeps it in a scenario's output folder, beside run.log
(the Windows target, from a hypervisor that sees the console); reports attach it when it is there."""


@dataclass(frozen=True)
class CollectedDump:
    """A dump the machine wrote, copied to the local output folder and hash-verified."""

    path: Path
    kind: str  # "live" (LiveKernelReports) or "crash" (Minidump, MEMORY.DMP)
    sha256: str
    remote_name: str = ""


@dataclass(frozen=True)
class DriverInfo:
    """What the test driver reports about its DMF_LiveKernelDump instance and configuration."""

    collection_handle: int
    report_type: str
    secondary_data_guid: uuid.UUID
    known_defects: frozenset[str] = frozenset()
    """Ids of the known DMF defects this driver build has (all of them for DMF bfac434)."""
    features: frozenset[str] = frozenset()
    """What the machine offers scenarios' `requires` (test-driver, verifier, admin, ...)."""
    facts: dict[str, str] = field(default_factory=dict)
