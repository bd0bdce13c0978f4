"""A test that needs a tool .ci/run installs skips outside CI and fails under CI=true (required_tools.py)."""

from __future__ import annotations

import pytest

MISSING_IN_TEST = """\
from required_tools import require_tool

def test_uses_a_tool():
    require_tool("no-such-tool-lkdh", install="apt-get install nothing")
"""

MISSING_IN_FIXTURE = """\
import pytest
from required_tools import tool_missing

@pytest.fixture
def server():
    tool_missing("/usr/sbin/sshd not found (apt-get install openssh-server)")

def test_uses_the_server(server):
    pass

def test_an_ordinary_skip_stays_a_skip():
    pytest.skip("not about a tool")
"""


@pytest.mark.parametrize("ci", [None, "false", "0"])
def test_outside_ci_a_missing_tool_is_a_skip_with_the_install_hint(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(MISSING_IN_TEST)
    result = pytester.runpytest("-p", "required_tools", "-rs")
    result.assert_outcomes(skipped=1)
    assert "no-such-tool-lkdh not found (apt-get install nothing; .ci/run installs it)" in result.stdout.str()


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_under_ci_a_missing_tool_fails_in_the_test_and_errors_in_a_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_in_test=MISSING_IN_TEST, test_in_fixture=MISSING_IN_FIXTURE)
    result = pytester.runpytest("-p", "required_tools")
    result.assert_outcomes(failed=1, errors=1, skipped=1)
    text = result.stdout.str()
    assert "CI=true, but no-such-tool-lkdh not found" in text
    assert "CI=true, but /usr/sbin/sshd not found" in text
