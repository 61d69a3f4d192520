"""``python:package.module:attribute`` specs: importing the object one names."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from ..errors import AdaptkitError

PREFIX = "python:"


def import_object(spec: str) -> Any:
    """Import ``package.module:attribute`` (the current directory is importable, as with python -m)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AdaptkitError(f"{spec!r} is not of the form package.module:factory")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AdaptkitError(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AdaptkitError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj

