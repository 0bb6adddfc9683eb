"""Accuracy floor on the eight Loghub-2k dev systems (a regression guard, not a benchmark)."""

import json
from pathlib import Path

import pytest

from benchmarks.bench_logs import DEFAULT_DATA, run_ours
from intelligence.logpatterns.headers import compile_log_format
from intelligence.logpatterns.scoring import read_truth, score

SETTINGS = json.loads((DEFAULT_DATA / "settings.json").read_text())["systems"]
DEV = [name for name, cfg in SETTINGS.items() if cfg["split"] == "dev"]


def _contents(log_file: Path, log_format: str) -> list[str]:
    header = compile_log_format(log_format)
    return [header.content(line) for line in log_file.read_text().splitlines()]


def test_all_eight_dev_systems_are_present() -> None:
    assert len(DEV) == 8
    for name in DEV:
        assert (DEFAULT_DATA / SETTINGS[name]["log_file"]).is_file(), name


@pytest.mark.parametrize("system", DEV)
def test_grouping_accuracy_floor(system: str) -> None:
    cfg = SETTINGS[system]
    log_file = DEFAULT_DATA / cfg["log_file"]
    truth = read_truth(log_file.with_name(log_file.name + "_structured.csv"))
    clusters, templates = run_ours(_contents(log_file, cfg["log_format"]))
    s = score(truth, clusters, templates)
    assert s.ga > 0.9, f"{system}: GA {s.ga:.3f}"
    assert s.pa > 0.6, f"{system}: PA {s.pa:.3f}"


def test_line_shape_cache_is_exact_on_real_lines() -> None:
    """Lines that differ only in digit values must mask exactly as if masked afresh."""
    import random

    from intelligence.logpatterns.masking import Masker

    rng = random.Random(0)
    lines: list[str] = []
    for system in DEV:
        cfg = SETTINGS[system]
        lines += _contents(DEFAULT_DATA / cfg["log_file"], cfg["log_format"])[:500]
    variants = [
        "".join(str(rng.randint(0, 9)) if ch.isdigit() else ch for ch in line) for line in lines
    ]
    cached, fresh = Masker(), Masker()
    for line in lines + variants:
        assert list(cached.mask_key(line)) == fresh.mask_line(line)[1], line


def test_rule_preselection_matches_the_full_rule_set_on_real_tokens() -> None:
    from intelligence.logpatterns import masking

    tokens = set()
    for system in DEV:
        cfg = SETTINGS[system]
        for line in _contents(DEFAULT_DATA / cfg["log_file"], cfg["log_format"]):
            tokens.update(line.split())
    extra = ["ab-12-cd-34", "v1.2.3", "0xdeadbeef", "deadbeef01", "KB1234567", "a_b_12", "x:1:2"]
    for token in [*tokens, *extra]:
        assert masking._rules_for(token).sub("<*>", token) == masking._VARIABLE.sub("<*>", token), (
            token
        )
