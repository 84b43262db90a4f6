"""Domain errors in the schema's words: input paths spelled as the schema spells them.

The domain names what broke in its own (snake_case) words, which are also the column
names of ``cvault import`` (``first_name``, ``external_ids[0].source``); a GraphQL caller
sent ``firstName`` and ``externalIds``. :func:`schema_path` turns one into the other, and
the parts of a postal address, which the domain calls ``address.<part>``, into the
``postalAddress`` input they came in. Paths already in camel case pass unchanged, and
so do the names of custom attributes (``attributes.household_size``): they are keys of
the JSON value, spelled as they were declared, not schema fields.
"""

from __future__ import annotations

import re
from typing import Final

from vault.errors import InvalidInput

__all__ = ["input_message", "schema_path"]

_SNAKE: Final = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def _camel(match: re.Match[str]) -> str:
    head, *rest = match.group(0).split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def schema_path(field: str) -> str:
    """``first_name`` -> ``firstName``, ``external_ids[0].source`` ->
    ``externalIds[0].source``, ``address.postal_code`` -> ``postalAddress.postalCode``."""
    head, dot, attribute = field.partition("attributes.")
    if dot and (not head or head.endswith(".")):
        return _SNAKE.sub(_camel, head) + dot + attribute
    path = _SNAKE.sub(_camel, field)
    if path.startswith("address."):
        path = "postal" + path[0].upper() + path[1:]
    return path


def input_message(error: InvalidInput) -> str:
    """The message of a refused input as a GraphQL caller reads it: ``path: rule``."""
    return f"{schema_path(error.field)}: {error.rule}"
