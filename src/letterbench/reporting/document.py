"""A report as data (sections of blocks) and two writers that render the same sections: Markdown
(plots as files beside it) and self-contained HTML (plots embedded; readable on a phone: a table of
figures puts each row's name over its values there, so that every value shows without scrolling)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote


@dataclass
class Para:
    text: str
    lead: str = ""  # shown in bold before the text
    style: str = ""  # "note", "recommendation" or plain


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    best: list[set[int]] = field(default_factory=list)  # per row: columns (0 = first data column) starred
    prose: bool = False  # cells of text (wrap, left-aligned) rather than figures
    compact: bool = False  # a narrow summary: small type, names wrap, fits a phone


@dataclass
class Items:
    items: list[tuple[str, str]]  # (bold lead, text)


@dataclass
class Box:
    lead: str
    lines: list[str]  # one caveat each, most important first


@dataclass
class Figure:
    path: Path
    alt: str
    wide: bool = False  # fine detail: kept at least 720 px wide, scrolling sideways on a phone


@dataclass
class Fields:
    pairs: list[tuple[str, str]]


Block = Para | Table | Items | Box | Figure | Fields


@dataclass
class Section:
    title: str | None  # None: the top of the page, before any heading
    blocks: list[Block]
    id: str | None = None


STAR = " ★"


def starred(text: str, on: bool) -> str:
    return text + (STAR if on else "")


# ---------------------------------------------------------------- Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _md(text: str) -> str:
    """Text as Markdown shows it literally: paths with underscores, notes with <angles>, pipes in cells."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_block(block: Block, root: Path) -> list[str]:
    if isinstance(block, Para):
        lead = f"**{_md(block.lead)}** " if block.lead else ""
        return [("> " if block.style == "note" else "") + lead + _md(block.text), ""]
    if isinstance(block, Table):
        lines = ["| " + " | ".join(map(_md, block.header)) + " |", "|---" * len(block.header) + "|"]
        for r, row in enumerate(block.rows):
            best = block.best[r] if r < len(block.best) else set()
            cells = [_md(row[0])] + [starred(_md(t), i in best) for i, t in enumerate(row[1:])]
            lines.append("| " + " | ".join(c.replace("\n", "<br>") for c in cells) + " |")
        return [*lines, ""]
    if isinstance(block, Items):
        return [f"- **{_md(lead)}** {_md(text)}" for lead, text in block.items] + [""]
    if isinstance(block, Box):
        return [f"> **{_md(block.lead)}**", ">", *[f"> - {_md(line)}" for line in block.lines], ""]
    if isinstance(block, Figure):
        return [
            f"![{block.alt}]({quote(block.path.relative_to(root).as_posix(), safe='/:')})",
            "",
        ]  # spaces too
    return [f"- **{_md(k)}**: {_md(v)}" for k, v in block.pairs] + [""]


def to_markdown(title: str, sections: list[Section], root: Path) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        if section.title:
            lines += [f"## {_md(section.title)}", ""]
        for block in section.blocks:
            lines += _md_block(block, root)
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- HTML

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1rem;
line-height:1.45;color:#222;overflow-wrap:anywhere}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:.6rem .8rem;margin:.5rem 0}
.recommendation{background:#e8f4ea;border-left:4px solid #2e8b57;padding:.6rem .8rem}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:right;white-space:nowrap;overflow-wrap:normal}
td:first-child,th:first-child{text-align:left}td.best{background:#e8f4ea;font-weight:600}
table.prose td,table.prose th{text-align:left;white-space:normal;vertical-align:top;min-width:12rem}
img{max-width:100%;height:auto;display:block;margin:.5rem 0}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem .8rem}dt{font-weight:600}dd{margin:0}
.caveats ul{margin:.3rem 0 0;padding-left:1.2rem}img.wide{min-width:720px}
table.glance td:first-child{white-space:normal;min-width:6rem}tr.name{display:none}
table.figures td{white-space:normal}table.figures td:first-child{min-width:10rem}.nb{white-space:nowrap}
@media (max-width:600px){body{padding:.5rem}td,th{padding:.2rem .3rem;font-size:.8rem}
table.glance td,table.glance th{padding:.15rem .25rem;font-size:.75rem;white-space:normal}
table.glance td:first-child{min-width:4.5rem}
table.figures tr.name{display:table-row}table.figures tr.name th{text-align:left;background:#f6f6f6}
table.figures tbody td:first-child,table.figures thead th:first-child{display:none}
table.figures td,table.figures th,.nb{white-space:normal}}
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _unbroken(text: str) -> str:
    """A figure and its interval, each kept on one line; the line may break between them."""
    value, bracket, rest = text.partition(" (")
    parts = [value, bracket.strip() + rest] if bracket else [value]
    return " ".join(f'<span class="nb">{html.escape(p)}</span>' for p in parts)


def _html_table(block: Table) -> str:
    e = html.escape
    kind = "prose" if block.prose else "glance" if block.compact else "figures"
    head = "".join(f"<th>{e(h).replace('/', '/<wbr>')}</th>" for h in block.header)  # FLOPs/image may wrap
    rows = []
    for r, row in enumerate(block.rows):
        best = block.best[r] if r < len(block.best) else set()
        cells = [f"<td>{e(row[0])}</td>"]
        for i, text in enumerate(row[1:]):
            body = "<br>".join(_unbroken(line) if kind == "figures" else e(line) for line in text.split("\n"))
            cells.append(f'<td class="best">{body}{STAR}</td>' if i in best else f"<td>{body}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if kind == "figures":  # a group per row: on a phone its name stands over its values
        names = (
            f'<tr class="name"><th colspan="{len(row)}" scope="rowgroup">{e(row[0])}</th></tr>'
            for row in block.rows
        )
        body = "".join(f"<tbody>{name}{row}</tbody>" for name, row in zip(names, rows, strict=True))
    else:
        body = "<tbody>" + "".join(rows) + "</tbody>"
    return f'<div class="scroll"><table class="{kind}"><thead><tr>{head}</tr></thead>{body}</table></div>'


def _html_block(block: Block) -> str:
    e = html.escape
    if isinstance(block, Para):
        lead = f"<strong>{e(block.lead)}</strong> " if block.lead else ""
        style = f' class="{block.style}"' if block.style else ""
        return f"<p{style}>{lead}{e(block.text)}</p>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Items):
        return "<ul>" + "".join(f"<li><strong>{e(a)}</strong> {e(b)}</li>" for a, b in block.items) + "</ul>"
    if isinstance(block, Box):
        items = "".join(f"<li>{e(line)}</li>" for line in block.lines)
        return f'<div class="note caveats"><strong>{e(block.lead)}</strong><ul>{items}</ul></div>'
    if isinstance(block, Figure):
        image = f'<img src="{_data_uri(block.path)}" alt="{e(block.alt)}"'
        return f'<div class="scroll">{image} class="wide"></div>' if block.wide else image + ">"
    return "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in block.pairs) + "</dl>"


def to_html(title: str, sections: list[Section]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for section in sections:
        if section.title:
            ident = f' id="{e(section.id)}"' if section.id else ""
            parts.append(f"<h2{ident}>{e(section.title)}</h2>")
        parts += [_html_block(block) for block in section.blocks]
    parts.append("</body></html>")
    return "\n".join(parts)
