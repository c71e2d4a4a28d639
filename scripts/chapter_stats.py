"""How a reader meets each chapter: the share of its module's public functions and classes that a visible cell of the
chapter shows (an example, not an exported definition or a hidden check), the exported cells that hold more than one
definition, and the figures its committed outputs carry.

    python scripts/chapter_stats.py          # a line per chapter, then the totals

`tests/test_chapters.py` holds the course to its shares: at least 70% shown in all, at least half in every chapter.
"""
from __future__ import annotations

import ast, json, re, sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIRECTIVE = re.compile(r"^#\|\s*(\S+)")
HIDDEN = {"export", "exports", "exporti", "hide"}  # a cell with one of these directives is not an example a reader sees
PLOTS = {"subplots", "figure", "imshow", "plot", "bar", "barh", "hist", "label_bars"}  # calls that draw a figure


def draws(source: str) -> bool:
    "Whether a cell draws a figure that it shows (a plotting call, and no `plt.close`, which keeps it from the output)."
    try: tree = ast.parse("\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!"))))
    except SyntaxError: return False
    called = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "") for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return bool(called & PLOTS) and "close" not in called


@dataclass
class Chapter:
    name: str
    module: str | None
    public: list[str]  # the module's public functions and classes, in order
    shown: list[str]  # those that a visible cell of the chapter names
    crowded: int  # exported cells with more than one function or class
    exported: int  # exported cells
    figures: int  # committed image outputs
    draws: bool  # a visible cell draws a figure (so the committed chapter should show one)
    errors: list[str] = field(default_factory=list)  # committed error outputs (the cell's first line)

    @property
    def share(self) -> float: return len(self.shown) / len(self.public) if self.public else 1.0


def directives(source: str) -> set[str]:
    "The `#| ...` directives of a cell (its first word each)."
    return {m.group(1) for line in source.splitlines() if (m := DIRECTIVE.match(line.strip()))}


def chapter(path: Path) -> Chapter | None:
    "The figures of one chapter notebook; None for the index."
    cells = json.loads(path.read_text())["cells"]
    code = [(c, "".join(c["source"])) for c in cells if c["cell_type"] == "code"]
    exp = next((m.group(1) for _, s in code if (m := re.search(r"#\|\s*default_exp\s+(\S+)", s))), None)
    if exp is None and path.stem == "index": return None  # (the README)
    tree = ast.parse((ROOT / "dudek" / f"{exp}.py").read_text()) if exp else ast.Module(body=[], type_ignores=[])  # a chapter that exports nothing
    public = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith("_")]
    visible = "\n".join(s for _, s in code if not directives(s) & HIDDEN)
    commands = {n.name: d.args[0].value for n in tree.body if isinstance(n, ast.FunctionDef) for d in n.decorator_list
                if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command" and d.args and isinstance(d.args[0], ast.Constant)}
    named = lambda n: re.search(rf"\b{re.escape(n)}\b", visible) or (n in commands and re.search(rf"\[\"{commands[n]}\"|dudek {commands[n]}\b", visible))
    shown = [n for n in public if named(n)]  # a command is shown by a visible run of it (`runner.invoke(app, ["synth", ...])`)
    exported = [s for _, s in code if directives(s) & {"export", "exports"}]
    defs = lambda s: sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in ast.parse(s).body)
    outputs = [(s, o) for c, s in code for o in c.get("outputs", [])]
    figures = sum(any(k.startswith("image/") for k in o.get("data", {})) for _, o in outputs)
    errors = [s.splitlines()[0] if s else "" for s, o in outputs if o.get("output_type") == "error"]
    drawn = any(draws(s) for _, s in code if not directives(s) & HIDDEN)
    return Chapter(path.stem, exp, public, shown, sum(defs(s) > 1 for s in exported), len(exported), figures, drawn, errors)


def chapters(nbs: Path = ROOT / "nbs") -> list[Chapter]:
    return [c for p in sorted(nbs.glob("*.ipynb")) if (c := chapter(p)) is not None]


def main() -> None:
    cs = chapters()
    for c in cs:
        missing = [n for n in c.public if n not in c.shown]
        print(f"{c.name:20} shown {len(c.shown):3}/{len(c.public):3} {c.share:5.0%}  crowded cells {c.crowded:2}/{c.exported:2}  "
              f"figures {c.figures:2}{' (draws)' if c.draws else ''}" + (f"  not shown: {', '.join(missing)}" if missing else ""))
    shown, public = sum(len(c.shown) for c in cs), sum(len(c.public) for c in cs)
    print(f"in all: {shown}/{public} shown ({shown / public:.0%}); exported cells with several definitions "
          f"{sum(c.crowded for c in cs)}/{sum(c.exported for c in cs)}; chapters with figures {sum(c.figures > 0 for c in cs)}")


if __name__ == "__main__":
    sys.exit(main())
