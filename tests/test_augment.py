"""dudek.augment: the label side of every augmentation (flip/team consistency, crop and camera keep labels and timing),
determinism, dtypes, batches vs single clips, mixup's soft targets and the loss that reads them."""
import dataclasses
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
import fastcore.test as ft

from dudek.augment import (ClipAugment, ClipDraw, camera_drift, camera_path, class_distribution, crop_resize, draw_clip,
                           flip_targets, hflip, mixup, soft_cross_entropy, team_distribution)
from dudek.config import AugmentConfig, get_config
from dudek.labels import MERGED, OLD, TWO_HEAD, swap_team

OFF = dict(p_flip=0.0, p_crop=0.0, p_camera=0.0, p_color=0.0, p_blur=0.0, p_mixup=0.0)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make_item(codec=MERGED, T=12, H=24, W=40, seed=0, dtype=torch.uint8):
    "A random clip with a few events of random classes and teams, as a dataset item."
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (T, 3, H, W), generator=g, dtype=torch.uint8)
    if dtype != torch.uint8: frames = frames.to(dtype) / 255
    cls = torch.randint(0, codec.n_classes, (T,), generator=g)
    cls[::3] = 0  # some background
    team = torch.where(cls > 0, torch.randint(0, 2, (T,), generator=g), -1) if codec is not OLD else torch.full((T,), -1)
    disp = torch.where(cls > 0, torch.randint(-2, 3, (T,), generator=g).float(), 0.0)
    return {"frames": frames, "target_class": cls, "displacement": disp, "team": team, "game": 3, "start": 17}


def make_batch(codec=MERGED, B=4, **kw):
    items = [make_item(codec, seed=i, **kw) for i in range(B)]
    return {k: torch.stack([it[k] for it in items]) if isinstance(items[0][k], torch.Tensor) else items[0][k] for k in items[0]}


def only(**p):
    return AugmentConfig(**{**OFF, **p})


@pytest.mark.parametrize("codec", [MERGED, TWO_HEAD, OLD], ids=lambda c: c.name)
def test_flip_twice_is_identity(codec):
    batch = make_batch(codec)
    twice = hflip(hflip(batch, codec), codec)
    for k in ("frames", "target_class", "displacement", "team"): ft.test_eq(twice[k], batch[k])


def test_flip_swaps_every_team_merged():
    cls = torch.arange(MERGED.n_classes)
    team = torch.tensor([-1] + [(c - 1) % 2 for c in range(1, MERGED.n_classes)])
    out = flip_targets({"target_class": cls, "team": team}, MERGED)
    ft.test_eq(out["target_class"][0].item(), 0)
    for c in range(1, MERGED.n_classes):
        label, side = MERGED.decode(c)
        ft.test_eq(MERGED.decode(out["target_class"][c].item()), (label, swap_team(side)))
        ft.test_eq(out["team"][c].item(), 1 - team[c].item())


def test_flip_two_head_and_old_codecs():
    item = make_item(TWO_HEAD)
    out = hflip(item, TWO_HEAD)
    ft.test_eq(out["target_class"], item["target_class"])  # the team is not in the class
    ft.test_eq(out["team"], torch.where(item["team"] >= 0, 1 - item["team"], -1))
    ft.test_eq((out["team"] == -1), (item["team"] == -1))
    old = make_item(OLD)
    out = hflip(old, OLD)
    ft.test_eq(out["target_class"], old["target_class"])
    ft.test_eq(out["team"], old["team"])


def test_flip_mirrors_frames_and_keeps_timing():
    item = make_item()
    out = ClipAugment(only(p_flip=1.0), MERGED)(item, 0)
    ft.test_eq(out["frames"], item["frames"].flip(-1))
    ft.test_eq(out["displacement"], item["displacement"])
    ft.test_eq(out["target_class"], torch.as_tensor(MERGED.flip_index)[item["target_class"]])
    ft.test_eq((out["game"], out["start"]), (3, 17))


@pytest.mark.parametrize("p", [dict(p_crop=1.0), dict(p_camera=1.0), dict(p_color=1.0, p_blur=1.0), dict(p_swap=1.0), dict(p_zoom=1.0),
                               dict(p_light=1.0), dict(p_shadow=1.0)], ids=["crop", "camera", "colour", "kits", "zoom", "light", "shadow"])
def test_pixel_augmentations_never_change_labels_or_timing(p):
    batch = make_batch(MERGED, B=3)
    out = ClipAugment(only(**p), MERGED)(batch, 1)
    for k in ("target_class", "displacement", "team"): ft.test_eq(out[k], batch[k])
    ft.test_eq(out["frames"].shape, batch["frames"].shape)
    ft.test_ne(out["frames"], batch["frames"])


