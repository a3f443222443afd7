"""The CPU memory layout (NHWC only where it is safe) and one crash-isolated smoke per native kernel path.

oneDNN 3.12 (torch 2.14.1) corrupts the heap on its AVX2 path in the backward pass of a strided 1 x 1 convolution
with few input channels in NHWC (a width-4 ResNet-18's shortcut): ``double free or corruption``, a segfault or a
hang. Each smoke runs ``tests/native_paths.py`` in a subprocess of its own, also with ``ONEDNN_MAX_CPU_ISA=AVX2``
(the AVX2-only AMD EPYC machines' path, reproducible on an AVX-512 machine), so that a native fault fails that
test with its signal, and a hang fails it at the timeout, while the suite goes on.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from adcore.config import ConfigError
from adcore.nets import ConvAutoencoder, ResNet18, make_net, make_sad_net
from adcore.train import LAYOUT_ENV, check_layout, forward_all, nhwc_safe, resolve_layout
from adcore.augment import make_augment

SCRIPT = Path(__file__).with_name("native_paths.py")
CPU = torch.device("cpu")


def run_path(path: str, threads: int, isa: str | None, timeout: int = 240, **env: str) -> list[str]:
    """Run one native path in a fresh interpreter; its 'ok ...' lines. A crash or a hang fails the test."""
    full = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", LAYOUT_ENV)}
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join([str(SCRIPT.parents[1]), full.get("PYTHONPATH", "")])
    if isa:
        full["ONEDNN_MAX_CPU_ISA"] = isa
    try:
        p = subprocess.run([sys.executable, str(SCRIPT), path, str(threads)], env=full, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{path} with {threads} thread(s), ISA {isa or 'native'}: hung (no exit in {timeout} s)")
    if p.returncode != 0:
        how = (f"killed by {signal.Signals(-p.returncode).name}" if p.returncode < 0 and
               -p.returncode in signal.Signals._value2member_map_ else f"exit status {p.returncode}")
        pytest.fail(f"{path} with {threads} thread(s), ISA {isa or 'native'}: {how}\n{p.stderr[-2000:]}")
    return [line for line in p.stdout.splitlines() if line.startswith("ok ")]


# ---- the layout rule -------------------------------------------------------------------------------------------

def test_nhwc_is_chosen_for_stride_one_nets_only():
    assert nhwc_safe(make_net("cifar10_lenet", 32)) and nhwc_safe(make_net("mnist_lenet", 32))
    assert nhwc_safe(make_sad_net("mnist_lenet_sad"))  # 8 -> 4 channels, stride 1: measured safe
    assert not nhwc_safe(ResNet18(2, 1, 4, small_input=True))  # the 1 x 1 / stride-2 shortcut
    assert not nhwc_safe(ResNet18(2, 3, 64))
    assert not nhwc_safe(ConvAutoencoder(1, 28))  # transposed convolutions: never measured
    assert not nhwc_safe(nn.Sequential(nn.Conv2d(8, 8, 3, groups=2)))
    assert not nhwc_safe(nn.Linear(3, 3))  # no convolution: nothing to gain
    lenet, resnet = make_net("cifar10_lenet", 32), ResNet18(2, 3, 4, small_input=True)
    assert resolve_layout(None, [lenet], CPU) is True
    assert resolve_layout("auto", [lenet, resnet], CPU) is False  # one unsafe net of a job: all NCHW
    assert resolve_layout(None, [lenet], CPU, mode="vmap") is False
    assert resolve_layout(None, [lenet], CPU, image=False) is False
    assert resolve_layout(None, [lenet], torch.device("cuda")) is False
    assert resolve_layout("on", [resnet], CPU) is True and resolve_layout(False, [lenet], CPU) is False


def test_the_environment_sets_the_default_and_an_explicit_choice_wins(monkeypatch):
    lenet = make_net("cifar10_lenet", 32)
    monkeypatch.setenv(LAYOUT_ENV, "off")
    assert resolve_layout(None, [lenet], CPU) is False
    assert resolve_layout("on", [lenet], CPU) is True
    monkeypatch.setenv(LAYOUT_ENV, "sideways")
    with pytest.raises(ConfigError, match=rf"{LAYOUT_ENV}='sideways' is not a layout; choose one of auto, on, off"):
        resolve_layout(None, [lenet], CPU)


def test_check_layout_names_the_bad_value():
    assert [check_layout(v) for v in ("on", "OFF", "auto", True, None)] == [True, False, None, True, None]
    with pytest.raises(ConfigError, match=r"channels_last=3 is not a layout"):
        check_layout(3)


def test_scoring_follows_the_rule_and_hands_the_net_back_contiguous():
    net = ResNet18(2, 3, 4, small_input=True)
    seen = []
    net.register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous()))
    out = forward_all(net, torch.rand(8, 3, 32, 32), make_augment("none"), CPU)
    assert out.shape == (8, 2) and seen == [True]  # NCHW in: the ResNet is not scored in NHWC
    lenet = make_net("cifar10_lenet", 32)
    seen_l = []
    lenet.register_forward_pre_hook(lambda m, args: seen_l.append(
        args[0].is_contiguous(memory_format=torch.channels_last)))
    forward_all(lenet, torch.rand(8, 3, 32, 32), make_augment("none"), CPU)
    assert seen_l == [True] and lenet.features[0].weight.is_contiguous()


# ---- crash-isolated smokes, one per native path ----------------------------------------------------------------

@pytest.mark.parametrize("isa", [None, "AVX2"])
@pytest.mark.parametrize("threads", [1, 2])
def test_auto_layout_trains_the_width4_resnet_and_a_lenet(threads, isa):
    """The regression test: on the code before the fix (NHWC for every image net on a CPU) the width-4 ResNet
    aborts here under AVX2 ('double free or corruption'), or hangs with 2 threads."""
    lines = run_path("auto", threads, isa)
    assert [line.split()[1] for line in lines] == ["nchw", "nchw", "nhwc"]


def test_forcing_nhwc_off_trains_everything_contiguous():
    lines = run_path("auto", 1, "AVX2", **{LAYOUT_ENV: "off"})
    assert [line.split()[1] for line in lines] == ["nchw", "nchw", "nchw"]


@pytest.mark.parametrize("path,threads", [("vmap-nhwc", 1), ("vmap-nhwc", 2), ("bn-nhwc", 2), ("compile", 1)])
def test_native_path_smoke_under_avx2(path, threads):
    lines = run_path(path, threads, "AVX2", timeout=400 if path == "compile" else 240)
    assert lines and all(line.split()[1] == "nhwc" for line in lines)
