"""dudek.model: shapes for every head and shift variant, the shift against a plain formulation, gradient flow,
pretrained weights from local files, saving and loading with weights_only=True, head swaps, errors, devices."""
import re
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
import fastcore.test as ft

import dudek.augment, dudek.model
from dudek.config import ModelConfig, get_config
from dudek.files import InputError
from dudek.model import (FrameEncoder, GatedShift, SGPBranches, SGPEncoderDecoder, build_model,
                         count_parameters, create_backbone, load_weights, read_weights, save_weights)

T = 8
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def clip(B=2, T=T, H=32, W=48, seed=0):
    return torch.randint(0, 256, (B, T, 3, H, W), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def model(seed=0, **kw):
    torch.manual_seed(seed)
    return build_model(ModelConfig(), clip_len=T, **{"pretrained": "", **kw})  # random weights: any shift, any head


def open_blocks(m):
    "Set the zero-initialised last BatchNorm weight of every RegNet block to 1, as pretrained weights have it."
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("conv3.bn.weight"): p.fill_(1.0)
    return m


@pytest.mark.parametrize("shift", ["gsf", "gsm", "none"])
@pytest.mark.parametrize("head,n_classes", [("merged", 25), ("two_head", 13), ("old", 18)])
def test_shapes_every_head_and_shift(shift, head, n_classes):
    m = model(temporal_shift=shift, head=head)
    x = clip()
    for train in (True, False):
        m.train(train)
        with torch.no_grad(): out = m(x)
        expected = {"class_logits": (2, T, n_classes), "displacement": (2, T)}
        if head == "two_head": expected["team_logit"] = (2, T)
        ft.test_eq({k: tuple(v.shape) for k, v in out.items()}, expected)
        assert all(torch.isfinite(v).all() for v in out.values())
    ft.test_eq(m.head, head)
    ft.test_eq(sum(isinstance(x, GatedShift) for x in m.modules()), 0 if shift == "none" else 11)


def naive_shift(gs: GatedShift, x: torch.Tensor, T: int) -> torch.Tensor:
    "The gated shift written plainly from its description, on the (B, C, T, H, W) layout with a 3-D convolution."
    f = gs.fold
    BT, C, H, W = x.shape
    v = x[:, :f].reshape(BT // T, T, f, H, W).permute(0, 2, 1, 3, 4)  # (B, f, T, H, W)
    a = F.relu(F.batch_norm(v, None, None, gs.bn.weight, gs.bn.bias, training=True, eps=gs.bn.eps))
    gate = torch.tanh(F.conv3d(a, gs.gate.weight, gs.gate.bias, padding=1, groups=2))  # (B, 2, T, H, W)
    outs = []
    for half in range(2):
        xh = v[:, half * f // 2:(half + 1) * f // 2]
        y = gate[:, half:half + 1] * xh
        r = xh - y
        zero = torch.zeros_like(y[:, :, :1])
        ys = torch.cat([y[:, :, 1:], zero], 2) if half == 0 else torch.cat([zero, y[:, :, :-1]], 2)
        if gs.mode == "gsm": outs.append(ys + r)
        else:
            means = torch.stack([ys.mean((3, 4)), r.mean((3, 4))], 1)  # (B, 2, f/2, T)
            w = torch.sigmoid(gs.fuse[half](means))[:, 0, :, :, None, None]  # (B, f/2, T, 1, 1)
            outs.append(w * ys + (1 - w) * r)
    out = torch.cat(outs, 1).permute(0, 2, 1, 3, 4).reshape(BT, f, H, W)
    return torch.cat([out, x[:, f:]], 1)


@pytest.mark.parametrize("mode", ["gsf", "gsm"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_shift_equals_plain_formulation(mode, channels_last):
    torch.manual_seed(0)
    gs = GatedShift(56, mode)
    with torch.no_grad():
        for p in gs.parameters(): p.normal_(0, 0.3)
    B, T_, H, W = 3, 6, 5, 4
    x = torch.randn(B * T_, 56, H, W)
    if channels_last: x = x.contiguous(memory_format=torch.channels_last)
    gs.n_frames = T_
    with torch.no_grad():
        ft.test_close(gs(x), naive_shift(gs, x, T_), eps=1e-5)
    ft.test_eq(gs.fold, 16)


def test_shift_keeps_channels_last_and_handles_one_frame():
    gs = GatedShift(152, "gsf")
    x = torch.randn(4, 152, 3, 3).contiguous(memory_format=torch.channels_last)
    gs.n_frames = 1
    with torch.no_grad(): y = gs(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    enc = FrameEncoder(temporal_shift="gsf")
    with torch.no_grad(): ft.test_eq(enc(clip(T=1)).shape, (2, 1, 368))


def test_gradient_flow_to_backbone():
    m = open_blocks(model())
    m.train()
    out = m(clip(B=1))
    loss = out["class_logits"].logsumexp(-1).mean() + out["displacement"].pow(2).mean()
    loss.backward()
    no_grad = [n for n, p in m.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    ft.test_eq(no_grad, [])
    # and with timm's own initialisation, the first convolution still learns through the shortcuts
    m = model()
    out = m(clip(B=1))
    (out["class_logits"].logsumexp(-1).mean()).backward()
    assert m.encoder.backbone.stem.conv.weight.grad.abs().sum() > 0


def test_gradient_flow_two_head_team_logit():
    m = open_blocks(model(head="two_head", temporal_shift="gsm"))
    out = m(clip(B=1))
    F.binary_cross_entropy_with_logits(out["team_logit"], torch.ones(1, T)).backward()
    assert m.encoder.backbone.stem.conv.weight.grad.abs().sum() > 0
    assert m.encoder.backbone.s4.b7.conv1.shift.gate.weight.grad.abs().sum() > 0
    assert m.class_head.team.weight.grad.abs().sum() > 0


def test_clip_lengths_and_inputs():
    m = model().eval()
    with torch.no_grad():
        ft.test_eq(m(clip(T=5))["class_logits"].shape, (2, 5, 25))  # shorter than clip_len, odd
        a, b = m(clip()), m(clip().float() / 255)  # uint8 or float in [0, 1]
    ft.test_close(a["class_logits"], b["class_logits"], eps=1e-3)
    ft.test_fail(lambda: m(clip(T=T + 1)), contains="at most 8")
    for t in (1, 3, 16, 80):
        ft.test_eq(SGPEncoderDecoder(32, 2, 5, 4)(torch.randn(1, t, 32)).shape, (1, t, 32))


def test_merged_window_convolution_equals_two_convolutions():
    br = SGPBranches(48, 9, 4)  # the official baseline's kernel
    x = torch.randn(2, 20, 48)
    with torch.no_grad():
        window, instant = br(x)
        xt = x.transpose(1, 2)
        ft.test_close(window, ((br.convw(xt) + br.convkw(xt)) * br.psi(xt)).transpose(1, 2), eps=1e-5)
        ft.test_close(instant, br.fc(x) * F.relu(br.global_fc(x.mean(1, keepdim=True))), eps=1e-6)
    ft.test_eq(br.long, 41)


def test_save_and_load_with_weights_only(tmp_path):
    m = model(seed=1, head="two_head").eval()
    path = save_weights(m, tmp_path / "model.pt")
    sd = torch.load(path, weights_only=True)
    fresh = model(seed=2, head="two_head").eval()
    fresh.load_state_dict(sd)
    with torch.no_grad():
        for k, v in m(clip()).items(): ft.test_eq(fresh(clip())[k], v)
    fresh2 = load_weights(model(seed=3, head="two_head"), path).eval()
    with torch.no_grad(): ft.test_eq(fresh2(clip())["class_logits"], m(clip())["class_logits"])
    ft.test_fail(lambda: load_weights(model(head="merged"), path), contains="team")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    ft.test_fail(lambda: read_weights(tmp_path / "junk.pt"), contains="junk.pt: weights:")


def test_state_dict_keys_are_stable():
    keys = set(model().state_dict())
    for k in ["pos_enc", "encoder.backbone.stem.conv.weight", "encoder.backbone.s3.b1.conv1.shift.gate.weight",
              "encoder.backbone.s3.b1.conv1.shift.fuse.0.weight", "encoder.backbone.s3.b1.conv1.layer.conv.weight",
              "encoder.backbone.s4.b7.conv1.shift.bn.running_mean", "temporal.encoder.0.branches.convkw.weight",
              "temporal.bottleneck.ffn.fc1.weight", "temporal.mixers.1.concat.weight", "temporal.decoder.1.norm.weight",
              "class_head.fc.weight", "disp_head.weight"]:
        assert k in keys, k
    assert not any("mean" == k.split(".")[-1] or k.endswith(".std") for k in keys)  # normalisation is not state


def test_pretrained_from_local_timm_files(tmp_path):
    src = create_backbone("regnety_002")
    with torch.no_grad(): src.stem.conv.weight.normal_()
    torch.save(src.state_dict(), tmp_path / "regnety_002.pth")
    from safetensors.torch import save_file
    save_file(src.state_dict(), tmp_path / "regnety_002.safetensors")
    for name in ("regnety_002.pth", "regnety_002.safetensors"):
        m = build_model(ModelConfig(pretrained=str(tmp_path / name)), clip_len=T)
        ft.test_eq(m.encoder.backbone.stem.conv.weight.detach(), src.stem.conv.weight.detach())
        ft.test_eq(m.encoder.backbone.s4.b7.conv1.layer.conv.weight.detach(), src.s4.b7.conv1.conv.weight.detach())
    full = timm.create_model("regnety_002", num_classes=1000)  # a checkpoint with its classifier: dropped
    torch.save(full.state_dict(), tmp_path / "with_head.pth")
    enc = FrameEncoder(pretrained=tmp_path / "with_head.pth")
    ft.test_eq(enc.backbone.stem.conv.weight.detach(), full.stem.conv.weight.detach())


def test_pretrained_from_own_encoder_and_model_files(tmp_path):
    vision = FrameEncoder(temporal_shift="gsf")  # the vision stage trains this alone
    with torch.no_grad(): vision.backbone.s3.b1.conv1.shift.gate.weight.normal_()
    save_weights(vision, tmp_path / "vision.pt")
    m = build_model(ModelConfig(pretrained=str(tmp_path / "vision.pt")), clip_len=T)
    for k, v in vision.state_dict().items(): ft.test_eq(m.encoder.state_dict()[k], v)
    whole = model(seed=4)
    save_weights(whole, tmp_path / "whole.pt")
    enc = FrameEncoder(pretrained=tmp_path / "whole.pt")
    for k, v in enc.state_dict().items(): ft.test_eq(whole.encoder.state_dict()[k], v)
    ft.test_fail(lambda: FrameEncoder(temporal_shift="gsm", pretrained=tmp_path / "vision.pt"), contains="weights")


def test_replace_head_keeps_backbone_and_temporal_layers(tmp_path):
    pre = model(seed=5, head="old")
    save_weights(pre, tmp_path / "pre.pt")
    ft_model = load_weights(model(seed=6, head="old"), tmp_path / "pre.pt").replace_head("merged")
    ft.test_eq(ft_model.head, "merged")
    sd = ft_model.state_dict()
    for k, v in pre.state_dict().items():
        if k.startswith("class_head."): continue
        ft.test_eq(sd[k], v)
    ft.test_eq(sd["class_head.fc.weight"].shape, (25, 368))
    d = model().double().replace_head("two_head")
    ft.test_eq(d.class_head.team.weight.dtype, torch.float64)
    with torch.no_grad(): ft.test_eq(d.eval()(clip())["team_logit"].dtype, torch.float64)


def test_profiles_and_parameter_counts():
    tiny = build_model(get_config("tiny"))
    ft.test_eq((tiny.encoder.name, tiny.encoder.dim, tiny.clip_len, tiny.head), ("regnety_002", 368, 32, "merged"))
    counts = count_parameters(tiny)
    ft.test_eq(counts["total"], 12_210_246)  # the same count as the straightforward implementation (benchmarks/)
    ft.test_eq(sum(v for k, v in counts.items() if k != "total"), counts["total"])
    paper = build_model(get_config("paper"), pretrained="")  # the profile asks for the hub weights; not in tests
    ft.test_eq((paper.encoder.name, paper.encoder.dim, paper.clip_len), ("regnety_008", 768, 80))
    with torch.no_grad(): ft.test_eq(paper.eval()(clip(B=1, T=4))["class_logits"].shape, (1, 4, 25))


def test_errors_name_the_field(tmp_path):
    for kw, field in [({"backbone": "regnety_004"}, "multiple of 16"), ({"backbone": "resnet18"}, "model.backbone"),
                      ({"temporal_shift": "tsm"}, "model.temporal_shift"), ({"head": "teams"}, "model.head"),
                      ({"sgp_kernel": 4}, "model.sgp_kernel"), ({"n_layers": -1}, "model.n_layers"),
                      ({"pretrained": str(tmp_path / "missing.pth")}, "model.pretrained")]:
        ft.test_fail(lambda: build_model(ModelConfig(**kw), clip_len=T), contains=field)
        with pytest.raises(InputError): build_model(ModelConfig(**kw), clip_len=T)


def test_autocast_and_determinism():
    a, b = model(seed=7).eval(), model(seed=7).eval()
    x = clip()
    with torch.no_grad():
        ft.test_eq(a(x)["class_logits"], b(x)["class_logits"])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = a(x)
    assert all(torch.isfinite(v.float()).all() for v in out.values())


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_device(device):
    m = model(temporal_shift="gsm").to(device)
    out = m(clip().to(device))
    out["class_logits"].float().mean().backward()
    ft.test_eq(out["displacement"].device.type, device)


def test_no_device_specific_code():
    for mod in (dudek.model, dudek.augment):
        src = Path(mod.__file__).read_text()
        assert not re.search(r"\.cuda\(|torch\.cuda\.\w*Tensor", src), mod.__name__


def hub_reachable() -> bool:
    "Does huggingface.co accept a connection from here (then timm's weights would simply download)?"
    import socket
    try: socket.create_connection(("huggingface.co", 443), timeout=5).close()
    except OSError: return False
    return True


@pytest.mark.parametrize("stage", ["finetune", "vision"])
def test_timm_weights_without_network_one_line_and_no_run_folder(stage, tmp_path):
    "`--set model.pretrained=timm` offline: one line naming the field and the local way (a weights file), at once, and no run folder."
    import subprocess, sys, time
    from dudek.synthetic import synthesize
    if hub_reachable(): pytest.skip("the Hub is reachable here: timm's weights would download")
    data, run = tmp_path / "games", tmp_path / "run"
    synthesize(data, n_games=2, minutes=0.1, size=(64, 112), workers=1)
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "dudek", "train", "--stage", stage, "--data", str(data), "--run-dir", str(run),
                          "--set", "model.pretrained=timm", "--quiet"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, (res.returncode, res.stderr[-3000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "model.pretrained" in lines[0], res.stderr[-3000:]
    assert "--set model.pretrained=PATH" in lines[0] and "timm/regnety_002" in lines[0], lines[0]  # what to fetch, how to give it
    assert time.time() - t0 < 60, "the refusal waited for the Hub's retries"
    assert not run.exists()  # a retry with a local weights file must not find a run folder made with other weights
