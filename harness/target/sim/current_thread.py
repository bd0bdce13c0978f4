"""The current thread a simulated dump captures: who was running, where, on which stack.

Every harness operation reaches the driver through one IOCTL that lkdctl.exe (or a test application
for IOCTL_LIVEKERNELDUMP_CREATE) sends, so the thread a live dump or a bugcheck catches is that
process's, running the driver in a system call (F31). Its stack holds return addresses back through
the driver (DMF linked in) and KMDF to NtDeviceIoControlFile, so a debugger's `k` would attribute
each frame to an image of the dump's driver list. Addresses and ids are [INF], stable per boot.
"""

from __future__ import annotations

import struct

from harness.dump.sections import ThreadState
from harness.target.sim.driver_image import (
    NT_DEVICE_IO_CONTROL_FILE,
    OS_IMAGES,
    TEST_DRIVER,
    DriverImage,
)

VERIFIER_STANDARD_FLAGS = 0x209BB
"""`verifier /standard` (vm/example-target.yaml, test_target_config): MmVerifyDriverLevel when on."""

UNLOADED_DRIVERS: tuple[tuple[str, int, int], ...] = (
    ("dam.sys", 0xFFFFF80287DE0000, 0xFFFFF80287DFC000),
    ("WdBoot.sys", 0xFFFFF80279D30000, 0xFFFFF80279D42000),
)
"""Unloaded at every boot of a Windows 10 VM (the fixture's list starts with the same two)."""

WDF = next(image for image in OS_IMAGES if image.file_name == "Wdf01000.sys")


def current_thread(
    boot: int,
    rip: int,
    *,
    process_name: str = "lkdctl.exe",
    driver_frames: tuple[str, ...] = (),
    verifier: bool = False,
    driver: DriverImage = TEST_DRIVER,
) -> ThreadState:
    """The thread state for a dump taken at `rip`, called from `driver_frames` (innermost first)."""
    slide = (boot * 0x5A3) % 0x7FF << 24
    stack_top = 0xFFFF_8504_2989_3000 + slide
    frames = [driver.routine(name, paged=True) + 0x4C for name in driver_frames]
    frames += [WDF.base + 0x1A7F0, WDF.base + 0x0C3B4, NT_DEVICE_IO_CONTROL_FILE + 0x62]
    words: list[int] = []
    for index, ret in enumerate(frames):
        words += [ret, stack_top - 0x800 + index * 0x40, 0, 0]  # return address, saved Rbp, homes
    stack = struct.pack(f"<{len(words)}Q", *words) + bytes(0x200)
    rsp = stack_top - 0x1000
    thread = 0xFFFF_C08B_DE9E_1640 + slide
    return ThreadState(
        rip=rip,
        rsp=rsp,
        stack=stack,
        process_name=process_name,
        process_id=0x1F3C + boot * 4,
        thread_id=0x2A10 + boot * 4,
        prcb_address=0xFFFF_F804_782D_4180,
        process_address=0xFFFF_C08B_E2A1_4080 + slide,
        thread_address=thread,
        registers={"Rbp": stack_top - 0x800, "Rcx": thread},
        unloaded_drivers=UNLOADED_DRIVERS,
        verify_driver_level=VERIFIER_STANDARD_FLAGS if verifier else 0,
    )
