"""How many training games the `tiny` recipe needs: the baseline of `benchmarks/claims.py` trained on fewer and on more
games of the training league, scored on held-out games of the training league and of the other league (the rows'
own scores) and on validation games of a third look that neither training nor testing uses, which alone decide.

Each `--runs NAME=WORK` is a `claims.py` work folder whose `recipe` rows are finished for every seed (the same
recipe, sizes and seeds; only the training games differ, e.g. `synthesize(first_game=5)` adds five games to the
first five). The first is the reference. The third look's games are generated when missing
(`dudek.ablations.THIRD_LEAGUE_VAL`), each model's scores on them are kept in its row folder, and the choice follows
the ablations' rule (`dudek.ablations.choose`): the best third-league mean among the runs that cost the training
league at most `KEEP` (mean change, untuned Soft-NMS), the reference among them. Prints a table; the results file
holds it with the command and machine.

    python benchmarks/train_games.py --runs 5=runs/claims-5 10=runs/claims-10 --third runs/third \\
        --out benchmarks/results/train_games.json
"""
from __future__ import annotations

import argparse, json, sys
from pathlib import Path

import torch

from dudek import ablations as A
from dudek.annotations import find_games
from dudek.config import PostConfig, provenance
from dudek.files import atomic_write, json_ready
from dudek.infer import load_spotter
from dudek.tune import score_post

POSTS = ("default", "tuned")  # untuned Soft-NMS (the checkpoint's), and tuned on the validation games


def score_row(folder: Path, third: Path) -> dict:
    "The scores of a finished `recipe` row on its two leagues, and on the third look's games `third` with both Soft-NMS settings."
    held = json.loads((folder / A.SCORES).read_text())
    device = "cuda" if torch.cuda.is_available() else "cpu"  # (as the ablations score their rows)
    model, cfg = load_spotter(folder / "train" / "best.pt", device)
    games = A.game_scores(model, cfg, third, folder / "raw" / "third_league", device)
    posts = {"default": cfg.post, "tuned": PostConfig(**held["post"]["tuned"])}
    third = {name: score_post(games, post, per_label=True) for name, post in posts.items()}
    return {"leagues": {**held["leagues"], "third_league": third}, "precision": held.get("precision"),
            "train_seconds": held.get("train_seconds")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, metavar="NAME=WORK", help="claims.py work folders, the reference first")
    p.add_argument("--third", type=Path, default=Path("runs/third"), help="folder of the third look's validation games (made if missing)")
    p.add_argument("--out", type=Path, help="results file (JSON) to write")
    a = p.parse_args(argv)
    runs = dict(r.split("=", 1) for r in a.runs)
    third = A.held_out_games(a.third, A.THIRD_LEAGUE_VAL)
    results = {}
    for name, work in runs.items():
        request = json.loads((Path(work) / A.REQUEST).read_text())
        rows = {int(f.name[4:]): f for f in sorted((Path(work) / "recipe").glob("seed*")) if (f / A.SCORES).is_file()}
        results[name] = {"work": work, "train_games": request["games"]["train"],
                         "seeds": {seed: score_row(f, third) for seed, f in rows.items()}}
        results[name]["n_train_games"] = len(find_games(request["games"]["train"], kind="ball"))
    ref = next(iter(results))
    seeds = sorted(set.intersection(*(set(r["seeds"]) for r in results.values())))
    table = []
    for name, r in results.items():
        row = {"name": name, "train_games": r["n_train_games"], "seeds": seeds}
        for league in ("training_league", "other_league", "third_league"):
            for post in POSTS:
                vals = [r["seeds"][s]["leagues"][league][post]["team_map_present"] for s in seeds]
                base = [results[ref]["seeds"][s]["leagues"][league][post]["team_map_present"] for s in seeds]
                row[f"{league}/{post}"] = {"per_seed": vals, **A.spread(vals), "delta": A.spread([v - b for v, b in zip(vals, base)])}
            row[f"{league}/block"] = [r["seeds"][s]["leagues"][league]["tuned"]["team_ap"]["BALL PLAYER BLOCK"] for s in seeds]
        table.append(row)
    leagues = ("training_league", "third_league")  # (the runs as rows of an ablation table, untuned Soft-NMS, for `choose`)
    rows = [{"what": t["name"], "seeds": t["seeds"], "leagues": {lg: {"team_map": t[f"{lg}/default"], "delta": t[f"{lg}/default"]["delta"]}
                                                              for lg in leagues}} for t in table]
    chosen = A.choose({"rows": rows})["what"]
    for t in table:  # (the README's table: python scripts/results_tables.py train_games)
        print(f"{t['train_games']} games: " + ", ".join(f"{k.split('/')[0].replace('_', ' ')} {t[k]['mean']:.3f} [{t[k]['min']:.3f}, {t[k]['max']:.3f}]"
                                                for k in ("training_league/tuned", "other_league/tuned", "third_league/default"))
              + "; BLOCK on the other league " + " / ".join(f"{b:.3f}" for b in t["other_league/block"]))
    print(f"chosen on the third look (untuned Soft-NMS, training league within {A.KEEP}): "
          f"{next(t['train_games'] for t in table if t['name'] == chosen)} games")
    if a.out:
        stamp = provenance(" ".join(["python", "benchmarks/train_games.py", *(argv or sys.argv[1:])]))
        atomic_write(a.out, json.dumps(json_ready({"benchmark": "train_games", **stamp, "keep": A.KEEP, "reference": ref, "chosen": chosen,
                                                   "table": table, "runs": results}), indent=1) + "\n")


if __name__ == "__main__":
    main()
