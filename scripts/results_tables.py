"""Print a README table from its committed results file, so that no figure of the README is typed by hand:

    python scripts/results_tables.py reproduce [RESULTS_FILE] [GROUP]   # benchmarks/reproduce_compare.py: the tiny reproduction
    python scripts/results_tables.py reproduce_times [RESULTS_FILE] [GROUP]   # where its time goes, stage by stage
    python scripts/results_tables.py reproduce_labels [RESULTS_FILE] [GROUP]   # its team AP per label on both leagues
    python scripts/results_tables.py factors     # benchmarks/league_factors.py: what each factor of the other league's look costs
    python scripts/results_tables.py augment     # benchmarks/league_augment.py: augmentations on three leagues' looks
    python scripts/results_tables.py ablations   # benchmarks/claims.py: the write-up's claims at the recipe's schedule
    python scripts/results_tables.py test_times  # benchmarks/test_times.py: how long the README's test commands take
    python scripts/results_tables.py train_games # benchmarks/train_games.py: the recipe on fewer and more training games

`tests/test_files.py` fails when a table in README.md differs from what this prints.
"""
import json, sys
from pathlib import Path

from dudek.ablations import baseline_agrees, row_precision, headline_figures, saved_table, factors_markdown, table_markdown, train_games_markdown, verdicts

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _runs(path, group):
    groups = json.loads(Path(path or RESULTS / "reproduce_tiny.json").read_text())["groups"]
    return groups[group or next(iter(groups))]["runs"]  # (the first group unless named)

def _row(name, v) -> str: return f"| {name} | " + " | ".join(f"{x:.3f}" for x in v) + f" | {sum(v) / len(v):.3f} [{min(v):.3f}-{max(v):.3f}] |"


def reproduce(path=None, group=None) -> str:
    "The tiny reproduction's headline figures: a column per seed, then the mean [range]."
    runs = _runs(path, group)
    rows = [("Team-mAP@1, test games", [r["training_league"]["team_map_at1"] for r in runs]),
            ("mAP@1, test games", [r["training_league"]["map_at1"] for r in runs]),
            ("Team-mAP@1, test games of the other league", [r["other_league"]["team_map_at1"] for r in runs]),
            ("mAP@1, test games of the other league", [r["other_league"]["map_at1"] for r in runs]),
            ("Team-mAP@1, validation games, untuned Soft-NMS", [r["validation"]["default"] for r in runs]),
            ("Team-mAP@1, validation games, tuned Soft-NMS", [r["validation"]["tuned"] for r in runs])]
    head = ["| | " + " | ".join(f"seed {k}" for k in range(len(runs))) + " | mean [range] |", "|---|" + "---|" * (len(runs) + 1)]
    return "\n".join(head + [_row(name, v) for name, v in rows])


def reproduce_times(path=None, group=None) -> str:
    "Where the tiny reproduction's time goes, from its stages' seconds (`pipeline.json`): a column per seed, then the mean [range]."
    runs = _runs(path, group)
    part = lambda r, names: sum(v for k, v in r["stage_seconds"].items() if k in names)
    rows = [("all stages (min)", [r["seconds"] / 60 for r in runs]),
            ("training: pretraining and fine-tuning (s)", [part(r, {"train"}) for r in runs]),
            ("synthetic games (s)", [part(r, {"data"}) for r in runs]),
            ("inference: validation games, both leagues' test games (s)", [part(r, {"infer-val", "infer-test", "infer-other"}) for r in runs]),
            ("Soft-NMS tuning (s)", [part(r, {"tune"}) for r in runs]),
            ("the lessons, report and scoring (s)", [part(r, set(r["stage_seconds"]) - {"train", "data", "infer-val", "infer-test", "infer-other", "tune"})
                                                      for r in runs])]
    head = ["| | " + " | ".join(f"seed {k}" for k in range(len(runs))) + " | mean [range] |", "|---|" + "---|" * (len(runs) + 1)]
    fmt = lambda name, v: f"| {name} | " + " | ".join(f"{x:.1f}" if "min" in name else f"{x:.0f}" for x in v) + (
        f" | {sum(v) / len(v):.1f} [{min(v):.1f}-{max(v):.1f}] |" if "min" in name else f" | {sum(v) / len(v):.0f} [{min(v):.0f}-{max(v):.0f}] |")
    return "\n".join(head + [fmt(name, v) for name, v in rows])


