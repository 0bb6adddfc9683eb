from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from rest_framework import serializers

from reliability.models import AuditLog, Team, TeamMembership
from reliability.permissions import objects_for
from reliability.redaction import redact


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = TeamMembership
        fields = ["username", "role"]


class TeamSerializer(serializers.ModelSerializer):
    members = MembershipSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "description", "members", "created_at"]
        read_only_fields = ["created_at"]


class AuditLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditLog
        fields = [
            "id",
            "timestamp",
            "actor",
            "actor_repr",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "request_id",
            "source_ip",
            "via",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["changes"] = redact(data["changes"])  # rows written before redaction existed
        return data


def requesting_user(field: serializers.Field):
    request = field.context.get("request")
    return getattr(request, "user", None)


class VisibleSlugRelatedField(serializers.SlugRelatedField):
    """A reference that resolves only to objects the requesting user may see, so an
    invisible object gets exactly the answer of one that does not exist (no existence
    oracle). Without a request (internal use) every object resolves."""

    def visible(self, user, queryset: QuerySet) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        user = requesting_user(self)
        if user is None or getattr(user, "is_superuser", False):
            return queryset
        if not getattr(user, "is_authenticated", False):
            return queryset.none()
        return self.visible(user, queryset)


class TeamRefField(VisibleSlugRelatedField):
    """A team by slug, among the teams the user belongs to."""

    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "slug")
        kwargs.setdefault("queryset", Team.objects.all())
        super().__init__(**kwargs)

    def visible(self, user, queryset: QuerySet) -> QuerySet:
        return queryset.filter(pk__in=objects_for(user, "view", Team).values("pk"))


class UserRefField(VisibleSlugRelatedField):
    """An active user by username, among the people who share a team with the user."""

    def __init__(self, **kwargs):
        kwargs.setdefault("slug_field", "username")
        kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        super().__init__(**kwargs)

    def visible(self, user, queryset: QuerySet) -> QuerySet:
        teams = TeamMembership.objects.filter(user=user).values("team_id")
        colleagues = TeamMembership.objects.filter(team_id__in=teams).values("user_id")
        return queryset.filter(pk__in=colleagues)
