"""Leave-one-out in the log benchmark: a system's own scores never choose its parameters."""

from benchmarks.bench_logs import GRID, grid_configs, leave_one_out
from intelligence.logpatterns.miner import MinerConfig
from intelligence.logpatterns.scoring import Scores


def _s(ga: float, pa: float = 0.5) -> Scores:
    return Scores(ga=ga, fga=ga, pa=pa, fta=ga, lines=10, true_groups=1, pred_groups=1)


def test_held_out_system_is_scored_with_the_config_the_others_chose() -> None:
    configs = [{"min_distinct": 3}, {"min_distinct": 2}]
    matrix = [
        {"A": _s(0.50), "B": _s(0.90), "C": _s(0.90)},  # config 0: bad on A only
        {"A": _s(1.00), "B": _s(0.80), "C": _s(0.80)},  # config 1: great on A only
    ]
    rows = {r.held_out: r for r in leave_one_out(matrix, configs)}
    # A held out: B and C prefer config 0, so A is scored with config 0 (its worse one).
    assert rows["A"].chosen == {"min_distinct": 3}
    assert rows["A"].scores.ga == 0.50
    assert rows["A"].train_ga == 0.90
    # B held out: on A and C config 0 averages 0.70 and config 1 0.90, so config 1.
    assert rows["B"].chosen == {"min_distinct": 2}
    assert rows["B"].scores.ga == 0.80


def test_ties_go_to_the_earlier_config_then_pa_decides() -> None:
    configs = [{"min_distinct": 3}, {"min_distinct": 2}, {"min_distinct": 4}]
    matrix = [
        {"A": _s(0.9, 0.5), "B": _s(0.9, 0.5)},
        {"A": _s(0.9, 0.5), "B": _s(0.9, 0.5)},
        {"A": _s(0.9, 0.6), "B": _s(0.9, 0.6)},
    ]
    rows = leave_one_out(matrix, configs)
    assert all(r.chosen == {"min_distinct": 4} for r in rows)  # same GA, better PA
    rows = leave_one_out(matrix[:2], configs[:2])
    assert all(r.chosen == {"min_distinct": 3} for r in rows)  # full tie: the earlier one


def test_grid_starts_with_the_shipped_default_and_covers_every_combination() -> None:
    configs = grid_configs()
    default = MinerConfig()
    assert configs[0] == {k: getattr(default, k) for k in GRID}
    expected = 1
    for values in GRID.values():
        expected *= len(values)
    assert len({tuple(sorted(c.items())) for c in configs}) == expected


def test_few_values_variant_keeps_two_values_per_variable_and_the_constants() -> None:
    from benchmarks.bench_logs import few_values_variant

    template = "session opened for user <*> by (uid=<*>)"
    users = ["ann", "bob", "cid", "dee", "eve"]
    contents = [f"session opened for user {u} by (uid={i})" for i, u in enumerate(users)]
    out = few_values_variant(contents, [template] * len(users), keep=2)
    assert out[:2] == contents[:2]
    names = {line.split()[4] for line in out}
    uids = {line.split("uid=")[1] for line in out}
    assert names == {"ann", "bob"} and uids == {"0)", "1)"}
    assert all(line.startswith("session opened for user ") for line in out)
    # A line that does not fit its template is left alone.
    assert few_values_variant(["other text"], [template]) == ["other text"]
