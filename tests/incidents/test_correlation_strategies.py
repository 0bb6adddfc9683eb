"""Each correlation strategy on plain data: what it groups, what it refuses, and why."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from incidents.correlation import (
    AlertFacts,
    AlertKinds,
    CorrelationRule,
    Correlator,
    IncidentFacts,
    Kind,
    LabelMatcher,
    Membership,
    Topology,
    build_correlator,
    fit,
    parse_rules,
)
from incidents.correlation.cooccurrence import CooccurrenceModel, Feedback, cause_key
from incidents.correlation.rules import RuleStrategy, load_rules, parse_duration
from incidents.correlation.similarity import TextSimilarity, alert_text
from incidents.correlation.strategies import SameCheck, check_of
from incidents.correlation.topology import TopologyStrategy
from incidents.correlation.types import Action

T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
SHOP = {
    "frontend": ["checkout", "search"],
    "checkout": ["payments", "inventory"],
    "payments": ["payments-db"],
    "inventory": ["inventory-db"],
    "search": ["search-index"],
    "payments-db": [],
    "inventory-db": [],
    "search-index": [],
}
KINDS = AlertKinds()


def alert(n, name="HighErrorRate", service="checkout", at=0.0, status="firing", **labels):
    facts = AlertFacts(
        id=n,
        fingerprint=labels.pop("fp", f"fp{n}"),
        name=name,
        status=status,
        starts_at=T0 + timedelta(seconds=at),
        received_at=T0 + timedelta(seconds=at),
        labels={"alertname": name, "service": service, **labels},
        annotations={"summary": f"{service}: {name}"},
        service=service,
    )
    return replace(facts, kind=KINDS.of(facts))


def run(alerts, correlator=None, incidents=()):
    correlator = correlator or build_correlator(topology=Topology(SHOP))
    return correlator.run(alerts, incidents, now=alerts[-1].received_at)


# --- rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("matcher", "value", "expected"),
    [
        ('severity="info"', "info", True),
        ('severity!="info"', "info", False),
        ('alertname=~"Node.*"', "NodeDown", True),
        ('alertname=~"Node"', "NodeDown", False),  # anchored, as in Prometheus
        ('alertname!~"Node.*"', "HighErrorRate", True),
    ],
)
def test_label_matchers_follow_prometheus_semantics(matcher, value, expected):
    parsed = LabelMatcher.parse(matcher)
    assert parsed.matches({parsed.label: value}) is expected


def test_rules_load_from_yaml_and_reject_mistakes(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(
        "rules:\n"
        "  - name: nodes\n"
        "    matchers: ['node=~\".+\"']\n"
        "    group_by: [node]\n"
        "    window: 30m\n"
        "    min_alerts: 2\n"
    )
    (rule,) = load_rules(path)
    assert (rule.group_by, rule.window, rule.min_alerts, rule.reuse_resolved) == (
        ("node",),
        timedelta(minutes=30),
        2,
        False,
    )
    assert parse_duration("1h30m") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="unknown keys"):
        parse_rules([{"name": "x", "groupby": ["a"]}])
    with pytest.raises(ValueError, match="duplicate"):
        parse_rules([{"name": "x"}, {"name": "x"}])
    with pytest.raises(ValueError, match="invalid regex"):
        parse_rules([{"name": "x", "matchers": ['a=~"("']}])


def test_repository_rules_file_is_valid():
    rules = load_rules("correlation-rules.yml")
    assert {r.name for r in rules} >= {"node-failure", "certificates", "batch-jobs"}


NODE_RULE = CorrelationRule(
    "nodes", (LabelMatcher("node", "=~", ".+"),), ("node",), timedelta(minutes=30)
)


def test_rule_groups_by_label_and_says_which_rule():
    correlator = Correlator([RuleStrategy([NODE_RULE])])
    decisions = run(
        [
            alert(1, "KubePodNotReady", "checkout", node="n1"),
            alert(2, "KubePodNotReady", "search", at=12, node="n1"),
            alert(3, "KubePodNotReady", "search", at=13, node="n2"),
        ],
        correlator,
    )
    assert [d.action for d in decisions] == [Action.OPEN, Action.ATTACH, Action.OPEN]
    assert decisions[1].incident_id == decisions[0].incident_id
    assert decisions[1].reason == "rule nodes: same node=n1, 12 s after the first alert"


def test_rule_min_alerts_holds_candidates_then_opens_with_them():
    rule = replace(NODE_RULE, min_alerts=3)
    correlator = Correlator([RuleStrategy([rule])])
    decisions = run(
        [
            alert(1, "KubePodNotReady", node="n1"),
            alert(2, "KubePodNotReady", node="n1", fp="fp1"),  # the same alert again
            alert(3, "KubePodNotReady", node="n1", at=5),
            alert(4, "KubePodNotReady", node="n1", at=9),
        ],
        correlator,
    )
    assert [d.action for d in decisions] == [Action.HOLD, Action.HOLD, Action.HOLD, Action.OPEN]
    assert "2 of 3 alerts" in decisions[2].reason
    assert decisions[3].promoted == (1, 3)
    assert "3 alerts with node=n1" in decisions[3].reason


def test_rule_reuse_of_resolved_incident_is_opt_in():
    resolved = IncidentFacts(
        7, "resolved", T0, T0, group_keys={"rule:nodes:node=n1"}, resolved_at=T0, rule="nodes"
    )
    late = alert(1, "KubePodNotReady", at=600, node="n1")
    never = Correlator([RuleStrategy([NODE_RULE])]).decide(late, [resolved], late.received_at)
    assert never.action is Action.OPEN
    reuse = Correlator([RuleStrategy([replace(NODE_RULE, reuse_resolved=True)])])
    decision = reuse.decide(late, [resolved], late.received_at)
    assert (decision.action, decision.incident_id) == (Action.REOPEN, 7)


def test_default_pipeline_never_reopens_a_resolved_incident_for_a_new_alert():
    resolved = IncidentFacts(
        3, "resolved", T0, T0, services={"checkout"}, fingerprints={"old"}, resolved_at=T0
    )
    fresh = alert(1, at=60)
    decision = build_correlator(topology=Topology(SHOP)).decide(fresh, [resolved], T0)
    assert decision.action is Action.OPEN


def test_same_check_on_another_replica_joins_its_incident():
    decisions = run(
        [
            alert(1, "HighErrorRate", "search", pod="a"),
            alert(2, "HighErrorRate", "search", at=4, pod="b"),
            alert(3, "HighErrorRate", "search", at=5, pod="c", status="resolved"),
        ]
    )
    assert decisions[1].incident_id == decisions[0].incident_id
    assert decisions[1].strategy == "same_check"
    assert "fires on other replicas in this incident" in decisions[1].reason
    assert decisions[2].action is Action.IGNORE  # a resolution never joins anything


def test_a_check_is_the_alert_less_the_replica_it_fired_on():
    critical = alert(1, pod="checkout-a", severity="critical")
    assert check_of(critical) == check_of(alert(2, pod="checkout-b", severity="critical"))
    assert check_of(critical) == check_of(alert(3, instance="10.0.0.7:9100", severity="critical"))
    assert check_of(critical) != check_of(alert(4, pod="checkout-a", severity="warning"))
    timeouts = [alert(5, "UpstreamTimeouts", upstream=dep) for dep in ("payments", "inventory")]
    assert check_of(timeouts[0]) != check_of(timeouts[1])
    assert check_of(alert(6, "HighErrorRate", "checkout")) == "HighErrorRate@checkout"


def test_same_check_refuses_another_severity_or_another_dependency():
    """A warning-level blip on one pod is not the critical failure firing on the others,
    and timeouts towards two dependencies are two failures."""
    held = [
        alert(1, pod="a", severity="critical"),
        alert(2, "UpstreamTimeouts", upstream="payments"),
    ]
    incident = IncidentFacts(
        id=7, status="triggered", opened_at=T0, last_alert_at=T0, checks={*map(check_of, held)}
    )
    same = SameCheck()
    assert (
        same.decide(alert(3, pod="b", severity="critical", at=3), [incident], T0).incident_id == 7
    )
    assert same.decide(alert(4, pod="b", severity="warning", at=3), [incident], T0) is None
    other = alert(5, "UpstreamTimeouts", at=3, upstream="inventory")
    assert same.decide(other, [incident], T0) is None


# --- topology -------------------------------------------------------------------------


def test_topology_hops_and_probable_origin():
    topo = Topology(SHOP)
    assert topo.hops("frontend", "payments-db") == 3
    assert topo.hops("payments-db", "frontend") is None
    assert topo.probable_origin(["frontend", "checkout", "payments"]) == "payments"


def test_symptoms_upstream_join_the_incident_of_their_dependency():
    decisions = run(
        [
            alert(1, "KubePodCrashLooping", "payments"),
            alert(2, "KubePodCrashLooping", "payments", at=2),
            alert(3, "HighErrorRate", "checkout", at=20),
            alert(4, "HighLatencyP99", "frontend", at=38),
        ]
    )
    assert len({d.incident_id for d in decisions}) == 1
    assert decisions[3].reason == (
        "frontend → payments dependency (2 hops), 38 s after the first alert; "
        "probable origin payments"
    )
    assert decisions[3].origin_service == "payments"


def test_deeper_cause_becomes_the_probable_origin():
    decisions = run(
        [
            alert(1, "HighErrorRate", "checkout"),
            alert(2, "DatastoreConnectionsSaturated", "payments-db", at=9),
        ]
    )
    assert decisions[1].action is Action.ATTACH
    assert decisions[1].origin_service == "payments-db"
    assert "payments-db may be the cause" in decisions[1].reason


def test_a_lone_symptom_below_the_origin_does_not_take_the_incident_over():
    decisions = run(
        [
            alert(1, "HighErrorRate", "checkout"),
            alert(2, "HighLatencyP99", "payments-db", at=5),  # a slow query of its own
            alert(3, "DatastoreConnectionsSaturated", "inventory-db", at=8),
        ]
    )
    assert decisions[1].action is Action.OPEN
    assert decisions[2].incident_id == decisions[0].incident_id
    assert decisions[2].origin_service == "inventory-db"


def test_unrelated_services_and_own_failures_stay_apart():
    decisions = run(
        [
            alert(1, "KubePodCrashLooping", "payments"),
            alert(2, "KubePodCrashLooping", "payments", at=1),
            alert(3, "HighErrorRate", "search", at=5),  # no dependency path
            alert(4, "KubePodCrashLooping", "checkout", at=6),  # checkout failing itself
            alert(5, "CertificateExpiringSoon", "payments-db", at=7),  # housekeeping
        ]
    )
    assert len({d.incident_id for d in decisions}) == 4


def test_lone_noise_alert_on_a_shared_dependency_does_not_swallow_an_outage():
    decisions = run(
        [
            alert(1, "HighLatencyP99", "payments", pod="payments-2"),  # one stray replica
            alert(2, "HighErrorRate", "frontend", at=30),  # a different outage above it
        ]
    )
    assert decisions[1].action is Action.OPEN


def test_a_service_wide_alert_is_enough_for_its_direct_callers():
    """One replica's alert may be that replica's trouble; a service-wide check failing
    (no pod or instance label) is the service failing, so its callers' symptoms join."""
    service_wide = run([alert(1, "HighErrorRate", "payments"), alert(2, at=20)])
    assert service_wide[1].incident_id == service_wide[0].incident_id
    assert "checkout → payments" in service_wide[1].reason
    one_pod = run([alert(1, "HighErrorRate", "payments", pod="payments-1"), alert(2, at=20)])
    assert one_pod[1].action is Action.OPEN


