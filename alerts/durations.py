"""Durations as traders write them: ``90s``, ``30m``, ``6h``, ``1d``, ``2w``, ``1h30m``."""

from __future__ import annotations

import re

#: Seconds in each duration suffix.
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``. A bare number is seconds. Raises ValueError on anything else."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    s = text.strip().lower().replace(" ", "")
    if not s or _PART.sub("", s):
        raise ValueError(f"{text!r} is not a duration; write for example 30m, 6h, 1d or 1h30m")
    return float(sum(float(n) * SECONDS[u] for n, u in _PART.findall(s)))


def format_duration(seconds: float) -> str:
    """``2592000`` -> ``30d``; ``5400`` -> ``1h30m``."""
    left = int(seconds)
    parts = []
    for unit in ("d", "h", "m", "s"):
        n, left = divmod(left, SECONDS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts) or "0s"
