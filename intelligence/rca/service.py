"""RCA inside an analysis run: the thin hook between the run (database) and ``build_rca``."""

from __future__ import annotations

import logging
from typing import Any

from incidents.models import Alert, Incident
from intelligence.rca.document import SOURCES, RcaDocument, build_rca

logger = logging.getLogger(__name__)


def rca_for_run(
    incident: Incident, inputs: Any, findings: list, gaps: list[str], skipped: list[str]
) -> RcaDocument | None:
    """The RCA document of a finished run, or None if it could not be built (the run keeps
    its evidence either way: RCA never fails an analysis)."""
    try:
        alerts = [
            (starts_at, name, slug or "")
            for starts_at, name, slug in Alert.objects.filter(incident=incident)
            .order_by("starts_at")
            .values_list("starts_at", "name", "service__slug")[:50]
        ]
        missing = sorted({s for s in SOURCES for line in skipped if s in line.lower()})
        origin = incident.origin_service.slug if incident.origin_service_id else None
        return build_rca(
            findings,
            inputs.context,
            inputs.graph,
            probable_origin=origin,
            gaps=gaps,
            missing_sources=missing,
            alerts=alerts,
        )
    except Exception:
        logger.exception("RCA of incident %s failed", incident.pk)
        return None


def stored_rca(doc: RcaDocument) -> tuple[list[dict], dict[str, Any]]:
    """(hypotheses for ``Insight.hypotheses``, the rest of the document for its evidence)."""
    data = doc.as_dict()
    return data.pop("hypotheses"), data