def test_a_caller_goes_with_the_failure_that_reached_its_door_first():
    """Two failures below one caller: its first symptom goes with the one whose failure
    reached its dependency earlier; a new check well after that burst is the other
    failure arriving, once it has had time to travel; the rest of that burst follows it."""
    topology = Topology({"gateway": ["cart", "auth"], "cart": [], "auth": []})
    decisions = run(
        [
            alert(1, "KubePodCrashLooping", "cart", at=0, pod="cart-1"),
            alert(2, "KubePodCrashLooping", "auth", at=20, pod="auth-1"),
            alert(3, "HighErrorRate", "gateway", at=30, pod="gateway-1"),
            alert(4, "HighLatencyP99", "gateway", at=50, pod="gateway-1"),
            alert(5, "SLOErrorBudgetBurn", "gateway", at=55),
        ],
        build_correlator(topology=topology),
    )
    cart, auth = decisions[0].incident_id, decisions[1].incident_id
    assert cart != auth
    assert decisions[2].incident_id == cart
    assert "cart failed 30 s before" in decisions[2].reason
    assert decisions[3].incident_id == auth
    assert "auth failed 30 s before" in decisions[3].reason
    assert decisions[4].incident_id == auth


def test_housekeeping_on_a_dependency_does_not_pull_in_a_symptom_above_it():
    # the demo: DiskSpaceLow on the database opened an incident, then a bad deploy's
    # HighErrorRate on payments followed the payments → database edge into it
    stored = IncidentFacts(
        7,
        "triggered",
        T0,
        T0,
        services={"payments-db"},
        alert_names={"DiskSpaceLow"},
        checks={"DiskSpaceLow@payments-db"},
        origin_service="payments-db",
        root_services={"payments-db"},
        alert_count=1,
    )
    decisions = run(
        [
            alert(2, "HighErrorRate", "payments", at=20, pod="a"),
            alert(3, "HighErrorRate", "payments", at=21, pod="b"),
        ],
        incidents=[stored],
    )
    assert decisions[0].action is Action.OPEN
    assert decisions[1].incident_id == decisions[0].incident_id


