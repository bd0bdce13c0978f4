"""Under `pytest --alluredir`, scenario items get lkdh's own Allure results (the ones `lkdh run`
writes), not allure-pytest's.

allure-pytest reports every pytest item. For a scenario item lkdh writes the result itself
(`AllureScenarioResult`), and items skipped only because their target is not there (a `[vm]` item
without a VM, the other target under `--target`, a `hardware_only` scenario's `[sim]` item) are
left out, so a simulator-only report shows the simulator's results rather than a wall of skips.
To keep allure-pytest's own copy out, its file logger (the allure-commons plugin that writes
`*-result.json`) is wrapped: results marked with `ITEM_LABEL` whose item lkdh has claimed are
dropped with their attachment files; everything else (Python tests, a scenario item whose harness
raised, which then shows as broken with its traceback) is written as allure-pytest made it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import allure_commons
from allure_commons.logger import AllureFileLogger

ITEM_LABEL = "lkdh_item"
"""Label a scenario item puts on allure-pytest's result so the wrapper can find it (never written)."""


class ScenarioResultsFilter:
    """Stands in for allure-pytest's AllureFileLogger on allure-commons' plugin manager."""

    def __init__(self, inner: AllureFileLogger, results_dir: Path) -> None:
        self.inner = inner
        self.results_dir = results_dir
        self.claimed: set[str] = set()
        self.omitted: dict[str, str] = {}

    def claim(self, nodeid: str) -> None:
        """lkdh wrote this item's result: drop allure-pytest's."""
        self.claimed.add(nodeid)

    def omit(self, nodeid: str, reason: str) -> None:
        """This item is not run here (its target is absent): no result at all."""
        self.omitted[nodeid] = reason

    @allure_commons.hookimpl
    def report_result(self, result: Any) -> None:
        marks = [label for label in result.labels if label.name == ITEM_LABEL]
        for label in marks:
            result.labels.remove(label)
        if marks and (marks[0].value in self.claimed or marks[0].value in self.omitted):
            self._discard_attachments(result)
            return
        self.inner.report_result(result)

    @allure_commons.hookimpl
    def report_container(self, container: Any) -> None:
        self.inner.report_container(container)

    @allure_commons.hookimpl
    def report_attached_file(self, source: Any, file_name: str) -> None:
        self.inner.report_attached_file(source, file_name)

    @allure_commons.hookimpl
    def report_attached_data(self, body: Any, file_name: str) -> None:
        self.inner.report_attached_data(body, file_name)

    @allure_commons.hookimpl
    def report_globals(self, globals_item: Any) -> None:
        self.inner.report_globals(globals_item)

    def _discard_attachments(self, item: Any) -> None:
        """allure-pytest already wrote the dropped result's attachments (captured output)."""
        for attachment in item.attachments:
            (self.results_dir / attachment.source).unlink(missing_ok=True)
        for step in item.steps:
            self._discard_attachments(step)


def install(results_dir: Path) -> ScenarioResultsFilter | None:
    """Put the filter in place of the file logger allure-pytest registered for `results_dir`;
    returns None (with a warning) when no such logger is registered."""
    manager = allure_commons.plugin_manager
    wanted = results_dir.absolute()
    loggers = [
        plugin
        for plugin in manager.get_plugins()
        if isinstance(plugin, AllureFileLogger) and getattr(plugin, "_report_dir", None) == wanted
    ]
    if not loggers:
        warnings.warn(
            f"lkdh: no allure-pytest file logger writes to {wanted}; scenario items may appear twice",
            stacklevel=2,
        )
        return None
    inner = loggers[-1]
    name = manager.get_name(inner)
    manager.unregister(inner)
    installed = ScenarioResultsFilter(inner, wanted)
    manager.register(installed)

    def restore() -> None:
        """Before allure-pytest's own cleanup unregisters its logger by object: give it back."""
        manager.unregister(installed)
        manager.register(inner, name)

    installed.restore = restore  # type: ignore[attr-defined]
    return installed
