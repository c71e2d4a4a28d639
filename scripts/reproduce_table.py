"""Print the README's table of the `tiny` reproduction from `benchmarks/results/reproduce_tiny.json` (written by
`benchmarks/reproduce_compare.py`): one column per seed, then the mean [range].

    python scripts/reproduce_table.py [RESULTS_FILE] [GROUP]
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def table(path: Path, group: str) -> str:
    runs = json.loads(path.read_text())["groups"][group]["runs"]
    rows = [("Team-mAP@1, test games", [r["training_league"]["team_map_at1"] for r in runs]),
            ("mAP@1, test games", [r["training_league"]["map_at1"] for r in runs]),
            ("Team-mAP@1, test games of the other league", [r["other_league"]["team_map_at1"] for r in runs]),
            ("Team-mAP@1, validation games, default Soft-NMS", [r["validation"]["default"] for r in runs]),
            ("Team-mAP@1, validation games, tuned Soft-NMS", [r["validation"]["tuned"] for r in runs])]
    rows += [(f"team AP {lb}", [r["training_league"]["team_ap"][lb] for r in runs]) for lb in runs[0]["training_league"]["team_ap"]]
    out = ["| | " + " | ".join(f"seed {k}" for k in range(len(runs))) + " | mean [range] |", "|---|" + "---|" * (len(runs) + 1)]
    for name, v in rows:
        out.append(f"| {name} | " + " | ".join(f"{x:.3f}" for x in v) + f" | {sum(v) / len(v):.3f} [{min(v):.3f}-{max(v):.3f}] |")
    return "\n".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    print(table(Path(args[0]) if args else ROOT / "benchmarks/results/reproduce_tiny.json", args[1] if len(args) > 1 else "bf16"))
