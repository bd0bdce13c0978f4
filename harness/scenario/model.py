"""The scenario language, v1: pydantic models for one scenario and its steps.

A scenario file is a YAML stream; each document is one scenario. A step is a mapping with exactly
one operation key (`alloc`, `store`, ...) plus the optional `irql`, `expect` and `title`, the way
Ansible tasks read. Numbers may be written in hex (`0x1A2`). Models are frozen and forbid unknown
keys, so a misspelt key is an error at its own line, never a silently ignored setting.
Semantic checks that need the whole scenario (a buffer used before it is allocated) live in
`semantics.py`; positions come from `loader.py`.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    Tag,
    field_validator,
    model_validator,
)

from harness.target.defects import KNOWN_DEFECTS
from harness.target.irql import Irql
from harness.target.status import STATUS_CODES

# Strict: YAML 1.2 keeps `yes`/`on`/"26" as strings, and the language must not quietly convert them.
U32 = Annotated[StrictInt, Field(ge=0, le=0xFFFF_FFFF)]
U64 = Annotated[StrictInt, Field(ge=0, le=0xFFFF_FFFF_FFFF_FFFF)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$", max_length=64)]


def _parse_status(value: Any) -> int:
    """A status by name (STATUS_INVALID_PARAMETER) or by number (0xC000000D)."""
    if isinstance(value, bool):
        raise ValueError("a status is a name such as STATUS_SUCCESS or a number, not a boolean")
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFF_FFFF:
            raise ValueError(f"status 0x{value:X} does not fit in 32 bits")
        return value
    if isinstance(value, str):
        name = value.strip().upper()
        if name in STATUS_CODES:
            return STATUS_CODES[name]
        known = ", ".join(sorted(STATUS_CODES))
        raise ValueError(f"unknown status name {value!r}; known names: {known}")
    raise ValueError(f"a status is a name or a number, not {type(value).__name__}")


def _parse_irql(value: Any) -> Irql:
    if isinstance(value, Irql):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        found = {float: f"number {value!r}", list: "a list", dict: "a mapping", type(None): "nothing"}.get(
            type(value), type(value).__name__
        )
        raise ValueError(
            f"expected an IRQL: one of PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL (or 0..2), found {found}"
        )
    return Irql.parse(value)


def _parse_hex_bytes(value: Any) -> bytes:
    """Hex text such as 'DE AD be ef' (spaces and colons allowed) into bytes."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("expected hex text such as 'DE AD BE EF'")
    digits = re.sub(r"[\s:_-]", "", value)
    if digits.lower().startswith("0x"):
        digits = digits[2:]
    if not digits or len(digits) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
        raise ValueError(f"{value!r} is not an even number of hex digits")
    return bytes.fromhex(digits)


StatusValue = Annotated[
    int, BeforeValidator(_parse_status), Field(json_schema_extra={"type": ["string", "integer"]})
]
IrqlValue = Annotated[
    Irql,
    BeforeValidator(_parse_irql),
    PlainSerializer(lambda irql: irql.name, return_type=str),
    Field(json_schema_extra={"enum": [i.name for i in Irql], "type": "string"}),
]
HexBytes = Annotated[
    bytes,
    BeforeValidator(_parse_hex_bytes),
    PlainSerializer(lambda raw: raw.hex(" ").upper(), return_type=str),
    Field(json_schema_extra={"type": "string", "format": "hex-bytes"}),
]


