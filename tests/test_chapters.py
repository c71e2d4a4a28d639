"""The chapters as a reader meets them (`scripts/chapter_stats.py`): each public function and class shown in a visible
cell of its own chapter (70% in all, half in every chapter), the chapters committed with their figures, and no committed
output that is an error."""
import json

import chapter_stats as stats  # scripts/ (on the path: conftest.py)


def test_the_measure_sees_examples_not_definitions_or_hidden_checks(tmp_path):
    nb = '{"cells": [%s], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    cell = lambda src: '{"cell_type": "code", "metadata": {}, "outputs": [], "source": %s}' % json.dumps(src)
    (tmp_path / "x.ipynb").write_text(nb % ", ".join(map(cell, ["#| default_exp labels", "#| export\ndef f(): pass",
                                                                 "#| hide\nswap_team('left')", "get_codec('merged')"])))
    c = stats.chapter(tmp_path / "x.ipynb")
    assert c.shown == ["get_codec"], c.shown  # swap_team only in a hidden cell, Codec nowhere visible


def test_most_public_definitions_are_shown_in_their_chapter():
    cs = stats.chapters()
    shown, public = sum(len(c.shown) for c in cs), sum(len(c.public) for c in cs)
    thin = [f"{c.name} {len(c.shown)}/{len(c.public)}" for c in cs if c.share < 0.5]
    assert shown >= 0.7 * public, f"{shown} of {public} public definitions shown in a visible cell of their chapter, expected 70%"
    assert not thin, f"chapters that show under half their public definitions: {', '.join(thin)} (python scripts/chapter_stats.py)"


def test_no_committed_output_is_an_error():
    bad = [f"{c.name}: {e}" for c in stats.chapters() for e in c.errors]
    assert not bad, f"committed error outputs: {bad}"


def test_the_chapters_that_draw_are_committed_with_their_figures():
    "GitHub and a freshly opened notebook show a chapter's figures: `python scripts/refresh_outputs.py` executes the chapters in place."
    cs = stats.chapters()
    bare = [c.name for c in cs if c.draws and not c.figures]
    assert not bare, f"chapters that draw but carry no figure: {', '.join(bare)} (python scripts/refresh_outputs.py {' '.join(bare)})"
    assert sum(c.figures > 0 for c in cs) >= 8, f"{sum(c.figures > 0 for c in cs)} chapters carry figures, expected at least 8"
