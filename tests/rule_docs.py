"""The rule examples of the documentation: every ```yaml block of rules/README.md and README.md."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = (REPO / "rules" / "README.md", REPO / "README.md")
_BLOCK = re.compile(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the first line of the block's text
    text: str

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def yaml_blocks(doc: Path) -> list[Block]:
    text = doc.read_text("utf-8")
    return [Block(doc, text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def all_blocks() -> list[Block]:
    return [b for doc in DOCS for b in yaml_blocks(doc)]


def example_files() -> list[Path]:
    return sorted(p for p in (REPO / "rules" / "examples").glob("*.yaml") if not p.name.endswith(".test.yaml"))
