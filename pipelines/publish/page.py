"""The page kit of publishing's self-contained pages: the quality report (`report.py`) and the
what-if page (`whatif_page.py`).

Auditors and analysts open these pages offline, on a desktop with no network: the style is
inline (`CSS`), the charts are SVG drawn here, and nothing is fetched from anywhere. Every value
reaches a page through `escape` (or `escape_free_text` for free text), and coordinates are
written with one decimal, so the same tables give the same bytes.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from pipelines.core import gbt2260, idnumbers
from pipelines.policy.catalogue import catalogue

# the colours of the badges in `CSS`, for the charts
STATUS_COLOUR = {"PASSED": "#2e7d32", "FAILED": "#c62828", "MISSING": "#9e9e9e"}
BAR_COLOUR = "#1565c0"

CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",
"WenQuanYi Micro Hei",sans-serif;margin:24px auto;max-width:1240px;padding:0 16px;color:#212121;
font-size:14px;line-height:1.45}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;border-bottom:2px solid #1565c0;padding-bottom:3px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}
p.sub{color:#555;margin:0 0 12px}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}
th,td{border:1px solid #cfd8dc;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#eceff1;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:600;background:#f5f5f5}
code,.hash{font-family:"DejaVu Sans Mono",Consolas,monospace;font-size:12px}
.hash{word-break:break-all}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;
font-weight:600;white-space:nowrap}
.PASSED,.EVALUATED{background:#2e7d32}.FAILED{background:#c62828}
.MISSING{background:#9e9e9e}.NOT_EVALUATED{background:#ef6c00}
.ok{color:#2e7d32;font-weight:700}.bad{color:#c62828;font-weight:700}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid #cfd8dc;border-radius:6px;padding:10px 14px;min-width:250px;flex:1}
.card .big{font-size:22px;font-weight:700}
.card.alert{border-color:#c62828;background:#ffebee}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(236px,1fr));gap:10px}
.cell{border:1px solid #cfd8dc;border-radius:6px;padding:6px 8px}
.cell .name{font-weight:600}.cell .fig{color:#555;font-size:12px}
.note{color:#555;font-size:13px}
ul.examples{margin:0;padding-left:16px;font-size:12px}
footer{margin-top:36px;color:#555;font-size:12px;border-top:1px solid #cfd8dc;padding-top:8px}
"""


# ------------------------------------------------------------------ values as HTML
def escape(value: object) -> str:
    """Every value reaches the page through here (or `escape_free_text` for free text)."""
    return "" if value is None else html.escape(str(value), quote=True)


def escape_free_text(value: object) -> str:
    """Free text from the tables (reasons, examples): identity numbers masked once more
    (`idnumbers.scrub`), then escaped."""
    return "" if value is None else escape(idnumbers.scrub(str(value)))


def format_count(value: int | None) -> str:
    """A count with thousands separators; a dash for none."""
    return "—" if value is None else f"{int(value):,}"


def badge(status: str | None, label: str) -> str:
    """A status as a coloured badge (the colours are `CSS`'s classes of the status)."""
    s = status or ""
    return f'<span class="badge {escape(s)}">{escape(label)} {escape(s)}</span>'


def table(headers: Sequence[tuple[str, bool]], rows: Iterable[str], cls: str = "") -> str:
    """`headers`: (label HTML, numeric?); `rows`: ready `<tr>` strings."""
    head = "".join(f'<th class="n">{h}</th>' if num else f"<th>{h}</th>" for h, num in headers)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>\n{''.join(rows)}</tbody></table>\n"


def table_cell(value: str, numeric: bool = False) -> str:
    """A `<td>` of ready HTML; a numeric one is right-aligned."""
    return f'<td class="n">{value}</td>' if numeric else f"<td>{value}</td>"


# ------------------------------------------------------------------ names shown beside codes
def county_names() -> dict[str, str]:
    """County code → its latest name (GB/T 2260)."""
    names: dict[str, tuple[int, str]] = {}
    for p in gbt2260.periods():
        if p.code not in names or p.end >= names[p.code][0]:
            names[p.code] = (p.end, p.name)
    return {code: name for code, (_, name) in names.items()}


def rule_names() -> dict[str, str]:
    """Rule id → its Chinese name (the rule catalogue)."""
    return {r.rule_id: r.name_zh for r in catalogue()}


# ------------------------------------------------------------------ charts (inline SVG)
def _coordinate(x: float) -> str:
    """SVG coordinates with one decimal, so the bytes do not depend on float noise."""
    return f"{x:.1f}"


def bar_chart_svg(items: Sequence[tuple[str, int]], title: str) -> str:
    """A horizontal bar chart: one bar per (label, value), in the order given."""
    label_w, bar_w, value_w, row_h, top = 300, 560, 90, 17, 4
    width = label_w + bar_w + value_w
    height = top * 2 + row_h * len(items)
    top_value = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        w = max(bar_w * value / top_value, 1.0)
        parts.append(
            f'<text x="{label_w - 8}" y="{_coordinate(y + row_h * 0.68)}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{label_w}" y="{_coordinate(y + 3)}" width="{_coordinate(w)}" '
            f'height="{row_h - 6}" fill="{BAR_COLOUR}"><title>{escape(label)}: '
            f"{format_count(value)}</title></rect>"
            f'<text x="{_coordinate(label_w + w + 6)}" y="{_coordinate(y + row_h * 0.68)}">'
            f"{format_count(value)}</text>"
        )
    parts.append(
        f'<line x1="{label_w}" y1="{top}" x2="{label_w}" y2="{height - top}" stroke="#607d8b"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def history_svg(points: Sequence[tuple[str, int | None, str | None]], title: str) -> str:
    """Accepted rows per quarter for one extract: (quarter, rows accepted, status) per bar; a
    quarter without a row for the extract is drawn as a grey tick."""
    width, height, left, right, top, bottom = 224, 84, 4, 4, 14, 18
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    slot = plot_w / n
    top_value = max((v or 0 for _, v, _ in points), default=0) or 1
    base = top + plot_h
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" font-size="10">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="10" fill="#555">max {format_count(top_value)}</text>',
    ]
    short = n <= 8
    for i, (quarter, value, status) in enumerate(points):
        x = left + i * slot + slot * 0.15
        w = slot * 0.7
        label = f"{quarter}: {format_count(value)} {status or 'no data 无数据'}"
        if value is None:
            parts.append(
                f'<rect x="{_coordinate(x)}" y="{_coordinate(base - 2)}" '
                f'width="{_coordinate(w)}" height="2" '
                f'fill="#bdbdbd"><title>{escape(label)}</title></rect>'
            )
        else:
            h = max(plot_h * value / top_value, 1.0) if value else 1.0
            colour = STATUS_COLOUR.get(status or "", "#9e9e9e")
            parts.append(
                f'<rect x="{_coordinate(x)}" y="{_coordinate(base - h)}" '
                f'width="{_coordinate(w)}" height="{_coordinate(h)}" '
                f'fill="{colour}"><title>{escape(label)}</title></rect>'
            )
        if short or i in (0, n - 1):
            text = quarter[2:] if short else quarter
            parts.append(
                f'<text x="{_coordinate(x + w / 2)}" y="{height - 8}" text-anchor="middle">'
                f"{escape(text)}</text>"
            )
    parts.append(
        f'<line x1="{left}" y1="{_coordinate(base)}" x2="{width - right}" '
        f'y2="{_coordinate(base)}" stroke="#607d8b"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


# ------------------------------------------------------------------ the page
def page(title: str, body: Sequence[str]) -> str:
    """A self-contained page: the style inline, no script, nothing fetched."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