def test_symptom_incidents_on_two_branches_merge_when_their_cause_alerts():
    decisions = run(
        [
            alert(1, "HighErrorRate", "payments"),
            alert(2, "HighErrorRate", "inventory", at=3),
            alert(3, "DatastoreConnectionsSaturated", "payments-db", at=8),
        ],
        incidents=(),
        correlator=build_correlator(topology=Topology({**SHOP, "inventory": ["payments-db"]})),
    )
    assert decisions[0].incident_id != decisions[1].incident_id
    assert decisions[2].origin_service == "payments-db"
    assert set(decisions[2].merges) | {decisions[2].incident_id} == {
        decisions[0].incident_id,
        decisions[1].incident_id,
    }


def test_a_caller_of_two_failing_dependencies_follows_the_named_one_then_timing():
    at = T0 + timedelta(seconds=10)
    checkout = IncidentFacts(
        "a", "triggered", T0, at, services={"checkout", "frontend"}, origin_service="checkout",
        service_alerts={"checkout": 3, "frontend": 2}, service_seen={"frontend": at},
    )  # fmt: skip
    search = IncidentFacts(
        "b", "triggered", T0, T0, services={"search"}, origin_service="search",
        service_alerts={"search": 3},
    )  # fmt: skip
    decisions = run(
        [
            alert(1, "UpstreamTimeouts", "frontend", at=27, upstream="search"),
            alert(2, "HighLatencyP99", "frontend", at=27.5),
        ],
        incidents=[checkout, search],
    )
    assert decisions[0].incident_id == "b"
    assert "names search as the dependency" in decisions[0].reason
    assert decisions[1].incident_id == "b"


