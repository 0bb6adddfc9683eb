"""Alert storms for the correlation benchmark: deterministic, sized, with ground truth."""

from collections import Counter

import numpy as np

from benchmarks.bench_correlation import (
    alertmanager_group_by,
    fingerprint_only,
    noise_set_apart,
    score,
    timing_oracle,
)
from lab.storms import (
    Storm,
    StormShape,
    _Builder,
    estate_seed,
    estate_topology,
    generate_storm,
    history,
    layered_topology,
    profile,
    reachable,
)

SHOP = estate_topology()


def test_storm_is_deterministic_sized_and_labelled():
    shape = StormShape(target_alerts=1500)
    one, two = generate_storm(SHOP, 7, shape), generate_storm(SHOP, 7, shape)
    assert one.alerts == two.alerts
    assert len(one.alerts) == 1500
    assert one.alerts == sorted(one.alerts, key=lambda a: (a.at, a.fingerprint, a.status))
    truths = Counter(a.truth.split("-")[0] for a in one.alerts)
    assert {"fault", "infra", "node", "noise", "flap"} <= set(truths)
    assert generate_storm(SHOP, 8, shape).alerts != one.alerts


def test_concurrent_faults_have_independent_roots_and_propagate_upstream():
    topology = layered_topology(5, 30)
    storm = generate_storm(topology, 3, StormShape(faults=4, infra_faults=0, node_faults=0))
    roots = {a.truth.split(":")[1] for a in storm.alerts if a.truth.startswith("fault")}
    for root in roots:
        assert not (reachable(topology, root) & roots)
    for alert in storm.alerts:
        if alert.truth.startswith("fault") and alert.service:
            root = alert.truth.split(":")[1]
            assert alert.service == root or root in reachable(topology, alert.service)


def test_flapping_alerts_resolve_and_fire_again_with_one_truth():
    storm = generate_storm(SHOP, 2, StormShape(flapping=4))
    resolved = {a.fingerprint for a in storm.alerts if a.status == "resolved"}
    assert resolved
    for fp in resolved:
        states = [a.status for a in storm.alerts if a.fingerprint == fp]
        assert "resolved" in states and states[-1] == "firing"
        assert len({a.truth for a in storm.alerts if a.fingerprint == fp}) == 1


def test_history_is_past_incidents_of_the_same_estate():
    past = history(SHOP, seed=1, storms=3)
    assert past and all(alerts for _, alerts in past)
    assert len({at for at, _ in past}) == 3


def test_pairwise_scores_and_baselines_on_a_known_grouping():
    storm = generate_storm(SHOP, 4, StormShape(target_alerts=600))
    firing = [i for i, a in enumerate(storm.alerts) if a.status == "firing"]
    perfect = score(storm, {i: storm.alerts[i].truth for i in firing})
    assert (perfect["precision"], perfect["recall"], perfect["f1"], perfect["ari"]) == (1, 1, 1, 1)
    lumped = score(storm, {i: "all" for i in firing})
    assert lumped["recall"] == 1 and lumped["precision"] < 0.5 and lumped["ari"] == 0
    assert lumped["compression"] == 1 - 1 / len(firing)
    assert score(storm, fingerprint_only(storm))["precision"] == 1.0
    assert score(storm, alertmanager_group_by(storm))["recall"] < 1.0


def test_an_alert_two_faults_raise_belongs_to_the_one_that_raised_it_first():
    storm = Storm(seed=0, shape=StormShape(), topology={})
    builder = _Builder(storm, np.random.default_rng(0), profile({}, 0))
    builder.fire("HighErrorRate", "critical", "{s}", "gateway", 20.0, "fault-0:cart")
    builder.fire("HighErrorRate", "critical", "{s}", "gateway", 12.0, "fault-1:auth")
    builder.fire("HighErrorRate", "critical", "{s}", "gateway", 30.0, "fault-2:search")
    assert [(a.at, a.truth) for a in storm.alerts] == [(12.0, "fault-1:auth")]


def test_every_notification_of_an_alert_has_one_truth():
    storm = generate_storm(SHOP, 12, StormShape(faults=5, overlap_s=15, flapping=12))
    truths: dict[str, set[str]] = {}
    for alert in storm.alerts:
        truths.setdefault(alert.fingerprint, set()).add(alert.truth)
    assert all(len(t) == 1 for t in truths.values())


def test_shared_resource_faults_stay_independent_of_the_other_faults():
    for seed in range(6):
        storm = generate_storm(SHOP, seed, StormShape(faults=4, node_faults=0))
        roots = {a.truth.split(":")[1] for a in storm.alerts if a.truth.startswith("fault")}
        members = {
            a.service
            for a in storm.alerts
            if a.truth.startswith("infra") and a.labels.get("upstream") == a.truth.split(":")[1]
        }
        for member in members:
            assert member not in roots
            assert not (reachable(SHOP, member) & roots)
            assert not any(member in reachable(SHOP, root) for root in roots)


def test_storm_records_each_faults_failing_services():
    storm = generate_storm(SHOP, 11, StormShape())
    couplings = dict(profile(SHOP, estate_seed(SHOP)).couplings)
    faults = {a.truth for a in storm.alerts if a.truth.startswith(("fault", "infra"))}
    assert set(storm.roots) == faults
    for truth, roots in storm.roots.items():
        kind, _, name = truth.partition(":")
        assert roots == ((name,) if kind.startswith("fault") else couplings[name])


def test_reference_rows_read_the_truth_only_where_they_say():
    storm = generate_storm(SHOP, 11, StormShape())
    everything_together = {i: "one" for i, a in enumerate(storm.alerts) if a.status == "firing"}
    apart = noise_set_apart(storm, everything_together)
    for index, label in apart.items():
        fault = storm.alerts[index].truth in storm.roots
        assert label == ("one" if fault else storm.alerts[index].truth)
    # one fault and nothing else: no race to lose, so the oracle is exact
    lone = generate_storm(
        SHOP, 5, StormShape(faults=1, infra_faults=0, node_faults=0, noise=0, flapping=0)
    )
    assert score(lone, timing_oracle(lone))["f1"] == 1.0
    # five at once on twelve services: it decides the shared callers itself and loses
    # some of those races
    dense = generate_storm(SHOP, 12, StormShape(faults=5, overlap_s=15, noise=30))
    assert score(dense, timing_oracle(dense))["f1"] < 0.9
