"""Header formats and the GA/FGA/PA/FTA scorer."""

import pytest

from intelligence.logpatterns.headers import compile_log_format
from intelligence.logpatterns.scoring import score


def test_log_format_extracts_content_with_regex_fragments() -> None:
    fmt = compile_log_format(r"<Month> <Date> <Time> <Level> <Component>(\[<PID>\])?: <Content>")
    line = "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown"
    assert fmt.content(line) == "check pass; user unknown"
    assert fmt.parse(line)["PID"] == "19939"


def test_line_that_does_not_fit_is_mined_whole() -> None:
    fmt = compile_log_format("<Date> <Time> <Level>: <Content>")
    assert fmt.content("garbage") == "garbage"


def test_format_without_content_is_refused() -> None:
    with pytest.raises(ValueError, match="Content"):
        compile_log_format("<Date> <Time>")


def test_scores_on_a_hand_made_case() -> None:
    truth = ["A <*>", "A <*>", "B", "C <*>"]
    # A split into two clusters; B and C correct; C's template text wrong
    s = score(truth, [1, 2, 3, 4], ["A <*>", "A x", "B", "C y"])
    assert s.ga == pytest.approx(0.5)
    assert s.pa == pytest.approx(0.5)
    assert s.fga == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))
    assert s.fta == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))


def test_merged_groups_are_wrong_for_all_their_lines() -> None:
    s = score(["A", "B", "B"], [1, 1, 1], ["X", "X", "X"])
    assert s.ga == 0.0
    assert s.fga == 0.0
