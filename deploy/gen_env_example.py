"""Writes deploy/alerts.env.example from the settings model (``alerts.settings.Settings``): every setting, as its
``ALERTS_*`` variable, with its default and its description; secrets empty. Every line is commented out:
an empty value is a value, not "unset".

    .venv/bin/python deploy/gen_env_example.py           # rewrite deploy/alerts.env.example
    .venv/bin/python deploy/gen_env_example.py --check   # exit 1 if it is out of date

tests/test_deploy.py fails when the file differs from what this writes.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from alerts.settings import Settings, variable

TARGET = Path(__file__).resolve().parent / "alerts.env.example"
WIDTH = 110

HEADER = """\
# Every setting of alerts, as the ALERTS_* environment variable that sets it, with its default.
# GENERATED from alerts/settings.py by deploy/gen_env_example.py: do not edit; run
#   .venv/bin/python deploy/gen_env_example.py
# Copy to /etc/alerts/alerts.env (mode 600, owned by root or the service user) and uncomment what you set.
# A line left commented keeps the default; an empty value is not "unset" but an empty value.
# A bad value stops every alerts command with one line naming the variable; a misspelt name is warned about.
"""


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _show(value: Any) -> str:
    """A default as the environment variable would spell it."""
    if value is None or value is PydanticUndefined or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render() -> str:
    """The text of deploy/alerts.env.example for the settings model as it is now."""
    blocks = []
    for name, field in Settings.model_fields.items():
        lines = []
        if field.description:
            lines += textwrap.wrap(" ".join(field.description.split()), WIDTH - 2, initial_indent="# ",
                                   subsequent_indent="# ", break_on_hyphens=False)
        secret = _is_secret(field.annotation)
        default = field.get_default(call_default_factory=True)
        notes = (["a secret: never printed"] if secret else []) + (["unset by default"] if default is None else [])
        if notes:
            lines.append(f"# ({'; '.join(notes)})")
        lines.append(f"#{variable(name)}={'' if secret else _show(default)}")
        blocks.append("\n".join(lines))
    return HEADER + "\n" + "\n\n".join(blocks) + "\n"


def main(argv: Sequence[str] = ()) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text("utf-8") != text:
            print(f"{TARGET} is out of date: run .venv/bin/python deploy/gen_env_example.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