class StrictModel(BaseModel):
    """Frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BufferSlice(StrictModel):
    """A buffer by name (or a raw address), optionally a sub-range of it.

    Shorthand: a bare name, `store: ring_a`, means the whole buffer.
    """

    buffer: Identifier | None = None
    address: U64 | None = None
    offset: U32 = 0
    length: U32 | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"buffer": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> BufferSlice:
        if (self.buffer is None) == (self.address is None):
            raise ValueError("give exactly one of `buffer` (a name) or `address` (a number)")
        if self.address is not None and self.length is None:
            raise ValueError("a raw `address` needs an explicit `length`")
        return self

    def describe(self) -> str:
        """'ring_a', 'ring_a[8:+16]' or '0xFFFF...:+16' for messages."""
        base = self.buffer if self.buffer is not None else f"0x{self.address:X}"
        if self.offset or self.length is not None:
            length = "end" if self.length is None else f"+{self.length}"
            return f"{base}[{self.offset}:{length}]"
        return base


class AllocSpec(StrictModel):
    """Allocate kernel pool by name; the content is `pattern` (hex, repeated) or `text` (UTF-8).

    Without either the content is derived from the name, so every buffer's bytes are distinct and
    a dump shows whose bytes it holds.
    """

    name: Identifier
    size: Annotated[StrictInt, Field(ge=1, le=16 * 1024 * 1024)]
    pattern: HexBytes | None = None
    text: str | None = None
    pool: Literal["NonPagedPoolNx", "NonPagedPool", "PagedPool"] = "NonPagedPoolNx"

    @model_validator(mode="after")
    def _one_fill(self) -> AllocSpec:
        if self.pattern is not None and self.text is not None:
            raise ValueError("give at most one of `pattern` and `text`")
        return self


class CreateSpec(StrictModel):
    """Arguments of DMF_LiveKernelDump_LiveKernelMemoryDumpCreate."""

    bugcheck_code: U32
    parameter: U64 = 0
    exclude_dmf_data: StrictBool | Annotated[StrictInt, Field(ge=0, le=255)] = False
    client_structures: list[BufferSlice] = Field(default_factory=list)
    secondary_data: BufferSlice | None = None

    def exclude_byte(self) -> int:
        """The raw BOOLEAN byte the call receives (F17: 2 is not the same as 1)."""
        return int(self.exclude_dmf_data)


class CallerBytes(StrictModel):
    """Bytes an IOCTL caller holds in its own memory: `hex` or UTF-8 `text`."""

    hex: HexBytes | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _one(self) -> CallerBytes:
        if (self.hex is None) == (self.text is None):
            raise ValueError("give exactly one of `hex` and `text`")
        return self

    def data(self) -> bytes:
        return self.hex if self.hex is not None else (self.text or "").encode()


class IoctlCreateSpec(StrictModel):
    """IOCTL_LIVEKERNELDUMP_CREATE as an application sends it (F23-F27).

    The fields are packed into the 37-byte input with the client-structure array and caller-held
    secondary data in the caller's memory; a buffer name as a client structure or secondary data
    passes that kernel buffer's address (the F27 disclosure path). `raw` sends exact bytes instead,
    so short or oversized inputs can be tried. The `client_structure_count`, `client_structure_array`,
    `secondary_data_size` and `secondary_data_address` overrides replace what is packed (a NULL array
    with a count, a wild pointer). `caller` is an elevated administrator or a standard user;
    `access` is how the handle was opened; `device` which handle: the module's own interface
    (GuidDeviceInterface) or the test driver's control interface, which serves the IOCTL too (F37).
    """

    bugcheck_code: U32 = 0
    parameter: U64 = 0
    exclude_dmf_data: StrictBool | Annotated[StrictInt, Field(ge=0, le=255)] = False
    client_structures: list[BufferSlice] = Field(default_factory=list)
    secondary_data: BufferSlice | CallerBytes | None = None
    raw: HexBytes | None = None
    client_structure_count: U32 | None = None
    client_structure_array: U64 | None = None
    secondary_data_size: U32 | None = None
    secondary_data_address: U64 | None = None
    caller: Literal["admin", "standard-user"] = "admin"
    access: Literal["read-write", "read"] = "read-write"
    device: Literal["module-interface", "control-interface"] = "module-interface"

    @model_validator(mode="after")
    def _raw_alone(self) -> IoctlCreateSpec:
        fields = self.model_fields_set - {"raw", "caller", "access", "device"}
        if self.raw is not None and fields:
            named = ", ".join(sorted(fields))
            raise ValueError(f"`raw` sends exact bytes; it cannot be combined with {named}")
        return self

    def exclude_byte(self) -> int:
        """The raw ExcludeDmfData byte (F17)."""
        return int(self.exclude_dmf_data)


class StoreCollectionSpec(StrictModel):
    """DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter(value). Shorthand: a number."""

    value: U64

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"value": value} if isinstance(value, int) and not isinstance(value, bool) else value


class WaitSpec(StrictModel):
    """Let time pass on the machine. Shorthand: a number of seconds."""

    seconds: Annotated[float, Field(ge=0, le=3600)]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"seconds": value} if isinstance(value, int | float) and not isinstance(value, bool) else value


class CountRange(StrictModel):
    """An inclusive range for a count."""

    min: Annotated[StrictInt, Field(ge=0)] = 0
    max: Annotated[StrictInt, Field(ge=0)] | None = None


class ContainsItem(BufferSlice):
    """A range the dump must hold, with `bytes` (hex) if not the buffer's allocated content."""

    bytes: HexBytes | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"buffer": value} if isinstance(value, str) else value


