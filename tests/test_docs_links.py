"""Every relative link in README.md and docs/ points at a file that exists and, with a ``#fragment``, at a heading
of that file (GitHub's anchors: lower case, punctuation other than ``-`` and ``_`` dropped, spaces as ``-``, a
``-1``, ``-2`` ... suffix for a repeated heading). The pages link into each other's sections by those anchors; a
renamed heading used to leave the links to it dead without anyone noticing."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target), images too


def prose_lines(text: str):
    """``(line number, line)`` for each line outside fenced code blocks."""
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code:
            yield number, line


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown page's headings (code blocks skipped)."""
    found, seen = set(), {}
    for _, line in prose_lines(text):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).lower().replace("`", "")).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


@functools.lru_cache(maxsize=None)
def page_anchors(path: Path) -> set[str]:
    """A page's anchors, read once however many links point into it."""
    return anchors(path.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page):
    dead = []
    for number, line in prose_lines(page.read_text()):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ... not checked here (no network)
                continue
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                where = linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked
                dead.append(f"line {number}: {target} (no file {where})")
            elif fragment and linked.suffix == ".md" and fragment not in page_anchors(linked):
                dead.append(f"line {number}: {target} (no heading with the anchor #{fragment})")
    assert not dead, f"{page.relative_to(ROOT)} has dead links:\n" + "\n".join(dead)


def test_anchor_rules():
    text = "# A title\n## Band-limited audio: the empty mel bins and `--top_db`\n## A title\n```\n# not a heading\n```\n"
    assert anchors(text) == {"a-title", "band-limited-audio-the-empty-mel-bins-and---top_db", "a-title-1"}
