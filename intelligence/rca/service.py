"""RCA inside an analysis run: the thin hook between the run (database) and ``build_rca``."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from incidents.models import Alert, Incident, Service
from intelligence.rca import llm
from intelligence.rca.document import SOURCES, build_rca

logger = logging.getLogger(__name__)


def llm_settings() -> llm.LlmSettings:
    return llm.LlmSettings(
        url=settings.RELIABILITY_LLM_URL.rstrip("/"),
        model=settings.RELIABILITY_LLM_MODEL,
        api_key=settings.RELIABILITY_LLM_API_KEY,
        timeout_s=settings.RELIABILITY_LLM_TIMEOUT,
        calls_per_team_per_hour=settings.RELIABILITY_LLM_CALLS_PER_HOUR,
    )


def with_llm_summary(doc: dict[str, Any], incident: Incident) -> dict[str, Any]:
    """Let the configured LLM rewrite the summary (and re-order supported hypotheses);
    the call's record goes into ``doc['llm']``. Without an LLM nothing changes."""
    config = llm_settings()
    if not config.enabled:
        return doc
    call = llm.summarise(
        doc,
        config,
        team=incident.team.slug if incident.team_id else "none",
        known_services=Service.objects.values_list("slug", flat=True),
    )
    doc["llm"] = call.as_dict()
    if doc["hypotheses"]:
        doc["confidence"] = doc["hypotheses"][0]["confidence"]
    return doc


def rca_for_run(
    incident: Incident, inputs: Any, findings: list, gaps: list[str], skipped: list[str]
) -> dict[str, Any] | None:
    """The RCA document of a finished run (as stored), or None if it could not be built
    (the run keeps its evidence either way: RCA never fails an analysis)."""
    try:
        alerts = [
            (starts_at, name, slug or "")
            for starts_at, name, slug in Alert.objects.filter(incident=incident)
            .order_by("starts_at")
            .values_list("starts_at", "name", "service__slug")[:50]
        ]
        missing = sorted({s for s in SOURCES for line in skipped if s in line.lower()})
        origin = incident.origin_service.slug if incident.origin_service_id else None
        doc = build_rca(
            findings,
            inputs.context,
            inputs.graph,
            probable_origin=origin,
            gaps=gaps,
            missing_sources=missing,
            alerts=alerts,
        ).as_dict()
        return with_llm_summary(doc, incident)
    except Exception:
        logger.exception("RCA of incident %s failed", incident.pk)
        return None


def stored_rca(doc: dict[str, Any]) -> tuple[list[dict], dict[str, Any]]:
    """(hypotheses for ``Insight.hypotheses``, the rest of the document for its evidence)."""
    rest = dict(doc)
    return rest.pop("hypotheses"), rest


def stored_document(hypotheses: list[dict], evidence: dict[str, Any]) -> dict[str, Any]:
    """The document back from an insight's ``hypotheses`` and ``evidence['rca']``."""
    return {**(evidence.get("rca") or {}), "hypotheses": [dict(h) for h in hypotheses]}
