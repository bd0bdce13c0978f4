"""The pytest plugin as users meet it: items per target, markers, failures, Allure results."""

from __future__ import annotations

import json

import pytest
from scenario_texts import DEFECT, FAILING, PASSING


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    folder = pytester.mkdir("scenarios")
    (folder / "passes.yaml").write_text(PASSING)
    (folder / "fails.yaml").write_text(FAILING)
    (folder / "defect.yaml").write_text(DEFECT)
    return pytester


def test_each_scenario_is_one_item_per_target(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--collect-only", "-q", "scenarios")
    ids = [line for line in result.outlines if "::" in line]
    assert "scenarios/passes.yaml::passes[sim]" in ids
    assert "scenarios/passes.yaml::passes[vm]" in ids
    assert len(ids) == 6


def test_outcomes_and_failure_evidence(suite: pytest.Pytester) -> None:
    result = suite.runpytest("scenarios", "-rA", "--lkdh-out", str(suite.path / "out"))
    result.assert_outcomes(passed=1, failed=1, xfailed=1, skipped=3)
    text = result.stdout.str()
    assert "fails.yaml:7:" in text and "does not contain a" in text
    assert "known defect remove-null-context reproduced" in text
    assert "no Windows VM configured" in text
    assert "Traceback" not in text
    record = json.loads((suite.path / "out" / "run-record.json").read_text())
    assert {s["scenario"]: s["outcome"] for s in record["scenarios"]} == {
        "defect": "xfailed",
        "fails": "failed",
        "passes": "passed",
    }


def test_contract_profile_turns_the_defect_into_a_pass(suite: pytest.Pytester) -> None:
    result = suite.runpytest("scenarios/defect.yaml", "--sim-profile", "contract")
    result.assert_outcomes(passed=1, skipped=1)


def test_known_defect_that_does_not_reproduce_fails(suite: pytest.Pytester) -> None:
    # A Remove with the wrong size matches nothing (F12), so the defective callback never runs.
    no_match = DEFECT.replace("  - remove: a\n", "  - remove: {buffer: a, length: 8}\n")
    (suite.path / "scenarios" / "defect.yaml").write_text(no_match.replace("excludes", "contains"))
    result = suite.runpytest("scenarios/defect.yaml")
    result.assert_outcomes(failed=1, skipped=1)
    assert "did not reproduce" in result.stdout.str()


def test_hardware_marker_without_vm_skips_with_reason(suite: pytest.Pytester) -> None:
    result = suite.runpytest("scenarios", "-m", "hardware", "-rs")
    result.assert_outcomes(skipped=3)
    assert "no Windows VM configured: pass --target-config" in result.stdout.str()


def test_sim_marker_selects_simulator_items(suite: pytest.Pytester) -> None:
    result = suite.runpytest("scenarios", "-m", "sim")
    result.assert_outcomes(passed=1, failed=1, xfailed=1)


def test_tags_select_with_k(suite: pytest.Pytester) -> None:
    result = suite.runpytest("scenarios", "-k", "smoke", "--target", "sim")
    result.assert_outcomes(passed=1, skipped=1)


def test_broken_yaml_is_a_collection_error_with_position(pytester: pytest.Pytester) -> None:
    folder = pytester.mkdir("scenarios")
    (folder / "broken.yaml").write_text("name: broken\nsteps:\n  - stroe: a\n")
    result = pytester.runpytest("scenarios")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str()
    assert "broken.yaml:3:" in text
    assert "Traceback" not in text


def test_allure_gets_one_step_per_yaml_step_and_dump_attachments(suite: pytest.Pytester) -> None:
    results = suite.path / "allure-results"
    suite.runpytest("scenarios/passes.yaml", "--alluredir", str(results))
    documents = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    (passed,) = [d for d in documents if d["name"] == "passes[sim]"]
    assert len(passed["steps"]) == 3
    assert passed["steps"][2]["name"].startswith("3. create bugcheck 0x1A2")
    create_step = passed["steps"][2]
    attachments = [a["name"] for a in create_step.get("attachments", [])]
    assert any(name.startswith("live dump ") for name in attachments), attachments
    labels = {(label["name"], label["value"]) for label in passed["labels"]}
    assert ("story", "passes") in labels
    environment = (results / "environment.properties").read_text()
    assert "sim_profile=dmf-bfac434" in environment and "targets=sim" in environment
    categories = json.loads((results / "categories.json").read_text())
    assert categories[0]["name"].startswith("Known DMF defects")


def test_allure_categories_sort_a_reproduced_defect_apart(suite: pytest.Pytester) -> None:
    """The xfail message of a reproduced defect matches the first category, a product failure's does not."""
    import re

    from harness.report.allure_files import CATEGORIES

    results = suite.path / "allure-results"
    suite.runpytest("scenarios/defect.yaml", "scenarios/fails.yaml", "--alluredir", str(results))
    documents = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    by_name = {d["name"]: d for d in documents}
    defect, failure = by_name["defect[sim]"], by_name["fails[sim]"]
    known = re.compile(CATEGORIES[0]["messageRegex"])
    assert defect["status"] == "skipped" and known.fullmatch(defect["statusDetails"]["message"])
    assert failure["status"] == "failed" and not known.fullmatch(failure["statusDetails"]["message"])


def test_python_tests_get_target_and_run_scenario_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from harness.target.ops import Alloc

        def test_fixtures(target, run_scenario):
            assert target.execute(Alloc("x", 8, b"x")).address > 0xFFFF000000000000
            (record,) = run_scenario("name: inline\\nsteps:\\n  - create: {bugcheck_code: 1}\\n")
            assert record.outcome == "passed"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_parallel_workers_keep_one_run_record_each(suite: pytest.Pytester) -> None:
    result = suite.runpytest("scenarios", "-n", "2", "--lkdh-out", str(suite.path / "out"))
    result.assert_outcomes(passed=1, failed=1, xfailed=1, skipped=3)
    records = sorted((suite.path / "out").glob("run-record-gw*.json"))
    assert records, "each xdist worker writes run-record-<worker>.json"
    scenarios = [s["scenario"] for r in records for s in json.loads(r.read_text())["scenarios"]]
    assert sorted(scenarios) == ["defect", "fails", "passes"]


def test_sim_target_config_runs_sim_items_with_its_profile_and_skips_vm(suite: pytest.Pytester) -> None:
    (suite.path / "sim.yaml").write_text("kind: sim\nprofile: contract\n")
    result = suite.runpytest("scenarios/defect.yaml", "-rs", "--target-config", "sim.yaml")
    result.assert_outcomes(passed=1, skipped=1)  # the defect does not reproduce on contract: it passes
    assert "describes the simulator (kind: sim), not a Windows VM" in result.stdout.str()
