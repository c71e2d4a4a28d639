"""Shared test set-up: every test's temporary files live in a folder that is removed after it.

The chapters make their scratch folders with `tempfile.mkdtemp()` (a learner's /tmp is the right place for
them), and the pipeline's notebooks, kernels and torchrun workers do the same in child processes. Under the
suite those folders piled up in /tmp (videos, games, checkpoints: 44 GB here after a few runs; a CI run then failed on a full disk), so this
fixture points `tempfile` and `TMPDIR` (children inherit it) at a per-test folder and removes it afterwards.
The folder's path is short (`/tmp/dudek-test-XXXXXXXX`): worker processes open sockets in the temporary folder
(under a pipeline stage's own scratch folder in it), and a socket's path must fit in 107 bytes.
"""
import shutil, sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))  # the scripts the tests check: `import results_tables`


@pytest.fixture(autouse=True)
def scratch_folder(tmp_path_factory, monkeypatch):
    tmp_path_factory.getbasetemp()  # pytest's own folder first: it is made in the temporary folder at first use, and must not be made in ours
    scratch = Path(tempfile.mkdtemp(prefix="dudek-test-"))
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    shutil.rmtree(scratch, ignore_errors=True)


# The slow tests (`pytest -m "not slow"` leaves them out): those that took 8 s or more in all their parameters together
# on the 2-core reference machine (`--durations=0`, 2026-12-07), and the chapters that take longest. The quick subset still
# touches every module: each keeps a faster test or its chapter. A new slow test belongs here (or carries @pytest.mark.slow).
SLOW = {
    "test_cli": {'test_bad_option_is_one_line'},
    "test_ddp": {'test_two_process_training'},
    "test_infer": {'test_bad_input_is_one_line_and_writes_nothing', 'test_folder_of_games_scores_with_dudek_evaluate', 'test_infer_amp_says_its_precision_and_falls_back_in_one_line', 'test_params_keep_the_checkpoints_flip_and_raw_records_its_post'},
    "test_jupyterlab": {'test_run_all_then_the_clip_viewer_follows_its_slider'},
    "test_model": {'test_shapes_every_head_and_shift', 'test_timm_weights_without_network_one_line_and_no_run_folder'},
    "test_pipeline": {'test_ablations_killed_then_resumed', 'test_bad_requests_are_one_line', 'test_ctrl_c_stops_the_run_in_one_line_and_resume_goes_on', 'test_failing_stage_then_resume', 'test_killed_run_resumes', 'test_shortened_paper_run_and_resume', 'test_stages_after_a_stage_that_ran_run_again'},
    "test_site": {'test_front_page_shows_its_title_and_every_page_in_the_navigation'},
    "test_synthetic": {'test_bad_options_one_line_and_nothing_written'},
    "test_train": {'test_a_failed_init_leaves_no_run_folder', 'test_a_non_finite_loss_stops_with_one_line_and_writes_no_nan', 'test_amp_on_a_cpu_without_bf16_trains_in_float32_with_one_line', 'test_bad_validation_game_fails_before_the_first_step', 'test_kill_resume_is_exact', 'test_non_finite_weights_stop_with_one_line', 'test_resume_needs_this_runs_checkpoint', 'test_two_head_finetunes_with_validation_then_infers_and_scores', 'test_vision_stage_exports_a_backbone_that_starts_a_tdeed'},
    "test_tune": {'test_bad_input_is_one_line', 'test_ctrl_c_stops_cleanly_keeps_the_study_and_a_rerun_continues', 'test_default_is_the_checkpoints_own_post_processing', 'test_each_queued_trial_is_run_by_one_process', 'test_processes_creating_the_same_new_sqlite_study_at_once_all_succeed', 'test_sigkill_loses_no_finished_trial_and_a_rerun_resumes', 'test_two_workers_share_one_journal_study'},
    "test_video": {'test_a_game_folder_whose_video_is_not_a_video_is_refused', 'test_dudek_infer_refuses_a_file_that_is_not_a_video', 'test_infer_predictions_stay_inside_videos_at_any_rate', 'test_training_refuses_a_game_whose_video_is_not_a_video'},
}
SLOW_CHAPTERS = {"04e_synthetic", "05_explore", "11_train", "12_infer", "14_report", "15_ablations"}  # test_notebooks: the chapters over 10 s
# whose modules other quick tests import (14a_site stays: no other quick test imports dudek.site)


def pytest_collection_modifyitems(items):
    for item in items:
        module, name = item.module.__name__.rsplit(".", 1)[-1], item.originalname
        chapter = item.callspec.params.get("notebook") if hasattr(item, "callspec") else None
        if name in SLOW.get(module, ()) or (chapter is not None and chapter.stem in SLOW_CHAPTERS): item.add_marker(pytest.mark.slow)
