"""Which custom attributes this vault declares: the attribute file in force.

Where it comes from, first match wins: ``CVAULT_ATTRIBUTES_FILE``, else
``$CVAULT_DATA_DIR/attributes.toml`` if that file exists, else the built-in
``policies/attributes.toml``. A named file that cannot be read, or that breaks a rule of
:func:`policies.attributes.parse_attributes`, is an error naming the file and the line;
it never falls back to the built-in declarations.
"""

from __future__ import annotations

from pathlib import Path

from policies.attributes import (
    AttributeFileError,
    AttributeRegistry,
    default_attributes,
    parse_attributes,
)
from vault.config import ConfigError, Settings

__all__ = ["AttributesConfigError", "attributes_path", "load_attributes"]


class AttributesConfigError(ConfigError):
    """The attribute file in force is unusable; the message names the file and the line."""


def attributes_path(settings: Settings) -> Path | None:
    """The attribute file in force for these settings; None for the built-in one."""
    if settings.attributes_file is not None:
        return settings.attributes_file
    candidate = settings.data_dir / "attributes.toml"
    return candidate if candidate.is_file() else None


def load_attributes(path: Path | None) -> AttributeRegistry:
    """Read and check an attribute file (None: the built-in declarations)."""
    try:
        if path is None:
            return default_attributes()
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise AttributesConfigError(f"{path}: is not UTF-8 text") from None
        except OSError as exc:
            reason = exc.strerror or "cannot be read"
            raise AttributesConfigError(f"{path}: cannot be read ({reason})") from None
        return parse_attributes(text, source=str(path))
    except AttributeFileError as exc:
        raise AttributesConfigError(str(exc)) from None
