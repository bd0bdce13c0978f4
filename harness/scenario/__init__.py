"""The scenario language: YAML files of scenarios, loaded into pydantic models with file:line:col errors.

`model` defines the language (v1); `loader` reads files; `semantics` checks a scenario as a whole;
`schema` exports the JSON Schema for editors; `check` backs `lkdh check`.
"""

from harness.scenario.check import CheckReport, check_paths, format_check_report
from harness.scenario.errors import Location, ScenarioError, ScenarioErrors
from harness.scenario.loaded import LoadedScenario
from harness.scenario.loader import load_scenario_file, load_scenarios
from harness.scenario.model import Scenario
from harness.scenario.schema import scenario_json_schema

__all__ = [
    "CheckReport",
    "LoadedScenario",
    "Location",
    "Scenario",
    "ScenarioError",
    "ScenarioErrors",
    "check_paths",
    "format_check_report",
    "load_scenario_file",
    "load_scenarios",
    "scenario_json_schema",
]
