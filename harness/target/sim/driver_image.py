"""Where code lives on the simulated machine: the loaded images and the routines a bugcheck names.

A bugcheck's instruction pointer must fall inside an image of the dump's driver list, or a reader
(WinDbg's `lm`, `!analyze`) cannot attribute it: DMF is linked statically (DmfK.lib) into the test
driver, so every DMF routine lives in the image the INF installs, `LkdhTestDriver.sys`
(driver/LkdhTestDriver/LkdhTestDriver.inf, `[SourceDisksFiles]`). The kernel's own routines (the
system-call dispatcher named by APC_INDEX_MISMATCH, F38) live in ntoskrnl.exe.

Routine offsets inside an image are [INF]: no build of the driver exists here, so each routine gets
a stable, distinct, 16-byte-aligned offset derived from its name; sections follow the usual MSVC
layout (.text first, PAGE after it), which is what matters to the facts: paged DMF routines
(F18, F38) sit in the PAGE section.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class LoadedImage:
    """One entry of the kernel's loaded-module list (what a dump's driver list shows)."""

    path: str
    base: int
    size: int

    @property
    def file_name(self) -> str:
        return self.path.rsplit("\\", 1)[-1]

    def contains(self, address: int) -> bool:
        return self.base <= address < self.base + self.size


TEXT_SECTION_RVA = 0x1000
PAGE_SECTION_RVA = 0x9000
SECTION_SPAN = 0x7000


def _offset(name: str, section_rva: int) -> int:
    return section_rva + (zlib.crc32(name.encode()) % (SECTION_SPAN // 0x10)) * 0x10


@dataclass(frozen=True)
class DriverImage(LoadedImage):
    """The test driver's image, with DMF linked in: routine addresses for bugcheck parameters."""

    def routine(self, name: str, *, paged: bool = False) -> int:
        """The address of `name` in this image: in PAGE when the source puts it there (code_seg)."""
        return self.base + _offset(name, PAGE_SECTION_RVA if paged else TEXT_SECTION_RVA)


TEST_DRIVER = DriverImage("\\SystemRoot\\System32\\drivers\\LkdhTestDriver.sys", 0xFFFFF80281200000, 0x12000)
"""The INF copies LkdhTestDriver.sys to %13% (DriverStore, run from there) and names it as the
service binary; the loaded-module list shows the path the service was started from [INF]."""

NTOSKRNL = LoadedImage("\\SystemRoot\\system32\\ntoskrnl.exe", 0xFFFFF80270A00000, 0x1046000)

OS_IMAGES: tuple[LoadedImage, ...] = (
    NTOSKRNL,
    LoadedImage("\\SystemRoot\\system32\\hal.dll", 0xFFFFF8026E440000, 0x6000),
    LoadedImage("\\SystemRoot\\system32\\drivers\\Wdf01000.sys", 0xFFFFF8026E900000, 0xE3000),
)

NT_DEVICE_IO_CONTROL_FILE = NTOSKRNL.base + 0x6A3E10
"""[INF] NtDeviceIoControlFile in ntoskrnl: the system call every harness operation arrives through
(lkdctl sends one IOCTL per operation), named by APC_INDEX_MISMATCH's P1 (F38)."""

KI_BUGCHECK_CONTEXT_RIP = NTOSKRNL.base + 0x3F6B20
"""[INF] Where KeBugCheckEx saves the context of a crashing thread (the CONTEXT a dump carries)."""

LIVE_DUMP_CONTEXT_RIP = NTOSKRNL.base + 0x5B2C40
"""[INF] Inside the kernel's live-dump path (DbgkWerCaptureLiveKernelDump): the current thread's
instruction pointer when the live dump is captured."""


def loaded_images(driver: DriverImage = TEST_DRIVER) -> tuple[LoadedImage, ...]:
    """The loaded-module list of the simulated machine, kernel first, as real dumps order it."""
    return (*OS_IMAGES, driver)
