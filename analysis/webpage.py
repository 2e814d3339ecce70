"""The report as one self-contained HTML page (``report.html`` beside README.md): the README's
text, every figure embedded as an image, every table inline under its own anchor. It needs no
other file, so it reads the same offline, attached to an e-mail, or inside MLflow's artifact
viewer (where the Markdown page showed its image links as text and its table links led to 404s).
"""
from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #1b1b1b; }
h1, h2, h3 { line-height: 1.25; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: 13px; margin: .6em 0; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
img { max-width: none; height: auto; } p:has(> img) { overflow-x: auto; }
code { background: #f3f3f3; padding: 0 3px; }
"""

LINK = re.compile(r"\]\(((?:tables|figures)/[^)\s]+)\)")
PLACEHOLDER = "drkd-bench-image:"
IMAGE = re.compile(r"!\[([^\]]*)\]\((figures/[^)\s]+\.png)\)")


def anchor(rel: str) -> str:
    """The in-page anchor of a table (``tables/ranking_digits.md`` -> ``table-ranking_digits``)."""
    return "table-" + Path(rel).stem


def render(folder: Path) -> str:
    """The page built from ``folder``'s README.md, tables/*.md and figures/*.png."""
    folder = Path(folder)
    text = (folder / "README.md").read_text()

    images: list[str] = []

    def image(m: re.Match) -> str:  # a short placeholder now, the image's bytes after Markdown
        images.append(m.group(2))
        return f"![{m.group(1)}]({PLACEHOLDER}{len(images) - 1})"

    text = IMAGE.sub(image, text)
    text = _drop_file_links(text)
    text = _tables_where_cited(text, folder)
    text = IN_PAGE.sub(lambda m: m.group(1), text)  # a link within the page: its words
    tables = sorted((folder / "tables").glob("*.md")) if (folder / "tables").is_dir() else []
    if tables:
        text += "\n\n## The tables\n"
        for path in tables:
            rel = f"tables/{path.name}"
            text += (f'\n<h3 id="{anchor(rel)}">{html.escape(path.stem)}</h3>\n\n'
                     + path.read_text() + "\n")
    body = markdown.markdown(text, extensions=["tables", "toc", "attr_list", "md_in_html"],
                             output_format="html")
    # the images go in last: Markdown's inline patterns never scan megabytes of base64
    body = re.sub(re.escape(PLACEHOLDER) + r"(\d+)", lambda m: "data:image/png;base64," + base64.
                  b64encode((folder / images[int(m.group(1))]).read_bytes()).decode(), body)
    title = html.escape(next((line[2:] for line in text.splitlines() if line.startswith("# ")),
                             "drkd-bench report"))
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{title}</title><style>{STYLE}</style></head>\n<body>\n{body}\n"
            "</body></html>\n")


#: A link to a place in the page itself (``[below](#every-comparison-in-words)``).
IN_PAGE = re.compile(r"\[([^\]]+)\]\(#[^)\s]+\)")


def _tables_where_cited(text: str, folder: Path) -> str:
    """Each table a paragraph cites opens under that paragraph (a collapsed ``<details>``), and
    the citation becomes its words: inside MLflow's artifact viewer (an iframe sandboxed to
    scripts only) a link to an anchor of the page went nowhere, so the page needs none."""
    out: list[str] = []
    pending: list[str] = []  # the tables the current paragraph cites

    def cite(m: re.Match) -> str:
        pending.append(m.group(2))
        return m.group(1)

    for line in text.split("\n"):
        if not line.strip() and pending:
            out.append("")
            out += [_details(folder, rel) for rel in dict.fromkeys(pending)]
            pending.clear()
        out.append(TABLE_LINK.sub(cite, line))
    if pending:
        out += [""] + [_details(folder, rel) for rel in dict.fromkeys(pending)]
    return "\n".join(out)


TABLE_LINK = re.compile(r"\[([^\]]+)\]\((tables/[^)\s]+\.md)\)")


def _details(folder: Path, rel: str) -> str:
    path = folder / rel
    if not path.is_file():
        return ""
    return (f'<details markdown="1"><summary>table: {html.escape(path.stem)}</summary>\n\n'
            + path.read_text().strip() + "\n\n</details>\n")


def _drop_file_links(text: str) -> str:
    """Links to a CSV, LaTeX or PDF file become their words (those files sit beside README.md;
    inside MLflow or an e-mail they are not there): ``([CSV](tables/x.csv))`` goes."""
    text = re.sub(r" ?\(\[(?:CSV|PDF)\]\((?:tables|figures)/[^)]+\)(?:, \[LaTeX\]\([^)]+\))?\)",
                  "", text)
    return re.sub(r"\[([^\]]+)\]\((?:tables|figures)/[^)]+\.(?:csv|tex|pdf)\)", r"\1", text)


def write(folder: Path) -> Path:
    """``folder/report.html`` from the report in ``folder``."""
    path = Path(folder) / "report.html"
    path.write_text(render(folder))
    return path
