"""Rate limits backed by the cache (Redis in production): per API token and per integration."""

from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class TokenRateThrottle(UserRateThrottle):
    """Per authenticated user/token; answers 429 with Retry-After."""

    scope = "user"


class IntegrationRateThrottle(SimpleRateThrottle):
    """Per integration webhook URL, checked before the body is read or anything is written."""

    scope = "integration"

    def get_cache_key(self, request, view) -> str | None:
        token = view.kwargs.get("token")
        return self.cache_format % {"scope": self.scope, "ident": token} if token else None
