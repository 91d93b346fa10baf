"""Colab notebooks from the chapters (``make colab``): MyST Markdown rewritten as plain Markdown that Colab
(or any Jupyter) renders, with the site's numbering.

Why a converter of our own: ``jupytext`` only changes the *file format* (the MyST directives stay), and
``sphinx-tojupyter`` rebuilds notebooks from the Sphinx doctree, which loses the stored outputs and does not
know the ``sphinx-proof``/``sphinx-exercise`` nodes. Here each Markdown cell is rewritten in place:

* ``{prf:theorem}`` and its kin, ``{exercise}`` and admonitions → a bold header ("**Theorem 2
  (Donsker–Varadhan).**", numbered as on the site) and the body as a blockquote, math kept as ``$…$``;
  ``{prf:proof}`` → "**Proof.** … ∎" in a blockquote; solutions removed (with ``tools/student_copy.py``);
* ``{prf:ref}``/``{ref}``/``{numref}``/``{doc}``/``{eq}`` → the site's text ("Theorem 2", "Exercise 5")
  as a link to the published page; ``{cite}`` → "(Xu & Raginsky, 2017)"; relative links → absolute;
* MyST targets ``(label)=`` and ``%`` comments are dropped; equation labels ``$$ … $$ (label)`` too.

The numbers come from the built HTML site (``make book``), so they are the site's by construction. The published
site's address is derived from ``repository.url`` in ``_config.yml`` (the one place naming the repository).
Output: ``_build/colab/book/*.ipynb`` (readers: stored outputs kept) and, with ``--student``,
``_build/colab-student/book/*.ipynb`` (the student copy: no outputs, a "Your answer" cell after each exercise).
The release workflow publishes these folders to the ``colab`` and ``colab-student`` branches, which the launch
buttons open (``repository.branch`` of the site build).

    python tools/colab_notebooks.py [--site _build/html] [--out _build/colab] [--student]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

import nbformat
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools.notebook_text import Target, exercise_names, read_notebook, site_index  # noqa: E402

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*?)\s*$")
OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*)$")
ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<content>[^`]*)`")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$")
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<url>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")
PROOF_KINDS = {"axiom", "theorem", "lemma", "algorithm", "definition", "remark", "conjecture", "corollary",
               "criterion", "example", "property", "observation", "proposition", "assumption", "notation"}
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error",
               "seealso", "admonition", "margin", "sidebar", "dropdown"}
SOLUTIONS = {"solution", "solution-start", "solution-end"}
BANNER_MARK = "<!-- runtime-banner -->"


def repository_parts(cfg: dict) -> tuple[str, str]:
    match = re.match(r"https://github\.com/([^/]+)/([^/]+?)/?$", cfg["repository"]["url"])
    if not match:
        raise ValueError(f"repository.url must be https://github.com/OWNER/NAME, got {cfg['repository']['url']!r}")
    return match.group(1), match.group(2)


def site_url(cfg: dict) -> str:
    """The published site (GitHub Pages of the repository), with a trailing slash."""
    owner, name = repository_parts(cfg)
    return f"https://{owner.lower()}.github.io/{name}/"


def bibliography(bib: pathlib.Path) -> dict[str, tuple[str, str]]:
    """``{key: (authors as cited, year)}``: "Xu & Raginsky", "Bu et al."."""
    from pybtex.database import parse_file

    out = {}
    for key, entry in parse_file(str(bib)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [" ".join(p.last_names).replace("{", "").replace("}", "") for p in people]
        who = (last[0] if len(last) == 1 else f"{last[0]} & {last[1]}" if len(last) == 2
               else f"{last[0]} et al." if last else entry.fields.get("title", key))
        out[key] = (who, entry.fields.get("year", "n.d."))
    return out


class Converter:
    """MyST Markdown → Colab Markdown for one book, given the built site's anchors and the bibliography."""

    def __init__(self, index: dict[str, Target], bib: dict[str, tuple[str, str]], base_url: str,
                 raw_url: str, page: str):
        self.index, self.bib, self.base, self.raw, self.page = index, bib, base_url, raw_url, page

    # -- roles ---------------------------------------------------------------------------------
    def link(self, label: str, text: str | None = None) -> str:
        target = self.index.get(label)
        if target is None:
            raise KeyError(f"{self.page}: reference to {label!r}, which the built site does not have")
        anchor = f"#{target.anchor}" if target.anchor else ""
        return f"[{text or target.text}]({self.base}{target.page}{anchor})"

    def cite(self, role: str, keys: str, before: str = "") -> str:
        """The citation as text; a parenthetical one right after its authors' names ("Zhou et al.
        {cite}`…`") gives only the year, as "Zhou et al. (2019)", not "Zhou et al. (Zhou et al., 2019)"."""
        parts, named = [], True
        for key in (k.strip() for k in keys.split(",")):
            if key not in self.bib:
                raise KeyError(f"{self.page}: citation key {key!r} is not in references.bib")
            who, year = self.bib[key]
            parts.append((who, year))
            lead = re.escape(who.split(" et al.")[0].split(" & ")[0])
            named = named and bool(re.search(rf"\b{lead}(?: et al\.| (?:and|&) [\w-]+)?\s*$", before))
        if role in ("cite:t", "cite:ts"):
            return "; ".join(f"{who} ({year})" for who, year in parts)
        if named and len(parts) == 1:
            return f"({parts[0][1]})"
        return "(" + "; ".join(f"{who}, {year}" for who, year in parts) + ")"

    def role(self, m: re.Match, before: str = "") -> str:
        role, content = m.group("role"), m.group("content")
        explicit = EXPLICIT.match(content)
        text, label = (explicit.group("text"), explicit.group("target")) if explicit else (None, content)
        if role.startswith("cite"):
            return self.cite(role, content, f"{before} {m.string[:m.start()]}")
        if role in ("prf:ref", "ref", "numref"):
            if role == "numref" and text and "%s" in text:
                return self.link(label, text.replace("%s", self.index[label].text.split()[-1]))
            return self.link(label, text)
        if role == "eq":
            return self.link(f"equation-{label}", text)
        if role == "doc":
            name = (pathlib.PurePosixPath(self.page).parent / label).as_posix()
            name = re.sub(r"(^|/)[^/]+/\.\./", r"\1", name)
            return self.link(f"doc:{name}", text)
        if role == "math":
            return f"${content}$"
        if role in ("term", "abbr", "sub", "sup", "kbd", "guilabel", "menuselection", "file", "samp"):
            return text or content
        raise ValueError(f"{self.page}: no Colab rendering for the role {{{role}}}")

    def absolute(self, m: re.Match) -> str:
        url = m.group("url")
        if re.match(r"^[a-z][a-z0-9+.-]*:", url):  # http:, https:, mailto:, ...
            return m.group(0)
        path, _, anchor = url.partition("#")
        here = pathlib.PurePosixPath(self.page).parent
        if not path:
            target = f"{self.base}{self.page}"
        elif m.group("bang"):
            target = f"{self.raw}{(here / path).as_posix()}"
        else:
            page = re.sub(r"\.(md|ipynb)$", ".html", (here / path).as_posix())
            target = f"{self.base}{page}"
        return f"{m.group('bang')}[{m.group('text')}]({target}{'#' + anchor if anchor else ''}{m.group('title') or ''})"

    def inline(self, line: str, before: str = "") -> str:
        """``line`` with its roles and links rewritten; ``before``: the text just before it (a citation
        may follow its authors' names across a line break)."""
        return LINK.sub(self.absolute, ROLE.sub(lambda m: self.role(m, before), line))

    # -- blocks --------------------------------------------------------------------------------
    def convert(self, source: str) -> str:
        try:
            lines = self.block(source.splitlines())
        except (ValueError, KeyError) as exc:  # every error names the page it comes from
            msg = str(exc.args[0]) if exc.args else ""
            if msg.startswith(f"{self.page}:"):
                raise
            raise type(exc)(f"{self.page}: {msg}") from None
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")

    def block(self, lines: list[str]) -> list[str]:
        out, i = [], 0
        open_math = False  # the last line written ends inside an inline formula
        while i < len(lines):
            line = lines[i]
            m = FENCE.match(line)
            plain_fence = re.match(r"^\s*(`{3,}|~{3,})(?!\{)", line)
            if m:
                body, i = self._body(lines, i + 1, m.group("fence"))
                out.extend(self.directive(m.group("name"), m.group("arg"), body))
            elif plain_fence:  # a code block: copied verbatim
                fence = plain_fence.group(1)
                out.append(line)
                i += 1
                while i < len(lines) and not lines[i].strip().startswith(fence):
                    out.append(lines[i])
                    i += 1
                if i < len(lines):
                    out.append(lines[i])
                i += 1
            elif re.match(r"^\s*\([\w:.-]+\)=\s*$", line) or re.match(r"^\s*%", line):
                i += 1  # MyST target or comment
            else:
                line = re.sub(r"^(\s*\$\$)\s*\([\w:.-]+\)\s*$", r"\1", line)  # $$ … $$ (label)
                line = self.inline(line, out[-1] if out and i and lines[i - 1].strip() else "")
                if open_math and line.strip():  # an inline formula wrapped in the source: one line
                    out[-1] = f"{out[-1]} {line.strip()}"
                else:
                    out.append(line)
                open_math = _open_inline_math(out[-1])
                i += 1
                continue
            open_math = False
        return out

    @staticmethod
    def _body(lines, start, fence):
        body, i = [], start
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"unclosed directive fence {fence!r}")
        return body, i + 1

    def directive(self, name: str, arg: str, body: list[str]) -> list[str]:
        options = {}
        while body and OPTION.match(body[0]):
            opt = OPTION.match(body[0])
            options[opt.group("key")] = opt.group("value")
            body = body[1:]
        kind = name.split(":", 1)[1] if name.startswith("prf:") else name
        if name in SOLUTIONS:
            return []
        content = self.block(body)
        if name == "prf:proof":
            return ["> **Proof.**" + (f" {self.inline(arg)}" if arg else ""), ">",
                    *_quote(content), "> ∎", ""]
        if name.startswith("prf:") and kind in PROOF_KINDS or name == "exercise":
            label = options.get("label")
            number = self.index[label].text if label in self.index else kind.capitalize()
            if label and label not in self.index and "nonumber" not in options:
                raise KeyError(f"{self.page}: {name} {label!r} is not on the built site (stale build?)")
            title = f" ({self.inline(arg)})" if arg else ""
            return [f"> **{number}{title}.**", ">", *_quote(content), ""]
        if name in ADMONITIONS:
            title = self.inline(arg) if arg else name.capitalize()
            return [f"> **{title}**", ">", *_quote(content), ""]
        if name == "math":
            return ["$$", *body, "$$", ""]
        if name in ("figure", "image"):
            alt = options.get("alt", "figure")
            # a Markdown link target ends at a space: percent-encode spaces of the path (Colab decodes them)
            img = self.absolute(LINK.match(f"![{alt}]({arg.replace(' ', '%20')})"))
            return [img, "", *content, ""]
        raise ValueError(f"{self.page}: no Colab rendering for the directive {{{name}}}")


