"""The correlation engine against the database: what ingestion and the beat job call.

The engine itself (``incidents.correlation``) is plain data in, plain data out; this module
loads its inputs (rules from the admin and ``correlation-rules.yml``, the service graph,
the learned co-occurrence model, the open incidents and waiting candidates), writes back
what it learned about incidents (probable origin, roots), folds automatic merges, and turns
human corrections (merge, split, move) into feedback the next training run learns from.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import reduce
from operator import or_
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Max, Min, Q
from django.db.models.fields.json import KT
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from incidents.correlation import (
    AlertKinds,
    CooccurrenceModel,
    Correlator,
    Feedback,
    IncidentFacts,
    Membership,
    Topology,
    build_correlator,
    fit,
    load_rules,
)
from incidents.correlation.cooccurrence import alert_keys
from incidents.correlation.rules import CorrelationRule as PlainRule
from incidents.correlation.strategies import REPLICA_LABELS, check_key, evidence_weight
from incidents.correlation.types import PENDING, AlertFacts
from incidents.lifecycle import IncidentStatus
from incidents.models import (
    Alert,
    CooccurrenceSnapshot,
    CorrelationFeedback,
    CorrelationRule,
    Dependency,
    Incident,
    Integration,
    Service,
    TimelineEvent,
)
from incidents.numbering import reserve_numbers
from incidents.timeline import add_events
from reliability import audit

log = logging.getLogger(__name__)

TOPOLOGY_WINDOW = timedelta(minutes=10)
HISTORY = timedelta(days=90)
KINDS = AlertKinds()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rules_file() -> Path:
    return Path(
        getattr(settings, "CORRELATION_RULES_FILE", settings.BASE_DIR / "correlation-rules.yml")
    )


def load_all_rules() -> list[tuple[int | None, PlainRule]]:
    """Every enabled rule with its team (None: every team's), by position, then
    rules-as-code (global) not overridden by a global admin rule of the same name."""
    rules: list[tuple[int | None, PlainRule]] = []
    for row in CorrelationRule.objects.filter(enabled=True):
        try:
            rules.append((row.team_id, row.as_rule()))
        except ValueError:
            log.warning("correlation rule %s is invalid and was skipped", row.name)
    path = rules_file()
    if path.exists():
        names = {rule.name for team_id, rule in rules if team_id is None}
        rules += [(None, r) for r in load_rules(path) if r.name not in names]
    return rules


def rules_for_team(rules: list[tuple[int | None, PlainRule]], team_id: int) -> list[PlainRule]:
    """The rules that may act on ``team_id``'s alerts: its own, then global ones it does not
    override by name. Another team's rule never sees them."""
    names = {rule.name for owner, rule in rules if owner == team_id}
    return [
        rule
        for owner, rule in rules  # position order kept
        if owner == team_id or (owner is None and rule.name not in names)
    ]


def load_topology() -> Topology:
    graph: dict[str, list[str]] = defaultdict(list)
    for service, dependency in Dependency.objects.values_list("service__slug", "depends_on__slug"):
        graph[service].append(dependency)
    for slug in Service.objects.values_list("slug", flat=True):
        graph.setdefault(slug, [])
    return Topology(graph)


def load_cooccurrence() -> CooccurrenceModel | None:
    latest = CooccurrenceSnapshot.objects.first()
    return CooccurrenceModel.from_json(latest.model) if latest else None


_CACHE: dict[str, tuple[float, Any]] = {}
CACHE_SECONDS = 30.0  # other processes see admin changes within this; this one at once


def cached(name: str, load):
    """Rules, graph and model change rarely; a storm should not reload them per webhook."""
    hit = _CACHE.get(name)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    value = load()
    _CACHE[name] = (time.monotonic(), value)
    return value


@receiver(m2m_changed, sender=Service.depends_on.through)
@receiver([post_save, post_delete], sender=CorrelationRule)
@receiver([post_save, post_delete], sender=Dependency)
@receiver([post_save, post_delete], sender=Service)
@receiver([post_save, post_delete], sender=CooccurrenceSnapshot)
def invalidate(**_: Any) -> None:
    _CACHE.clear()


def correlator_for(integration: Integration, reopen_grace: timedelta) -> Correlator:
    return build_correlator(
        rules=rules_for_team(cached("rules", load_all_rules), integration.team_id),
        topology=cached("topology", load_topology),
        cooccurrence=cached("cooccurrence", load_cooccurrence),
        window=TOPOLOGY_WINDOW,
        group_window=timedelta(minutes=integration.group_window_minutes),
        reopen_grace=reopen_grace,
        kinds=KINDS,
    )


def facts_of(alert: Alert, slug: str | None, now: datetime | None = None) -> AlertFacts:
    facts = AlertFacts(
        id=alert.fingerprint,
        fingerprint=alert.fingerprint,
        name=alert.name,
        status=alert.status,
        starts_at=alert.starts_at,
        received_at=now or alert.last_received_at,
        labels=alert.labels,
        annotations=alert.annotations,
        service=slug,
        group_key=alert.group_key,
        incident_id=alert.incident_id,
    )
    return AlertFacts(**{**facts.__dict__, "kind": KINDS.of(facts)})


def candidates(
    integration: Integration,
    group_keys: set[str],
    fingerprints: list[str],
    now: datetime,
    reopen_grace: timedelta,
) -> dict[Any, IncidentFacts]:
    """Incidents the new alerts may join: open ones of the team active within the topology
    window, ones of these groups or alerts (resolved within the grace period included),
    and the rules' waiting candidate groups."""
    related = (
        Q(group_key__in=group_keys)
        | Q(alerts__group_key__in=group_keys)
        | Q(alerts__integration=integration, alerts__fingerprint__in=fingerprints)
    )
    recent_team = Q(team_id=integration.team_id, last_alert_at__gte=now - TOPOLOGY_WINDOW)
    alive = ~Q(status=IncidentStatus.RESOLVED) | Q(resolved_at__gte=now - reopen_grace)
    incidents = list(
        Incident.objects.filter(related | recent_team)
        .filter(alive, merged_into__isnull=True)
        .select_related("origin_service")
        .distinct()[:500]
    )
    facts: dict[Any, IncidentFacts] = {
        inc.pk: IncidentFacts(
            id=inc.pk,
            status=inc.status,
            opened_at=inc.created_at,
            last_alert_at=inc.last_alert_at,
            group_keys={inc.group_key},
            resolved_at=inc.resolved_at,
            origin_service=inc.origin_service.slug if inc.origin_service else None,
            root_services=set((inc.correlation or {}).get("roots", [])),
            rule=(inc.correlation or {}).get("rule", ""),
        )
        for inc in incidents
    }
    ids = [pk for pk in facts if isinstance(pk, int)]
    _member_facts(facts, ids, integration, group_keys, fingerprints)
    pending = (
        Alert.objects.filter(
            integration=integration,
            incident__isnull=True,
            status=Alert.Status.FIRING,
            group_key__startswith="rule:",
            last_received_at__gte=now - timedelta(days=1),
        )
        .annotate(replicated=_REPLICATED)
        .values_list(
            "fingerprint",
            "group_key",
            "name",
            "service__slug",
            "received_at",
            KT("labels__correlation_kind"),
            "check_variant",
            "replicated",
        )
    )
    for fingerprint, group_key, name, slug, received_at, explicit, variant, replicated in pending:
        key = f"pending:{group_key}"
        group = facts.setdefault(
            key,
            IncidentFacts(
                id=key,
                status=PENDING,
                opened_at=received_at,
                last_alert_at=received_at,
                group_keys={group_key},
            ),
        )
        group.opened_at = min(group.opened_at, received_at)
        group.last_alert_at = max(group.last_alert_at, received_at)
        group.pending_alert_ids.append(fingerprint)
        _add(
            group,
            fingerprint,
            group_key,
            name,
            slug,
            kind=_kind(name, explicit),
            seen=received_at,
            first=received_at,
            variant=variant,
            weight=evidence_weight(replicated),
        )
    return facts


# alerts that fired on one replica (see ``evidence_weight``)
_REPLICATED = ExpressionWrapper(
    reduce(or_, (Q(labels__has_key=label) for label in sorted(REPLICA_LABELS))),
    output_field=BooleanField(),
)


def _member_facts(
    facts: dict[Any, IncidentFacts],
    ids: list[int],
    integration: Integration,
    group_keys: set[str],
    fingerprints: list[str],
) -> None:
    """What the strategies know of the candidates' alerts, from aggregates only.

    A webhook's cost must not grow with the size of the incidents it touches: every query
    here returns one row per distinct check (alertname, service, explicit kind), per group
    key the batch or a rule can look up, per fingerprint of the batch, or a bounded sample
    of summaries, never one row per member alert.
    """
    if not ids:
        return
    members = Alert.objects.filter(incident_id__in=ids)
    # the kind depends only on the alertname unless the alert carries correlation_kind
    checks = (
        members.annotate(explicit=KT("labels__correlation_kind"), replicated=_REPLICATED)
        .values_list(
            "incident_id", "name", "service__slug", "check_variant", "explicit", "replicated"
        )
        .annotate(n=Count("pk"), seen=Max("received_at"), first=Min("received_at"))
    )
    for incident_id, name, slug, variant, explicit, replicated, n, seen, first in checks:
        _add(
            facts[incident_id],
            None,
            None,
            name,
            slug,
            n,
            kind=_kind(name, explicit),
            seen=seen,
            first=first,
            variant=variant,
            weight=n * evidence_weight(replicated),
        )
    # only keys a batch alert or a rule can look up decide anything
    keys = (
        members.filter(Q(group_key__in=group_keys) | Q(group_key__startswith="rule:"))
        .values_list("incident_id", "group_key")
        .distinct()
    )
    for incident_id, group_key in keys:
        facts[incident_id].group_keys.add(group_key)
    for incident_id, fingerprint in members.filter(
        integration=integration, fingerprint__in=fingerprints
    ).values_list("incident_id", "fingerprint"):
        facts[incident_id].fingerprints.add(fingerprint)
    texts = (
        members.filter(service__isnull=True)
        .values_list("incident_id", KT("annotations__summary"))
        .distinct()[:500]
    )
    for incident_id, summary in texts:  # only text similarity reads them
        if summary and len(facts[incident_id].summaries) < 20:
            facts[incident_id].summaries.add(summary)


def _add(
    fact: IncidentFacts,
    fingerprint: str | None,
    group_key: str | None,
    name: str,
    slug: str | None,
    count: int = 1,
    *,
    kind: str | None = None,
    seen: datetime | None = None,
    first: datetime | None = None,
    variant: str = "",
    weight: int | None = None,
) -> None:
    """Count member alerts (``count`` of one check, together worth ``weight`` as evidence
    for their service) into what correlation knows."""
    kind = kind or _kind(name)
    if fingerprint:
        fact.fingerprints.add(fingerprint)
    if group_key:
        fact.group_keys.add(group_key)
    fact.alert_names.add(name)
    fact.alert_count += count
    if slug:
        fact.services.add(slug)
        fact.checks.add(check_key(name, slug, variant))
        if kind != "other":
            fact.service_alerts[slug] = fact.service_alerts.get(slug, 0) + (
                count if weight is None else weight
            )
            if seen is not None:
                fact.service_seen[slug] = max(seen, fact.service_seen.get(slug, seen))
            if first is not None:
                fact.service_first[slug] = min(first, fact.service_first.get(slug, first))
        if kind == "cause":
            fact.cause_services.add(slug)


def _kind(name: str, explicit: str | None = None) -> str:
    """The kind of a check from its name and, when present, its correlation_kind label."""
    labels = {"correlation_kind": explicit} if explicit else {}
    return KINDS.of(AlertFacts(name, name, name, "firing", EPOCH, EPOCH, labels=labels))


def write_back(pool: dict[Any, IncidentFacts], real_id: dict[Any, int], touched: set[int]) -> None:
    """Store what the engine now knows of each incident it touched: origin and roots."""
    slugs = dict(Service.objects.values_list("slug", "pk"))
    for key, fact in pool.items():
        pk = real_id.get(key, key)
        if not isinstance(pk, int) or pk not in touched:
            continue
        Incident.objects.filter(pk=pk).update(
            origin_service_id=slugs.get(fact.origin_service or ""),
            correlation={"roots": sorted(fact.root_services), "rule": fact.rule},
        )


def auto_merge(target_id: int, source_ids: Iterable[int], reason: str, now: datetime) -> None:
    """Fold incidents the engine found to be one failure into ``target_id``."""
    sources = list(
        Incident.objects.select_for_update().filter(pk__in=list(source_ids), merged_into=None)
    )
    target = Incident.objects.get(pk=target_id)
    events = []
    for source in sources:
        if source.pk == target.pk:
            continue
        moved = Alert.objects.filter(incident=source).update(incident=target)
        target.services.add(*source.services.all())
        Incident.objects.filter(pk=source.pk).update(
            status=IncidentStatus.RESOLVED,
            resolved_at=source.resolved_at or now,
            merged_into=target,
            alert_count=0,
            firing_count=0,
        )
        events += [
            TimelineEvent(
                incident=target,
                kind=TimelineEvent.Kind.MERGED,
                message=f"{source.reference} merged in automatically ({moved} alerts): {reason}",
                data={"source": source.pk, "alerts_moved": moved, "auto": True},
                created_at=now,
            ),
            TimelineEvent(
                incident=source,
                kind=TimelineEvent.Kind.MERGED,
                message=f"merged into {target.reference} automatically: {reason}",
                data={"target": target.pk, "auto": True},
                created_at=now,
            ),
        ]
        audit.record(
            "incident.merged",
            source,
            changes={"merged_into": [None, target.reference], "auto": True},
        )
    add_events(events)


# --- feedback and learning ---------------------------------------------------------------


def keys_of(alerts: Iterable[Alert]) -> list[str]:
    return sorted(
        {
            k
            for a in alerts
            for k in alert_keys(facts_of(a, a.service.slug if a.service_id else None))
        }
    )


def record_feedback(
    kind: str,
    *,
    moved: list[Alert],
    stayed: list[Alert],
    incident: Incident | None,
    source: Incident | None,
    together: bool,
    actor: Any,
) -> CorrelationFeedback:
    return CorrelationFeedback.objects.create(
        kind=kind,
        incident=incident,
        source=source,
        alerts=[a.pk for a in moved],
        moved_keys=keys_of(moved),
        stayed_keys=keys_of(stayed),
        together=together,
        actor=actor if getattr(actor, "pk", None) else None,
    )


def move_alerts(alerts: list[Alert], target: Incident, actor: Any, *, kind: str) -> None:
    """Move alerts to ``target`` (a split's new incident or another open incident),
    write the timeline on both sides and keep the correction as feedback."""
    now = timezone.now()
    by_source: dict[int, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_source[alert.incident_id].append(alert)
    events = []
    for source_id, moved in by_source.items():
        source = Incident.objects.get(pk=source_id)
        stayed = list(
            Alert.objects.filter(incident=source)
            .exclude(pk__in=[a.pk for a in moved])
            .select_related("service")
        )
        Alert.objects.filter(pk__in=[a.pk for a in moved]).update(incident=target)
        names = ", ".join(sorted({a.name for a in moved}))
        who = actor.get_username() if getattr(actor, "pk", None) else "someone"
        events += [
            TimelineEvent(
                incident=source,
                kind=TimelineEvent.Kind.ALERT_ATTACHED,
                actor=actor if getattr(actor, "pk", None) else None,
                message=f"{len(moved)} alerts ({names}) moved to {target.reference} by {who}",
                data={"moved_to": target.pk, "alerts": [a.pk for a in moved], "feedback": kind},
                created_at=now,
            ),
            TimelineEvent(
                incident=target,
                kind=TimelineEvent.Kind.ALERT_ATTACHED,
                actor=actor if getattr(actor, "pk", None) else None,
                message=f"{len(moved)} alerts ({names}) moved here from {source.reference} "
                f"by {who}",
                data={"moved_from": source.pk, "alerts": [a.pk for a in moved], "feedback": kind},
                created_at=now,
            ),
        ]
        record_feedback(
            kind, moved=moved, stayed=stayed, incident=target, source=source, together=False,
            actor=actor,
        )  # fmt: skip
        if kind == CorrelationFeedback.Kind.MOVE:
            already = list(
                Alert.objects.filter(incident=target)
                .exclude(pk__in=[a.pk for a in moved])
                .select_related("service")
            )
            record_feedback(
                kind, moved=moved, stayed=already, incident=target, source=source,
                together=True, actor=actor,
            )  # fmt: skip
        recount_incident(source)
    recount_incident(target)
    add_events(events)


def recount_incident(incident: Incident) -> None:
    alerts = Alert.objects.filter(incident=incident)
    incident.alert_count = alerts.count()
    incident.firing_count = alerts.filter(status=Alert.Status.FIRING).count()
    incident.services.add(*Service.objects.filter(alerts__incident=incident).distinct())
    incident.save(update_fields=["alert_count", "firing_count", "updated_at"])


def split(incident: Incident, alerts: list[Alert], actor: Any) -> Incident:
    """Take ``alerts`` out of ``incident`` into a new incident of their own."""
    with transaction.atomic():
        (number,) = reserve_numbers(1)
        first = alerts[0]
        new = Incident.objects.create(
            number=number,
            title=f"{first.name} (split from {incident.reference})"[:300],
            severity=incident.severity,
            team=incident.team,
            group_key=f"split:{incident.pk}:{first.fingerprint}"[:500],
            last_alert_at=max(a.last_received_at for a in alerts),
        )
        move_alerts(alerts, new, actor, kind=CorrelationFeedback.Kind.SPLIT)
        audit.record("incident.split", incident, actor=actor, changes={"split_into": new.reference})
    return new


def record_merge(target: Incident, sources: list[Incident], actor: Any) -> None:
    """A manual merge says the merged incidents belonged together (call it before the
    alerts move)."""
    stayed = list(Alert.objects.filter(incident=target).select_related("service"))
    for source in sources:
        moved = list(Alert.objects.filter(incident=source).select_related("service"))
        record_feedback(
            CorrelationFeedback.Kind.MERGE, moved=moved, stayed=stayed, incident=target,
            source=source, together=True, actor=actor,
        )  # fmt: skip


def memberships(now: datetime) -> list[Membership]:
    """Past incidents (corrections applied: merged ones count under their target)."""
    alerts = (
        Alert.objects.filter(incident__created_at__gte=now - HISTORY)
        .exclude(incident__isnull=True)
        .select_related("service", "incident")
    )
    grouped: dict[int, list[AlertFacts]] = defaultdict(list)
    opened: dict[int, datetime] = {}
    for alert in alerts:
        grouped[alert.incident_id].append(
            facts_of(alert, alert.service.slug if alert.service_id else None)
        )
        opened[alert.incident_id] = alert.incident.created_at
    return [Membership.of(opened[pk], items) for pk, items in grouped.items()]


def feedback(now: datetime) -> list[Feedback]:
    return [
        Feedback(
            row.created_at, frozenset(row.moved_keys), frozenset(row.stayed_keys), row.together
        )
        for row in CorrelationFeedback.objects.filter(created_at__gte=now - HISTORY)
    ]


def retrain(now: datetime) -> CooccurrenceSnapshot:
    """Fit the co-occurrence model on history and feedback; keep it as the latest."""
    past, corrections = memberships(now), feedback(now)
    model = fit(past, corrections, now=now)
    return CooccurrenceSnapshot.objects.create(
        trained_at=now,
        incidents=len(past),
        feedback=len(corrections),
        model=model.to_json(),
    )
