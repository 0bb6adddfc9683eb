"""Ordering that pages can walk: every list ends with a unique tie-breaker."""

from __future__ import annotations

import django_filters
from rest_framework.filters import OrderingFilter

from reliability.models import AuditLog

_PRIMARY_KEYS = {"pk", "-pk", "id", "-id"}


def with_tie_breaker(ordering: list | tuple) -> list:
    """``ordering`` plus the primary key, in the direction of its first term, unless it
    already ends with it. Rows that tie (all alerts of one webhook share their receipt time)
    otherwise come back in any order between two pages, so pages overlap and skip rows."""
    terms = list(ordering)
    if terms and terms[-1] in _PRIMARY_KEYS:
        return terms
    descending = bool(terms) and isinstance(terms[0], str) and terms[0].startswith("-")
    return [*terms, "-pk" if descending else "pk"]


class StableOrderingFilter(OrderingFilter):
    """DRF's ``?ordering=`` plus a primary-key tie-breaker on every list."""

    def filter_queryset(self, request, queryset, view):
        queryset = super().filter_queryset(request, queryset, view)
        query = queryset.query
        current = list(query.order_by) or (
            list(query.get_meta().ordering) if query.default_ordering else []
        )
        return queryset.order_by(*with_tie_breaker(current))


class AuditLogFilter(django_filters.FilterSet):
    # a plain id, not a choice of all users: no answer differs for a user you cannot see
    actor = django_filters.NumberFilter(field_name="actor_id")

    class Meta:
        model = AuditLog
        fields = ["action", "object_type", "object_id", "actor", "via", "request_id"]
