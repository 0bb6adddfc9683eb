"""The API's JSON parser: DRF's, with the checks of ``reliability.jsonsafety``."""

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from reliability.jsonsafety import UnsafeJSON, parse_json


class SafeJSONParser(JSONParser):
    """Deep nesting, NUL characters and lone surrogates are a 400 naming the field, not a
    500 from the parser or the database."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            return parse_json(stream.read().decode(encoding))
        except UnsafeJSON as exc:
            raise ValidationError(exc.errors) from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