def test_deterministic_under_seed_and_input_untouched():
    batch = make_batch(B=6)
    before = {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}
    aug = ClipAugment(AugmentConfig(p_flip=0.5, p_crop=0.5, p_camera=0.5, p_color=0.5, p_blur=0.5), MERGED)
    a, b, c = aug(batch, 42), aug(batch, np.random.default_rng(42)), aug(batch, 43)
    for k in ("frames", "target_class", "team"): ft.test_eq(a[k], b[k])
    ft.test_ne(a["frames"], c["frames"])
    for k, v in before.items(): ft.test_eq(batch[k], v)


def test_batch_equals_clip_by_clip():
    batch = make_batch(B=4)
    aug = ClipAugment(AugmentConfig(p_flip=0.5, p_crop=0.5, p_camera=0.5), MERGED)
    rng = np.random.default_rng(5)
    draws = [aug.draw(rng, 24, 40) for _ in range(4)]
    out = aug(batch, 5)
    for i, d in enumerate(draws):
        one = aug({k: v[i] for k, v in batch.items() if isinstance(v, torch.Tensor)}, draws=[d])
        for k in ("frames", "target_class", "team", "displacement"): ft.test_eq(out[k][i], one[k])


def test_dtypes_preserved():
    aug = ClipAugment(AugmentConfig(p_flip=1.0, p_crop=1.0, p_camera=1.0, p_color=1.0, p_blur=1.0, p_swap=1.0, p_zoom=1.0, p_light=1.0, p_shadow=1.0), MERGED)
    u = aug(make_item(), 0)["frames"]
    ft.test_eq(u.dtype, torch.uint8)
    f = aug(make_item(dtype=torch.float32), 0)["frames"]
    ft.test_eq(f.dtype, torch.float32)
    assert 0 <= f.min() and f.max() <= 1


def test_probabilities():
    rng = np.random.default_rng(0)
    cfg = get_config("paper").augment  # the write-up's probabilities
    draws = [draw_clip(rng, cfg, 24, 40) for _ in range(3000)]
    for name, p in [("flip", cfg.p_flip), ("crop", cfg.p_crop), ("camera", cfg.p_camera), ("hue", cfg.p_color), ("blur", cfg.p_blur)]:
        ft.test_close(np.mean([getattr(d, name) not in (None, False) for d in draws]), p, eps=0.03)
    ft.test_eq(draw_clip(rng, only(), 24, 40), ClipDraw())
    looks = AugmentConfig(p_swap=0.3, p_zoom=0.4, p_light=0.5, p_shadow=0.6)
    draws = [draw_clip(rng, looks, 24, 40) for _ in range(3000)]
    for name, p in [("swap", 0.3), ("zoom", 0.4), ("light", 0.5), ("shadow", 0.6)]:
        ft.test_close(np.mean([getattr(d, name) is not None for d in draws]), p, eps=0.03)
    zooms = np.array([d.zoom for d in draws if d.zoom is not None])
    ft.test_close(np.mean(zooms < 1), 0.5, eps=0.05)  # out as often as in
    item = make_item()
    ft.test_eq(ClipAugment(only(), MERGED)(item, 0)["frames"], item["frames"])


def test_crop_size_and_camera_path():
    d = draw_clip(np.random.default_rng(1), only(p_crop=1.0), 100, 200)
    ft.test_eq(d.crop[2:], (90, 180))
    assert 0 <= d.crop[0] <= 10 and 0 <= d.crop[1] <= 20
    d = draw_clip(np.random.default_rng(1), only(p_camera=1.0), 100, 200)
    for ends in d.camera:
        assert abs(ends[0]) <= 2.5 and abs(ends[1]) <= 0.1 and abs(ends[2]) <= 0.05 and 0.95 <= ends[3] <= 1.05
    path = camera_path(*d.camera, 9)
    ft.test_close(path[0], d.camera[0]); ft.test_close(path[-1], d.camera[1])
    ft.test_close(np.diff(path, axis=0), np.diff(path, axis=0)[:1].repeat(8, 0))  # a straight line


def test_camera_drift_ends_are_the_two_transforms():
    x = torch.rand(5, 3, 16, 20)
    start, end = (2.0, 0.1, -0.05, 1.05), (-1.0, -0.05, 0.02, 0.97)
    out = camera_drift(x, start, end)
    for t, (a, tx, ty, s) in ((0, start), (4, end)):
        ref = TF.affine(x[t], angle=a, translate=[tx * 20, ty * 16], scale=s, shear=[0.0, 0.0], interpolation=TF.InterpolationMode.BILINEAR)
        ft.test_close(out[t], ref, eps=1e-5)
    ft.test_close(crop_resize(x, 0, 0, 16, 20), x)


