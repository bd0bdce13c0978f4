"""User-mode minidumps ("MDMP"), read by the PyPI ``minidump`` package.

The harness meets them only as WER crash reports of user-mode tools (e.g. lkdctl.exe), so it needs a
summary, not a debugger: architecture, threads, modules, the exception code. Decoding is delegated
to ``minidump`` (DUMP_FORMAT.md: it reads MDMP and nothing else), whose MinidumpFile keeps the file
handle for lazy memory reads: this class owns that handle and closes it.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from minidump.minidumpfile import MinidumpFile

from .errors import DumpFormatError
from .minidump_guard import ClampedFile, check_minidump

_PEB_FAILURE = "PEB parsing error!"


@contextlib.contextmanager
def _quiet_peb_failure() -> Iterator[None]:
    """Silence minidump's root-logger traceback for an unreadable PEB while parsing.

    ``minidump`` calls ``logging.exception`` on the root logger when the PEB is not in the dump
    (true of calc.dmp), which would both print a traceback from ``lkdh inspect`` and, with no root
    handler yet, call ``logging.basicConfig()`` behind the application's back. The PEB is not part
    of our summary, so the record is dropped; a NullHandler keeps basicConfig from running.
    """
    root = logging.getLogger()
    handler = logging.NullHandler()

    def drop_peb(record: logging.LogRecord) -> bool:
        return record.getMessage() != _PEB_FAILURE

    root.addHandler(handler)
    root.addFilter(drop_peb)
    try:
        yield
    finally:
        root.removeFilter(drop_peb)
        root.removeHandler(handler)


def _parse(path: Path, file: ClampedFile) -> MinidumpFile:
    """``minidump``'s parse, its failures (on a file check_minidump let through) as DumpFormatError:
    the package does not say where it stopped, so the error names no offset."""
    try:
        return MinidumpFile.parse_external(file, str(path))
    except Exception as error:
        reason = f"the minidump package could not parse it: {type(error).__name__}: {error}"
        raise DumpFormatError(path, "MINIDUMP", None, reason) from error


class UserModeMinidump:
    """An open user-mode minidump: a context manager exposing a small summary.

    ``minidump`` gives access to everything else (memory, handles) for callers that need it.
    """

    kind = "user"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("rb")
        try:
            self.file_size = os.fstat(self._file.fileno()).st_size
            if self.file_size:
                with mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) as view:
                    check_minidump(self.path, view, self.file_size)
            else:
                check_minidump(self.path, b"", 0)
            with _quiet_peb_failure():
                self.minidump = _parse(self.path, ClampedFile(self._file, self.file_size))
        except BaseException:
            self._file.close()
            raise

    @property
    def architecture(self) -> str | None:
        """PROCESSOR_ARCHITECTURE name from the SystemInfo stream (e.g. "AMD64"), None without one."""
        sysinfo = self.minidump.sysinfo
        return None if sysinfo is None else sysinfo.ProcessorArchitecture.name

    @property
    def thread_count(self) -> int:
        threads = self.minidump.threads
        return 0 if threads is None else len(threads.threads)

    @property
    def module_names(self) -> list[str]:
        """Full paths of the loaded modules, in the dump's order."""
        modules = self.minidump.modules
        return [] if modules is None else [m.name for m in modules.modules]

    @property
    def module_count(self) -> int:
        return len(self.module_names)

    @property
    def exception_code(self) -> int | None:
        """The raw exception code of the first exception record, or None when there is none."""
        exception = self.minidump.exception
        if exception is None or not exception.exception_records:
            return None
        return exception.exception_records[0].ExceptionRecord.ExceptionCode_raw

    def summary(self) -> dict[str, Any]:
        """The JSON-ready facts describe.summary() reports for a user-mode dump."""
        return {
            "architecture": self.architecture,
            "threads": self.thread_count,
            "modules": self.module_names,
            "exception_code": self.exception_code,
        }

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> UserModeMinidump:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