INLINE_DOLLAR = re.compile(r"(?<![\\$])\$(?!\$)")


def _open_inline_math(line: str) -> bool:
    """Whether ``line`` ends inside an inline ``$…$`` (an odd number of lone, unescaped dollars outside
    code spans)."""
    return len(INLINE_DOLLAR.findall(re.sub(r"`[^`]*`", "", line))) % 2 == 1


def _join_displays(lines: list[str]) -> list[str]:
    """Each ``$$ … $$`` display on one line: in a blockquote a display over several lines carries the
    ``> `` marks into the formula (JupyterLab, jupyterlab#16755). TeX comments would swallow the rest."""
    out, display = [], None
    for line in lines:
        if display is None and line.strip().startswith("$$") and line.count("$$") % 2 == 1:
            display = [line.strip()]
        elif display is not None:
            if "%" in re.sub(r"\\%", "", line):
                raise ValueError(f"a TeX comment in a display formula: {line.strip()!r}")
            display.append(line.strip())
            if "$$" in line:
                out.append(" ".join(p for p in display if p))
                display = None
        else:
            out.append(line)
    if display is not None:
        raise ValueError(f"unclosed display formula: {display[0]!r}")
    return out


def _quote(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return [f"> {line}" if line.strip() else ">" for line in _join_displays(lines)]


def banner_markdown(status: dict, name: str, gpu: bool) -> str:
    """The runtime banner's text for notebook ``name`` (e.g. "book/ch01_x.ipynb") from the stored run."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from runtime_banner import banner_text

    return f"{BANNER_MARK}\n> ⏱ {banner_text(status.get('notebooks', {}).get(name), gpu)}"


BOOTSTRAP_NOTE = ("The next cell installs the book's companion library `poprisk` (pinned to this release) when "
                  "the notebook runs on Colab; anywhere else it does nothing. *Run all* stops at the first "
                  "exercise left for you (a cell that raises `NotImplementedError`): the chapter itself "
                  "has run by then.")


def caption_cell(cell, converter: Converter):
    """The figure caption of a code cell (``mystnb.figure``, which Colab does not show) as the Markdown
    cell to put under it, numbered as on the site ("**Fig. 3.** …"); None for a cell without one."""
    figure = cell.metadata.get("mystnb", {}).get("figure", {})
    if not figure.get("caption"):
        return None
    target = converter.index.get(figure.get("name", ""))
    number = f"**{target.text}.** " if target else ""
    return nbformat.v4.new_markdown_cell(number + " ".join(converter.convert(figure["caption"]).split("\n")))


def convert_notebook(nb, converter: Converter, banner: str | None = None):
    """Rewrite every Markdown cell of ``nb`` (in place); the banner goes right under the title, then the
    Colab bootstrap with a sentence saying what it does, and each figure's caption under the figure; cells
    hidden on the site (``hide-input``, ``hide-output``) start collapsed."""
    from tools.new_notebook import is_bootstrap

    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = converter.convert(cell.source)
        cells.append(cell)
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "hide-input" in tags:  # collapsed as on the site (Colab, Jupyter)
            cell.metadata["cellView"] = "form"
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        if cell.cell_type == "code" and "hide-output" in tags:
            cell.metadata.setdefault("jupyter", {})["outputs_hidden"] = True
        caption = caption_cell(cell, converter) if cell.cell_type == "code" else None
        if caption is not None:
            cells.append(caption)
    boot = [c for c in cells if is_bootstrap(c)]
    cells = [c for c in cells if not is_bootstrap(c)]
    first = next((c for c in cells if c.cell_type == "markdown"), None)
    if first is None:  # a notebook without prose: the banner and the bootstrap note get a title cell
        first = nbformat.v4.new_markdown_cell(f"# {converter.page.rsplit('/', 1)[-1].removesuffix('.html')}")
        cells.insert(0, first)
    if banner:
        head, _, rest = first.source.partition("\n")
        first.source = f"{head}\n\n{banner}\n{rest}"
    if boot:
        at = cells.index(first) + 1
        cells[at:at] = [nbformat.v4.new_markdown_cell(BOOTSTRAP_NOTE), *boot]
    nb.cells = cells
    return nb


def build(site: pathlib.Path, out: pathlib.Path, *, student: bool = False) -> list[pathlib.Path]:
    """Write the Colab notebook of every chapter to ``out/book/``; return the paths written."""
    from tools.student_copy import strip_notebook

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    index = site_index(site)
    bib = bibliography(ROOT / "references.bib")
    owner, name = repository_parts(cfg)
    tag = f"v{__import__('tools.new_notebook', fromlist=['version']).version()}"
    raw = f"https://raw.githubusercontent.com/{owner}/{name}/{tag}/"
    status_path = ROOT / "book" / "execution_status.json"
    status = json.loads(status_path.read_text()) if status_path.exists() else {}
    written = []
    for path in sorted((ROOT / "book").glob("ch*.ipynb")):
        rel = path.relative_to(ROOT).as_posix()
        nb = read_notebook(path)
        nb, _ = strip_notebook(nb, names=exercise_names(index), keep_outputs=not student, answer_cells=student)
        converter = Converter(index, bib, site_url(cfg), raw, rel.replace(".ipynb", ".html"))
        convert_notebook(nb, converter, banner_markdown(status, rel, nb.metadata.get("accelerator") == "GPU"))
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=pathlib.Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=pathlib.Path)
    parser.add_argument("--student", action="store_true", help="the student copy (no outputs, answer cells)")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "_build" / ("colab-student" if args.student else "colab")
    written = build(args.site, out, student=args.student)
    print(f"wrote {len(written)} Colab notebooks to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