def test_equally_near_incidents_are_a_tie_for_the_tie_breakers():
    strategy = TopologyStrategy(Topology(SHOP))
    a = IncidentFacts("a", "triggered", T0, T0, services={"checkout"}, origin_service="checkout")
    b = IncidentFacts("b", "triggered", T0, T0, services={"search"}, origin_service="search")
    decision = strategy.decide(alert(1, "HighErrorRate", "frontend", at=5), [a, b], T0)
    assert decision.alternatives in (("a",), ("b",))


# --- co-occurrence --------------------------------------------------------------------


def history(days=6):
    """Search and recommendations fail together (a shared cache nobody drew)."""
    past = []
    for day in range(days):
        at = T0 - timedelta(days=day + 1)
        past.append(Membership(at, frozenset({cause_key("search"), cause_key("recs")})))
        past.append(Membership(at, frozenset({cause_key("payments")})))
    return past


def test_cooccurrence_learns_pairs_with_decay_and_roundtrips_json():
    model = fit(history(), now=T0)
    assert model.score(cause_key("search"), cause_key("recs")) == pytest.approx(1.0)
    assert model.score(cause_key("search"), cause_key("payments")) == 0.0
    assert model.support(cause_key("search"), cause_key("recs")) < 6  # decayed
    again = CooccurrenceModel.from_json(model.to_json())
    assert again.score(cause_key("search"), cause_key("recs")) == pytest.approx(1.0)