ParameterExpect = U64 | Literal["collection", "any"]


class SecondaryDataExpect(StrictModel):
    """A DumpBlob the dump must (or, with `absent`, must not) hold.

    `guid` defaults to the driver's configured GuidSecondaryData; the content is a buffer's bytes,
    explicit `hex`, or only a `size`.
    """

    guid: uuid.UUID | None = None
    buffer: BufferSlice | None = None
    hex: HexBytes | None = None
    size: U32 | None = None
    absent: StrictBool = False

    @model_validator(mode="after")
    def _content(self) -> SecondaryDataExpect:
        if self.buffer is not None and self.hex is not None:
            raise ValueError("give at most one of `buffer` and `hex`")
        if self.absent and (self.buffer is not None or self.hex is not None or self.size is not None):
            raise ValueError("`absent: true` takes no content")
        return self


DumpFolder = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(?:[/\\][A-Za-z0-9_.-]+)*$")]
"""A folder under %SystemRoot%, its parts joined with `/` or a backslash: `LiveKernelReports/LkdhTestDri`."""


class DumpExpect(StrictModel):
    """What the live dump written by a `create` step must show.

    `folder` is where the file landed, relative to %SystemRoot% (F09: `LiveKernelReports/<ReportType>`),
    compared without regard to case or separator, as Windows compares paths: the only place the
    ReportType shows (F05). `dmf_collection` says whether the DMF_MODULE_COLLECTION block, the one
    whose first 8 bytes equal P2 (F32), is in the dump: the ring evicts it first (F35).
    """

    folder: DumpFolder | None = None
    bugcheck_code: U32 | None = None
    parameters: Annotated[list[ParameterExpect], Field(min_length=1, max_length=4)] | None = None
    contains: list[ContainsItem] = Field(default_factory=list)
    excludes: list[BufferSlice] = Field(default_factory=list)
    secondary_data: list[SecondaryDataExpect] = Field(default_factory=list)
    block_count: Annotated[StrictInt, Field(ge=0)] | CountRange | None = None
    dmf_collection: StrictBool | None = None


class CrashDumpExpect(StrictModel):
    """What the crash dump (`Minidump/`) a bugcheck step writes must hold besides its code: ranges a
    bugcheck callback added (IncludeDmfDataInBugCheckTriageDump, F22) or must not have."""

    contains: list[ContainsItem] = Field(default_factory=list)
    excludes: list[BufferSlice] = Field(default_factory=list)


BugcheckParameters = Annotated[list[U64 | Literal["any"]], Field(min_length=1, max_length=4)]
"""P1..P4 of an expected bugcheck, each a number or `any`, checked in the crash dump file."""


