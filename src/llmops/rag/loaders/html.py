"""HTML -> Markdown-like text with the stdlib parser: headings become ``#`` lines, block elements become
paragraphs, ``script``/``style``/``noscript``/``template`` are dropped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROP = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "ul", "ol", "li", "table",
    "tr", "br", "hr", "pre", "blockquote", "dl", "dt", "dd", "figure", "figcaption", "form",
}  # fmt: skip
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n+")


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.title = ""
        self._drop = 0
        self._in_title = False
        self._heading: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _DROP:
            self._drop += 1
        elif tag in _HEADINGS:
            self._heading = _HEADINGS[tag]
            self.out.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK:
            self.out.append("\n\n" if tag not in ("br", "li", "tr", "dt", "dd") else "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _DROP:
            self._drop = max(0, self._drop - 1)
        elif tag in _HEADINGS:
            self._heading = None
            self.out.append("\n\n")
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._drop:
            return
        text = _SPACES.sub(" ", data.replace("\n", " ") if self._heading else data)
        self.out.append(text)


def html_to_markdown(html: str) -> tuple[str, str]:
    """(markdown-like text, the <title> or "")."""
    conv = _Converter()
    conv.feed(html)
    conv.close()
    lines = [line.strip() for line in "".join(conv.out).split("\n")]
    text = _BLANKS.sub("\n\n", "\n".join(lines)).strip()
    return text + "\n" if text else "", _SPACES.sub(" ", conv.title).strip()