def test_cooccurrence_groups_without_a_topology_edge_and_says_why():
    topo = Topology({**SHOP, "recs": []})
    correlator = build_correlator(topology=topo, cooccurrence=fit(history(), now=T0))
    decisions = run(
        [alert(1, "KubePodCrashLooping", "search"), alert(2, "KubePodCrashLooping", "recs", at=4)],
        correlator,
    )
    assert decisions[1].action is Action.ATTACH
    assert decisions[1].strategy == "cooccurrence"
    assert "fired together in 6 past incidents" in decisions[1].reason


def test_split_feedback_unlearns_a_pair_and_merge_feedback_teaches_one():
    split = Feedback(T0, frozenset({cause_key("search")}), frozenset({cause_key("recs")}), False)
    model = fit(history(), [split, split, split], now=T0)
    assert model.score(cause_key("search"), cause_key("recs")) == 0.0
    merge = Feedback(T0, frozenset({cause_key("payments")}), frozenset({cause_key("cart")}), True)
    taught = fit([], [merge], now=T0)
    assert taught.score(cause_key("payments"), cause_key("cart")) > 0.5


# --- similarity and kinds -------------------------------------------------------------


def test_alert_kinds_default_and_override():
    assert KINDS.of(alert(1, "KubePodCrashLooping")) is Kind.CAUSE
    assert KINDS.of(alert(1, "HighLatencyP99")) is Kind.SYMPTOM
    assert KINDS.of(alert(1, "CertificateExpiringSoon")) is Kind.OTHER
    custom = AlertKinds.from_dict({"causes": ['alertname="Weird"'], "symptoms": []})
    assert custom.of(alert(1, "Weird")) is Kind.CAUSE
    assert custom.of(alert(1, "HighLatencyP99")) is Kind.OTHER


def test_similarity_joins_near_identical_alerts_and_breaks_ties():
    strategy = TextSimilarity(threshold=0.8)
    first = alert(1, "ProbeFailed", service=None, instance="https://shop/checkout", pod="a")
    incident = IncidentFacts(
        "i", "triggered", T0, T0, alert_names={"ProbeFailed"}, summaries={first.summary}
    )
    assert "pod" not in alert_text(first)
    near = alert(2, "ProbeFailed", service=None, at=3, pod="b")
    decision = strategy.decide(near, [incident], T0)
    assert decision is not None
    assert decision.incident_id == "i"
    assert "near-identical text" in decision.reason
    other = IncidentFacts("j", "triggered", T0, T0, alert_names={"DiskFull"}, services={"x"})
    chosen, note = strategy.rank(near, [other, incident])
    assert chosen == "i"
    assert "text similarity" in note