def test_mixup_soft_targets():
    batch = make_batch(MERGED, B=4)
    out = mixup(batch, 0, MERGED.n_classes, p=1.0, alpha=0.4)
    lam, other = out["mixup_lam"], out["mixup_other"]
    assert (lam >= 0.5).all() and (lam <= 1).all()
    ft.test_eq((other != torch.arange(4)).all().item(), True)
    onehot = F.one_hot(batch["target_class"], MERGED.n_classes).float()
    w = lam.view(-1, 1, 1)
    ft.test_close(out["target_probs"], w * onehot + (1 - w) * onehot[other], eps=1e-6)
    ft.test_close(out["target_probs"].sum(-1), torch.ones(4, 12), eps=1e-6)
    ft.test_close(out["displacement"], lam[:, None] * batch["displacement"] + (1 - lam[:, None]) * batch["displacement"][other], eps=1e-5)
    f = batch["frames"].float()
    expected = (lam.view(-1, 1, 1, 1, 1) * f + (1 - lam.view(-1, 1, 1, 1, 1)) * f[other]).round()
    assert (out["frames"].float() - expected).abs().max() <= 1
    fg = (batch["team"] >= 0).float()
    ft.test_close(out["team_weight"], lam[:, None] * fg + (1 - lam[:, None]) * fg[other], eps=1e-6)
    assert "target_class" not in out and "team" not in out
    ft.test_eq(out["frames"].dtype, torch.uint8)


def test_mixup_off_and_representations():
    batch = make_batch(TWO_HEAD, B=3)
    out = mixup(batch, 0, TWO_HEAD.n_classes, p=0.0)
    ft.test_eq(out["frames"], batch["frames"])
    ft.test_eq(class_distribution(out, 13), class_distribution(batch, 13))
    for a, b in zip(team_distribution(out), team_distribution(batch)): ft.test_eq(a, b)
    p_right, weight = team_distribution(batch)
    ft.test_eq(p_right, (batch["team"] == 1).float())
    ft.test_eq(weight, (batch["team"] >= 0).float())
    single = mixup({k: v[:1] for k, v in batch.items() if isinstance(v, torch.Tensor)}, 0, 13, p=1.0)
    ft.test_eq(single["mixup_lam"].tolist(), [1.0])  # a batch of one has no partner


def test_soft_cross_entropy_is_weighted_cross_entropy_on_one_hot():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(3, 10, 25, generator=g), torch.randint(0, 25, (3, 10), generator=g)
    w = torch.full((25,), 5.0); w[0] = 1.0
    probs = F.one_hot(target, 25).float()
    ft.test_close(soft_cross_entropy(logits, probs, w), F.cross_entropy(logits.flatten(0, 1), target.flatten(), w), eps=1e-5)
    soft = 0.7 * probs + 0.3 * F.one_hot(target.roll(1, 1), 25).float()
    manual = -(soft * w * F.log_softmax(logits, -1)).sum() / (soft * w).sum()
    ft.test_close(soft_cross_entropy(logits, soft, w), manual, eps=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_device(device):
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in make_batch(B=2).items()}
    aug = ClipAugment(AugmentConfig(p_flip=1.0, p_crop=1.0, p_camera=1.0, p_color=1.0, p_blur=1.0), MERGED)
    out = aug(batch, 0)
    ft.test_eq(out["frames"].device.type, device)
    out = mixup(out, 0, MERGED.n_classes, p=1.0)
    ft.test_eq(out["target_probs"].device.type, device)


def test_flip_needs_a_codec():
    ft.test_fail(lambda: ClipAugment(AugmentConfig(p_flip=0.2)), contains="codec")
    ClipAugment(only())  # no flip, no codec needed


def test_the_looks_of_other_leagues_leave_the_other_draws_as_they_were():
    "Turning kit swap, zoom, light or shadow on changes no earlier draw: a model trained without them is trained as before."
    cfg, more = get_config("paper").augment, get_config("paper", {"augment.p_swap": 1.0, "augment.p_zoom": 1.0, "augment.p_light": 1.0,
                                                                   "augment.p_shadow": 1.0}).augment
    for seed in range(50):
        a, b = draw_clip(np.random.default_rng(seed), cfg, 24, 40), draw_clip(np.random.default_rng(seed), more, 24, 40)
        ft.test_eq(dataclasses.replace(b, swap=None, zoom=None, light=None, shadow=None), a)
