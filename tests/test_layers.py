"""The package's layering: a module imports only modules above it.

`ORDER` lists the modules lowest first; every `dudek/*.py` (but the generated `_modidx.py` and the
package's `__init__.py`/`__main__.py`) must be in it, and may import only the `dudek` modules listed
before it, at the top of the file or inside a function alike. Modules of the order that do not exist
yet are simply absent.
"""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "dudek"
ORDER = ["labels", "files", "annotations", "truth", "video", "config", "engine", "plays", "signatures", "looks", "broadcast", "synthetic", "explore", "metrics", "postprocess",
         "augment", "model", "dataset", "infer", "loop", "vision", "train", "tune", "pipeline", "download", "site", "ablations", "cli"]
SKIP = {"_modidx", "__init__", "__main__"}


def dudek_imports(source: str, modules) -> set[str]:
    "The `dudek` modules that `source` imports anywhere: `from .x import`, `from dudek.x import`, `import dudek.x`, `from . import x`."
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "dudek" and len(parts) > 1: found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            parts = node.module.split(".") if node.module else []
            if node.level == 1: rest = parts
            elif node.level == 0 and parts[:1] == ["dudek"]: rest = parts[1:]
            else: continue
            if rest: found.add(rest[0])
            else: found.update(a.name for a in node.names if a.name in modules)  # `from . import x`: x may be a name, not a module
    return found


def layer_violations(sources: dict[str, str], order=ORDER) -> list[str]:
    "One message per module missing from `order` and per import of a module that is not above the importer in `order`."
    rank = {m: i for i, m in enumerate(order)}
    problems = [f"dudek/{m}.py is not in the layer order: add {m!r} to ORDER in tests/test_layers.py (below every module it imports)"
                for m in sorted(sources) if m not in rank]
    for m in sorted(sources):
        if m not in rank: continue
        for imp in sorted(dudek_imports(sources[m], set(sources))):
            if imp not in rank:
                problems.append(f"dudek.{m} imports dudek.{imp}, which is not in the layer order: add {imp!r} to ORDER in tests/test_layers.py")
            elif rank[imp] >= rank[m]:
                problems.append(f"dudek.{m} imports dudek.{imp}, which is not above it in the layer order "
                                f"(a module imports only modules above it; {imp!r} comes after {m!r})")
    return problems


def package_sources() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(PKG.glob("*.py")) if p.stem not in SKIP}


def test_modules_import_only_modules_above_them():
    assert len(ORDER) == len(set(ORDER)), "ORDER lists a module twice"
    sources = package_sources()
    assert {"labels", "files", "annotations", "cli"} <= set(sources), f"the package's modules were not found in {PKG}"
    problems = layer_violations(sources)
    assert not problems, "\n".join(problems)


def test_layer_check_reports_violations():
    sources = {"labels": "import numpy as np\ndef f():\n    from .files import atomic_write\n",  # inside a function: reported
               "files": "import os\n",
               "annotations": "from dudek.labels import TEAMS\nfrom dudek.files import InputError\n",  # fine
               "video": "def g():\n    import dudek.train\n",                               # `import dudek.x`: reported
               "train": "from dudek import annotations, __version__\n",                  # fine (`__version__` is no module)
               "config": "from . import cli\n",                                             # `from . import x`: reported
               "cli": "from .train import fit\n",                                           # fine
               "extra": "from .labels import TEAMS\n"}                                      # not in the order: reported
    problems = layer_violations(sources)
    assert problems == [
        "dudek/extra.py is not in the layer order: add 'extra' to ORDER in tests/test_layers.py (below every module it imports)",
        "dudek.config imports dudek.cli, which is not above it in the layer order (a module imports only modules above it; 'cli' comes after 'config')",
        "dudek.labels imports dudek.files, which is not above it in the layer order (a module imports only modules above it; 'files' comes after 'labels')",
        "dudek.video imports dudek.train, which is not above it in the layer order (a module imports only modules above it; 'train' comes after 'video')",
    ], problems
    assert layer_violations(sources, order=["files", "labels", "annotations", "train", "video", "cli", "config", "extra"]) == []
