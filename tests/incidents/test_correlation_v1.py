"""Correlation v1 on plain data: fingerprint dedup, group key within a window, flapping."""

from datetime import UTC, datetime, timedelta

from incidents.correlation import AlertFacts, Correlator, IncidentFacts
from incidents.correlation.types import Action

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def alert(n: int, *, fp: str | None = None, key: str = "g1", at: int = 0, status="firing"):
    return AlertFacts(
        id=n,
        fingerprint=fp or f"fp{n}",
        name=f"Alert{n}",
        status=status,
        starts_at=T0 + timedelta(seconds=at),
        received_at=T0 + timedelta(seconds=at),
        group_key=key,
    )


def test_same_group_joins_one_incident_and_says_why():
    decisions = Correlator().run([alert(1), alert(2, at=38)], [], now=T0)
    assert [d.action for d in decisions] == [Action.OPEN, Action.ATTACH]
    assert decisions[1].incident_id == decisions[0].incident_id
    assert "38 s after the first alert" in decisions[1].reason


def test_other_group_opens_its_own_incident():
    decisions = Correlator().run([alert(1, key="a"), alert(2, key="b")], [], now=T0)
    assert [d.action for d in decisions] == [Action.OPEN, Action.OPEN]
    assert decisions[0].incident_id != decisions[1].incident_id


def test_group_outside_window_opens_new_incident():
    old = IncidentFacts(1, "triggered", T0, T0, group_keys={"g1"}, fingerprints={"x"})
    late = alert(5, at=2 * 3600)
    decision = Correlator().decide(late, [old], now=late.received_at)
    assert decision.action is Action.OPEN


def test_resent_alert_is_kept_not_duplicated():
    open_incident = IncidentFacts(
        9, "acknowledged", T0, T0, group_keys={"g1"}, fingerprints={"fp1"}
    )
    resent = AlertFacts(**{**alert(1).__dict__, "incident_id": 9})
    assert Correlator().decide(resent, [open_incident], now=T0).action is Action.KEEP


def test_flapping_alert_reopens_recent_incident_but_not_an_old_one():
    resolved = IncidentFacts(
        3, "resolved", T0, T0, group_keys={"g1"}, fingerprints={"fp1"}, resolved_at=T0
    )
    soon = alert(1, fp="fp1", at=300)
    later = alert(1, fp="fp1", at=3600)
    assert Correlator().decide(soon, [resolved], now=soon.received_at).action is Action.REOPEN
    assert Correlator().decide(later, [resolved], now=later.received_at).action is Action.OPEN


def test_resolution_of_unknown_alert_is_ignored():
    decision = Correlator().decide(alert(1, status="resolved"), [], now=T0)
    assert decision.action is Action.IGNORE
