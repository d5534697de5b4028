"""Reading a settings file (experiment, topology, sweep): YAML (JSON is YAML) holding a
mapping, or one error that names the file and says what is wrong with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["read_mapping"]


def read_mapping(path: Path, what: str, error: type[Exception], shape: str,
                 empty_ok: bool = False) -> dict[str, Any]:
    """The mapping in ``path``; ``error`` (with ``what`` file and the expected
    ``shape`` in its message) when it cannot be read, is not YAML or not a mapping.
    An empty file is an empty mapping when ``empty_ok``."""
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    if loaded is None and empty_ok:
        return {}
    if not isinstance(loaded, dict):
        raise error(f"{path}: {shape}")
    return loaded