def reproduce_labels(path=None, group=None) -> str:
    "Team AP per label of the tiny reproduction on the test games of both leagues: per league a column per seed and the mean [range]."
    runs = _runs(path, group)
    leagues = {"training_league": "training league", "other_league": "other league"}
    head = ["| label | " + " | ".join(f"{name}, seed {k}" for name in leagues.values() for k in range(len(runs))) + " | "
            + " | ".join(f"{name}, mean [range]" for name in leagues.values()) + " |", "|---|" + "---|" * (len(leagues) * (len(runs) + 1))]
    lines = []
    for lb in runs[0]["training_league"]["team_ap"]:
        v = {lg: [r[lg]["team_ap"][lb] for r in runs] for lg in leagues}
        lines.append(f"| {lb} | " + " | ".join(f"{x:.3f}" for lg in leagues for x in v[lg]) + " | "
                     + " | ".join(f"{sum(v[lg]) / len(v[lg]):.3f} [{min(v[lg]):.3f}-{max(v[lg]):.3f}]" for lg in leagues) + " |")
    return "\n".join(head + lines)


def factors(path=None) -> str:
    "Team-mAP@1 of the reproductions on their test games remade with each factor of the other league's look, and what each costs."
    return factors_markdown(json.loads(Path(path or RESULTS / "league_factors.json").read_text())).strip()


def augment(path=None) -> str:
    "The augmentation table of `benchmarks/league_augment.py`."
    return table_markdown(json.loads(Path(path or RESULTS / "league_augment.json").read_text())["table"]).strip()


def ablations(path=None, reproduction=None) -> str:
    "The ablation table of `benchmarks/claims.py`, whether its baseline agrees with the reproduction's headline, each row's verdict, and the precision each row trained in."
    d = json.loads(Path(path or RESULTS / "ablations_tiny.json").read_text())
    repro = json.loads(Path(reproduction or RESULTS / "reproduce_tiny.json").read_text())
    by = {}
    for name, seeds in d["results"].items():
        for seed, scores in seeds.items(): by.setdefault(row_precision(scores), []).append(f"{name} {seed}")
    table = saved_table(d)  # (made again from its scores, by today's rules)
    lines = [table_markdown(table).strip(), "", baseline_agrees(table, headline_figures(repro))[1], "",
             *[f"- {v}" for v in verdicts(table)], "",
             "The precision each row trained in (variant and seed): "
             + "; ".join(f"{k}: {', '.join(v)}" for k, v in by.items()) + "."]
    return "\n".join(lines)


def test_times(path=None) -> str:
    "A line per measured test command of `benchmarks/test_times.py`: its time, pytest's summary, the machine and date."
    runs = json.loads(Path(path or RESULTS / "test_times.json").read_text())["runs"]
    names = {"whole": "the whole suite", "quick": "the quick subset"}
    line = lambda r: (f"{r['seconds'] / 60:.1f} min ({r['summary']}; {r['machine']['cpus']} CPU cores, {r['machine']['cpu_capability']}, "
                      f"{r['date'][:10]})")
    return "\n".join(f"- {name}: " + (line(runs[k]) if k in runs else f"not measured yet (`python benchmarks/test_times.py {k}`)")
                     for k, name in names.items())


def train_games(path=None) -> str:
    "The recipe's baseline on each training set of `benchmarks/train_games.py`: both leagues, the third look that chose, BLOCK."
    return train_games_markdown(json.loads(Path(path or RESULTS / "train_games.json").read_text())).strip()


TABLES = {f.__name__: f for f in (reproduce, reproduce_times, reproduce_labels, factors, augment, ablations, test_times, train_games)}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TABLES: sys.exit(f"usage: python scripts/results_tables.py {{{','.join(TABLES)}}} [RESULTS_FILE] ...")
    print(TABLES[sys.argv[1]](*sys.argv[2:]))
