"""Published expectations as data: a study's `report.expectations`, checked before any work starts.

    report:
      expectations:
        - cell: no_forget_gate      # the conf/cell name the claim is about
          task: adding              # optional: task name; default = every task of the study
          claim: "NFG significantly hurts on all three datasets"
          source: "Greff et al. 2017, Sec. V-A / Fig. 3"
          tag: V                    # V checked against the paper | S secondary | U unverified
          expect: worse             # solves | fails | worse | not_worse | better | matches
          value: null               # the published number, for `matches`
          tolerance: null           # optional, for `matches`: |median - value| <= tolerance agrees;
                                    # default: the value lies inside the median's 95% interval

`worse / not_worse / better` are relative to the study's reference cell (`report.reference`);
`solves / fails` are about the task's solved threshold. The report (report/literature.py) sets each
one beside what the runs found.
"""
from __future__ import annotations

from typing import Any

from .spec import ConfigError, available_variants, is_number

EXPECTS = ("solves", "fails", "worse", "not_worse", "better", "matches")
TAGS = ("V", "S", "U")
REQUIRED = ("cell", "claim", "source", "tag", "expect")
OPTIONAL = ("task", "value", "tolerance")


def parse(expectations: Any, field: str = "report.expectations") -> list[dict[str, Any]]:
    """The validated list (every key present, optional ones None); ConfigError names the entry and key."""
    from .tasks import TASKS

    if expectations is None:
        return []
    if not isinstance(expectations, (list, tuple)):
        raise ConfigError(f"{field}: got {type(expectations).__name__}; allowed: a list of mappings with keys "
                          f"{', '.join(REQUIRED + OPTIONAL)}")
    out = []
    for i, entry in enumerate(expectations):
        where = f"{field}[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: got {entry!r}; allowed: a mapping with keys {', '.join(REQUIRED + OPTIONAL)}")
        unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(REQUIRED + OPTIONAL)}")
        for key in REQUIRED:
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ConfigError(f"{where}.{key}: got {entry.get(key)!r}; allowed: a non-empty string")
        item = {key: entry.get(key) for key in REQUIRED + OPTIONAL}
        if item["cell"] not in available_variants():
            raise ConfigError(f"{where}.cell: unknown cell {item['cell']!r}; allowed: {', '.join(available_variants())}")
        if item["task"] is not None and item["task"] not in TASKS:
            raise ConfigError(f"{where}.task: unknown task {item['task']!r}; allowed: {', '.join(sorted(TASKS))} or null (every task)")
        if item["tag"] not in TAGS:
            raise ConfigError(f"{where}.tag: got {item['tag']!r}; allowed: {', '.join(TAGS)}")
        if item["expect"] not in EXPECTS:
            raise ConfigError(f"{where}.expect: got {item['expect']!r}; allowed: {', '.join(EXPECTS)}")
        for key in ("value", "tolerance"):
            value = item[key]
            if value is not None and not is_number(value):
                raise ConfigError(f"{where}.{key}: got {value!r}; allowed: a number or null")
        if item["expect"] == "matches" and item["value"] is None:
            raise ConfigError(f"{where}.value: expect 'matches' needs the published number; allowed: a number")
        if item["tolerance"] is not None and item["tolerance"] < 0:
            raise ConfigError(f"{where}.tolerance: got {item['tolerance']!r}; allowed: a number >= 0 or null")
        out.append(item)
    return out


def from_study_yaml(path) -> list[dict[str, Any]]:
    """`report.expectations` of a study file (experiments/<name>.yaml), validated."""
    from pathlib import Path

    import yaml

    try:
        study = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read it as YAML ({type(e).__name__}); expected a study file such as "
                          "experiments/seed_gates.yaml") from None
    report = study.get("report") if isinstance(study, dict) else None
    return parse((report or {}).get("expectations") if isinstance(report, dict) else None, f"{path}: report.expectations")
