"""Structured paper references: which paper (arXiv id) and where in it (section, figure, theorem)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PAPER_ID", "Ref", "parse_references", "papers_in"]

#: An arXiv identifier with an optional version, e.g. ``2312.10794`` or ``2408.09523v2``.
PAPER_ID = re.compile(r"^\d{4}\.\d{4,5}(v\d+)?$")
_PAPER_IN_TEXT = re.compile(r"\b(\d{4}\.\d{4,5}(?:v\d+)?)\b")


@dataclass(frozen=True)
class Ref:
    """Where a paper states something: ``Ref("2312.10794", "Thm 6.8, eq. (6.9)")``.

    Attributes:
        paper: arXiv id, optionally with a version (``2408.09523v2``).
        where: section, figure, theorem or equation, free text (may be empty).
    """

    paper: str
    where: str = ""

    def __post_init__(self) -> None:
        if not PAPER_ID.match(self.paper):
            raise ValueError(f"paper must be an arXiv id such as 2312.10794, got {self.paper!r}")

    def __str__(self) -> str:
        return f"{self.paper} {self.where}".strip()

    @property
    def base_id(self) -> str:
        """The id without its version: ``2408.09523v2`` -> ``2408.09523``."""
        return self.paper.split("v")[0]

    def to_json_dict(self) -> dict[str, str]:
        return {"paper": self.paper, "where": self.where}


def parse_references(text: str) -> tuple[Ref, ...]:
    """Split ``"2312.10794 §6, Thm 6.8; 2512.01868 §1"`` into structured references.

    Each ``;``-separated part that starts with an arXiv id becomes one :class:`Ref`; a part
    without a leading id (``"docs/theory/random_mlp.md §3.3"``) is appended to the previous
    reference's ``where``. Raises ``ValueError`` when no part names a paper.
    """
    refs: list[Ref] = []
    for part in (piece.strip() for piece in text.split(";")):
        if not part:
            continue
        match = re.match(r"^(\d{4}\.\d{4,5}(?:v\d+)?)\b[,:]?\s*(.*)$", part)
        if match:
            refs.append(Ref(match.group(1), match.group(2).strip()))
        elif refs:
            previous = refs[-1]
            refs[-1] = Ref(previous.paper, f"{previous.where}; {part}".strip("; "))
        else:
            raise ValueError(f"reference {text!r} does not start with an arXiv id")
    if not refs:
        raise ValueError(f"reference {text!r} names no paper")
    return tuple(refs)


def papers_in(text: str) -> list[str]:
    """Every arXiv id mentioned in ``text``, in order, without repeats."""
    return list(dict.fromkeys(_PAPER_IN_TEXT.findall(text)))
