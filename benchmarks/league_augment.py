"""Augmentations against another league's look, at the recipe's schedule: every row trains what `dudek reproduce`
trains (1 + 10 epochs of 400 clips, the shipped vision encoder, the merged head) with some augmentations added, and is
scored with the untuned Soft-NMS on held-out games of three looks: the training league (the reproduction's test games),
the other league (its test games), and a third league that neither training nor testing uses, whose validation
games decide what to adopt. Rows and seeds are resumable one by one (`dudek.ablations.run_ablations`), also from the rows of an earlier results
file (`--resume-from`), so that a table can grow over several sittings.

    python benchmarks/league_augment.py runs/r0/data --seeds 0 1 --work runs/league-augment --out benchmarks/results/league_augment.json \\
        --resume-from benchmarks/results/league_augment.json
"""
from __future__ import annotations

import argparse, json, sys
from pathlib import Path

from dudek import ablations as A
from dudek.config import provenance
from dudek.files import atomic_write, json_ready
from dudek.pipeline import SIZES

BASE = ("augment.p_color=0",)  # every row: the recipe as it was before this benchmark's choice (flip only), whatever the profile adopts
LOOKS = ("augment.p_swap=0.5", "augment.p_zoom=0.5", "augment.p_light=0.5", "augment.p_shadow=0.5")
VARIANTS = {  # name -> the configuration fields it adds to the recipe
    "light": ("augment.p_light=0.5",),
    "colour": ("augment.p_color=0.25",),
    "looks_colour": (*LOOKS, "augment.p_color=0.5"),
    "shadow": ("augment.p_shadow=0.5",),
    "looks": LOOKS,
    "colour_shadow": ("augment.p_color=0.25", "augment.p_shadow=0.5"),
    "colour_more": ("augment.p_color=0.5",),
}
WHAT = {"light": "light: a gain per colour channel (p = 0.5)", "colour": "colour: hue, saturation, brightness, contrast (p = 0.25 each, the write-up's)",
        "looks_colour": "kit swap, zoom, light, shadow (p = 0.5 each) and colour (p = 0.5 each)", "shadow": "shadow (p = 0.5)",
        "looks": "kit swap, zoom, light and shadow (p = 0.5 each)", "colour_shadow": "colour (p = 0.25 each) and shadow (p = 0.5)",
        "colour_more": "colour: hue, saturation, brightness, contrast (p = 0.5 each)"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help="a `dudek reproduce` run's data folder (train, old, test, test-other)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--third", type=Path, default=Path("data/third-league-val"), help="the third look's validation games (made if missing)")
    p.add_argument("--work", type=Path, default=Path("runs/league-augment"), help="folder of the trained rows (resumable)")
    p.add_argument("--out", type=Path, help="results file (JSON) to write")
    p.add_argument("--screening", nargs="*", default=[], choices=list(VARIANTS),
                   help="variants shown with the seeds they have finished in --work, none trained (a screening that one seed settled)")
    p.add_argument("--resume-from", type=Path, help="an earlier results file of this benchmark: its finished rows are not trained again")
    a = p.parse_args(argv)
    for name, changes in VARIANTS.items(): A.VARIANTS[name] = A.Variant(name, changes=changes)
    rows = (A.Row("baseline", "the recipe (flip only)", "recipe"), *(A.Row("augmentation", WHAT[n], n) for n in a.variants))
    tests = {"training_league": a.data / "test", "other_league": A.held_out_games(a.data / "test-other", SIZES["tiny"]["sets"]["test-other"]),
             "third_league": A.held_out_games(a.third, A.THIRD_LEAGUE_VAL)}
    sizes = {k: SIZES["tiny"][k] for k in ("pretrain_epochs", "finetune_epochs", "clips_per_epoch")} | {"seeds": a.seeds}
    m = A.measure(a.work, a.data, tests, rows, "tiny", sizes, BASE, a.resume_from)
    for n in a.screening:
        m["results"][n] = {}
        for f in sorted((a.work / n).glob(f"seed*/{A.SCORES}")): m["results"][n][int(f.parent.name.removeprefix("seed"))] = A.finished_row(f, A.VARIANTS[n])
    rows = (*rows, *(A.Row("augmentation", WHAT[n], n) for n in a.screening if m["results"][n]))
    m["table"] = A.ablation_table(m["results"], rows, m["sizes"])
    print(A.table_markdown(m["table"]))
    out = json_ready({"benchmark": "league_augment", **provenance(" ".join(["python", "benchmarks/league_augment.py", *map(str, argv or sys.argv[1:])])),
                      "variants": {n: list(VARIANTS[n]) for n in (*a.variants, *a.screening)}, "third": A.THIRD_LEAGUE_VAL, **m})
    if a.out: atomic_write(a.out, json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
