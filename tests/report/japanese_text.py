"""Reading a Japanese report as its reader does: the prose, and the English sentences left in it.

The rule for an English sentence (what a Japanese auditor would have to read in English):

- Only the report's prose counts. Text set as code is left out (in Markdown between
  backticks, in html inside ``<code>``): it is journal text quoted as recorded, or a
  command. So are html's ``<style>``, ``<script>`` and the charts' ``<svg>``.
- A *word* is a run of ASCII letters, with an inner hyphen or apostrophe (``clean-up``,
  ``system's``), standing alone: a token glued to a digit, ``_``, ``.``, ``/``, ``=``, ``[``
  or ``@`` is an identifier, a file name, a number with its unit, a hash or a parameter
  (``db_stall``, ``manifest.json``, ``p99``, ``FT-01``, ``mode=freeze``, ``t_inject``), not a word.
- Abbreviations (two or more capitals, ``ID``, ``RTO``, ``SHA``, ``IDs``) are not words,
  nor are the names a table must show: the tools (``faultlab``, ``python``...), and the
  identifiers of the run given by the caller (services, fault kinds and targets, jobs, the
  stack, the host).
- An *English sentence* is two or more words in a row, separated only by spaces and
  ``, ; :`` (a table cell, a Japanese character or any other sign ends the row). Two, not
  three, so that a participant written "Drill runner" counts too.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

TOOLS = {"faultlab", "python", "locust", "matplotlib", "jinja", "postgres", "sha256sum", "chromium"}

_WORD = r"(?<![\w.\-/=\[@])[A-Za-z]+(?:['’-][A-Za-z]+)*(?![\w.\-/=\[@])"
_ROW = re.compile(rf"{_WORD}(?:[ \t]*[,;:]?[ \t]+{_WORD})+")
_ONE = re.compile(_WORD)
_ABBREVIATION = re.compile(r"^[A-Z]{2,}s?$")
_CODE_MD = re.compile(r"`[^`\n]*`")
_JAPANESE = r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]"
_ASCII_PUNCTUATION = re.compile(rf"{_JAPANESE} ?[(),:;]|[(),:;] ?{_JAPANESE}")


class _Prose(HTMLParser):
    SKIP = {"code", "style", "script", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.depth += 1
        elif tag in ("td", "th", "li", "p", "dt", "dd", "h1", "h2", "h3", "div", "figcaption", "title", "br"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.depth -= 1
        elif tag in ("td", "th", "li", "p", "dt", "dd"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.depth == 0:
            self.parts.append(data)


def prose_of_html(page: str) -> str:
    """The text a reader of ``page`` reads, code and drawings left out; one cell per line."""
    parser = _Prose()
    parser.feed(page)
    return "".join(parser.parts)


def prose_of_markdown(md: str) -> str:
    """The text of a Markdown report, code spans left out; table cells on lines of their own."""
    text = _CODE_MD.sub(" ", md)
    return "\n".join(cell for line in text.splitlines() for cell in line.split("|"))


def english_sentences(prose: str, identifiers: set[str] = frozenset()) -> list[str]:
    """The English sentences in ``prose`` (see the module docstring for the rule)."""
    names = {n.lower() for n in identifiers} | TOOLS
    found = []
    for line in prose.splitlines():
        for match in _ROW.finditer(line):
            streak = best = 0
            for word in _ONE.findall(match.group(0)):
                english = not _ABBREVIATION.match(word) and word.lower() not in names
                streak = streak + 1 if english else 0
                best = max(best, streak)
            if best >= 2:
                found.append(match.group(0))
    return found


def ascii_punctuation_in_japanese(prose: str) -> list[str]:
    """Places where ASCII ``( ) , : ;`` stands next to Japanese text (full-width belongs there)."""
    return [prose[max(0, m.start() - 12):m.end() + 12] for m in _ASCII_PUNCTUATION.finditer(prose)]