class Expect(StrictModel):
    """The outcome a step must have. Omitted, a step must return STATUS_SUCCESS and not crash.

    `bugcheck` lists the codes of which one must crash the machine (then `status` is not checked);
    `dump` applies to `create` only; `dump_written` defaults to "exactly when status is success".
    """

    status: StatusValue | None = None
    bugcheck: Annotated[list[U32], Field(min_length=1)] | None = None
    bugcheck_parameters: BugcheckParameters | None = None
    dump_written: StrictBool | None = None
    dump: DumpExpect | None = None
    crash_dump: CrashDumpExpect | None = None
    value: U64 | CountRange | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"status": value} if isinstance(value, str | int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _consistent(self) -> Expect:
        if self.bugcheck is not None and (self.status is not None or self.dump is not None):
            raise ValueError("a step expected to bugcheck has no status or dump to check")
        if self.bugcheck_parameters is not None and self.bugcheck is None:
            raise ValueError("`bugcheck_parameters` needs `bugcheck` (the codes the crash must have)")
        if self.crash_dump is not None and self.bugcheck is None:
            raise ValueError("`crash_dump` needs `bugcheck` (only a bugcheck writes a crash dump)")
        return self


class StepBase(StrictModel):
    """What every step may say besides its operation."""

    title: str | None = None
    irql: IrqlValue = Irql.PASSIVE_LEVEL
    repeat: Annotated[StrictInt, Field(ge=1, le=10_000)] = 1
    """Run the operation this many times (filling the ring, say); each run must meet `expect`."""
    timeout: Annotated[float, Field(gt=0, le=86_400)] | None = None
    """Seconds each run of the operation may take; one that has not finished by then fails the step
    (a hung call at DISPATCH_LEVEL, a machine that stops answering) and ends the scenario."""
    expect: Expect = Field(default_factory=Expect)


class AllocStep(StepBase):
    alloc: AllocSpec


class FreeStep(StepBase):
    free: Identifier


class StoreStep(StepBase):
    store: BufferSlice


class RemoveStep(StepBase):
    remove: BufferSlice


class CreateStep(StepBase):
    create: CreateSpec


class StoreCollectionStep(StepBase):
    store_collection: StoreCollectionSpec


class IoctlCreateStep(StepBase):
    ioctl_create: IoctlCreateSpec


class QueryStep(StepBase):
    """Read a value from the module; `expect.value` checks it."""

    query: Literal["dmf_data_size"]


class WaitStep(StepBase):
    wait: WaitSpec


class RebootStep(StepBase):
    reboot: Literal[True]


class IncludeSpec(StrictModel):
    """A step file and the vars it is given (its own `vars` are defaults)."""

    file: str
    vars: dict[str, Any] = Field(default_factory=dict)


class IncludeStep(StrictModel):
    """Replaced by the steps of a `*.steps.yaml` file when the scenario is loaded (not a step kind:
    it never reaches the runner). Shorthand: the file's path."""

    include: str | IncludeSpec


STEP_KINDS: dict[str, type[StepBase]] = {
    "alloc": AllocStep,
    "free": FreeStep,
    "store": StoreStep,
    "remove": RemoveStep,
    "create": CreateStep,
    "store_collection": StoreCollectionStep,
    "ioctl_create": IoctlCreateStep,
    "query": QueryStep,
    "wait": WaitStep,
    "reboot": RebootStep,
}


def step_kind(value: Any) -> str | None:
    """The operation key a step mapping holds (the discriminator); None when it has none or several."""
    if isinstance(value, StepBase):
        return next(kind for kind, model in STEP_KINDS.items() if isinstance(value, model))
    if not isinstance(value, dict):
        return None
    present = [key for key in STEP_KINDS if key in value]
    return present[0] if len(present) == 1 else None


Step = Annotated[
    Annotated[AllocStep, Tag("alloc")]
    | Annotated[FreeStep, Tag("free")]
    | Annotated[StoreStep, Tag("store")]
    | Annotated[RemoveStep, Tag("remove")]
    | Annotated[CreateStep, Tag("create")]
    | Annotated[StoreCollectionStep, Tag("store_collection")]
    | Annotated[IoctlCreateStep, Tag("ioctl_create")]
    | Annotated[QueryStep, Tag("query")]
    | Annotated[WaitStep, Tag("wait")]
    | Annotated[RebootStep, Tag("reboot")],
    Discriminator(
        step_kind,
        custom_error_type="step_operation",
        custom_error_message="a step needs exactly one operation key: " + ", ".join(STEP_KINDS),
    ),
]

Feature = Literal["test-driver", "verifier", "admin", "non-admin-user", "live-dump", "ioctl"]


class KnownDefectRef(StrictModel):
    """The scenario exercises a known DMF defect: it must fail on dmf-bfac434 and pass on contract."""

    id: str
    reason: str

    @field_validator("id")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in KNOWN_DEFECTS:
            raise ValueError(f"unknown defect id {value!r}; known ids: {', '.join(sorted(KNOWN_DEFECTS))}")
        return value


class MachineSpec(StrictModel):
    """How the machine must be set up for this scenario; a key left out keeps the target's setting.

    The module configuration is DMF_CONFIG_LiveKernelDump as the test driver fills it. A target
    applies these before the scenario starts, or the scenario is skipped with its reason.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)  # for the schema

    verifier: StrictBool | None = None
    """Driver Verifier on the test driver (F14: the IRQL rules it enforces)."""
    report_type: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{0,15}$")] | None = None
    """ReportType, the LiveKernelReports subfolder (F05: bfac434 keeps 11 characters); `""` is an
    empty one, which lkmdtel refuses [INF]."""
    guid_device_interface: uuid.UUID | None = None
    """GuidDeviceInterface; all zeros registers no interface, so the IOCTL cannot be opened (F23)."""
    guid_secondary_data: uuid.UUID | None = None
    """GuidSecondaryData; all zeros drops secondary data with a success (F21)."""
    include_dmf_data_in_bugcheck_dump: StrictBool | None = None
    """IncludeDmfDataInBugCheckTriageDump: stored buffers also go into a crash dump (F22)."""
    target_build: Annotated[StrictInt, Field(ge=0, le=0xFFFF_FFFF)] | None = None
    """The Windows build the driver was built for; below RS3 (16299) Create writes nothing (F04)."""


ParameterValue = str | int | float | bool | None


FactId = Annotated[str, Field(pattern=r"^F[0-9]{2}$")]
"""A DMF_FACTS.md id (F01..F45): a fact of DMF's behaviour a scenario rests on."""


class Scenario(StrictModel):
    """One scenario: a named sequence of steps with what each must produce.

    `vars`, `parametrize` and `include` steps are expanded by the loader before the model sees the
    document (`expand.py`); `vars` then holds the values each was resolved to, and `parametrize`
    the table as written.

    `facts` lists the DMF_FACTS.md ids whose behaviour the scenario's expectations rest on (what
    `lkdh coverage` counts; a known defect's own facts count too). Prose in `description` may cite
    others, for contrast, without claiming to exercise them.
    """

    name: Identifier
    description: str = ""
    facts: list[FactId] = Field(
        default_factory=list, description="DMF_FACTS.md ids (F01..F45) the expectations rest on"
    )
    tags: list[str] = Field(default_factory=list)
    requires: list[Feature] = Field(default_factory=list)
    hardware_only: StrictBool = False
    known_defect: KnownDefectRef | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    parametrize: list[dict[str, ParameterValue]] | None = None
    machine: MachineSpec | None = None
    steps: Annotated[list[Step], Field(min_length=1)]

    def step_operation(self, index: int) -> str:
        """The operation key of step `index` (for messages and reports)."""
        kind = step_kind(self.steps[index])
        assert kind is not None  # a validated step always has exactly one
        return kind
