"""The pytest plugin's crash-safe journal: `--lkdh-journal FILE` and `--lkdh-resume FILE`.

The same journal as `lkdh run --journal` / `--resume` (harness/report/journal.py), keyed by item
node id: an item finished before the kill keeps its recorded result (and its Allure result file),
the item that was cut off runs again from the start, and dumps the journal saw collected are known
to the resumed run's targets by guest name and SHA-256, so none is pulled twice.
"""

from __future__ import annotations

import pytest

from harness.report.journal import JournalError, JournalState, RunJournal, read_journal
from harness.targets import TargetFactory

JOURNAL_KEY = pytest.StashKey["RunJournal | None"]()
RESUMED_KEY = pytest.StashKey[JournalState]()


def open_journal(config: pytest.Config, factory: TargetFactory) -> None:
    """--lkdh-journal starts a journal, --lkdh-resume continues one (and reads what it holds)."""
    journal, resume = config.option.lkdh_journal, config.option.lkdh_resume
    if journal is not None and resume is not None:
        raise pytest.UsageError("--lkdh-journal and --lkdh-resume are exclusive: resume appends to its FILE")
    state = JournalState()
    if resume is not None:
        try:
            state = read_journal(resume)
        except JournalError as error:
            raise pytest.UsageError(str(error)) from None
        # never collect a dump twice: what the journal has seen is known by name and hash
        factory.collected_before = state.collected
        factory.kept_copies = state.kept_copies
    config.stash[RESUMED_KEY] = state
    config.stash[JOURNAL_KEY] = None


def run_journal(config: pytest.Config) -> RunJournal | None:
    """The run's journal, opened at the first scenario (an xdist controller runs none, so it never
    opens one; its workers each append to the same file)."""
    path = config.option.lkdh_journal or config.option.lkdh_resume
    if path is None:
        return None
    opened = config.stash[JOURNAL_KEY]
    if opened is None:
        opened = config.stash[JOURNAL_KEY] = RunJournal(path)
        config.add_cleanup(opened.close)
    return opened
