"""How a network runs (hyco.networks.runtime, the periodic pad of hyco.networks.layers): the same function
and gradients whichever way it runs, a compile failure that ends in one warning line and the eager path."""

import copy
import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from hyco.errors import ConfigError
from hyco.networks import build_network
from hyco.networks.layers import PERIODIC_CONVS, periodic_pad
from hyco.networks.runtime import CompiledNetwork, RuntimeOptions


@pytest.mark.parametrize("shape, pad", [((2, 3, 7), 1), ((2, 3, 6, 5), 1), ((2, 3, 6, 5), 2), ((1, 2, 4, 5, 6), 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_periodic_pad_matches_torch_circular_pad_and_its_gradient(shape, pad, channels_last):
    torch.manual_seed(0)
    ndim = len(shape) - 2
    x = torch.randn(*shape, dtype=torch.float64)
    if channels_last and ndim in (2, 3):
        x = x.contiguous(memory_format=torch.channels_last if ndim == 2 else torch.channels_last_3d)
    x.requires_grad_(True)
    ours, theirs = periodic_pad(x, pad, ndim), F.pad(x, (pad,) * (2 * ndim), mode="circular")
    assert torch.equal(ours, theirs)
    weight = torch.randn_like(theirs)
    grad_ours = torch.autograd.grad((ours * weight).sum(), x)[0]
    grad_theirs = torch.autograd.grad((theirs * weight).sum(), x)[0]
    assert torch.allclose(grad_ours, grad_theirs, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: periodic_pad(t, pad, ndim), (x.detach().clone().requires_grad_(),))
    if channels_last and ndim == 2:  # the layout is kept, so a channels-last network converts nothing
        assert ours.is_contiguous(memory_format=torch.channels_last)


def _trained_copies(section: dict, variants: list[dict], ndim: int = 2):
    torch.manual_seed(3)
    base = build_network(section, 2, [0, 1], ndim)
    for p in base.net.parameters():  # leave the zero-initialised identity start
        torch.nn.init.normal_(p, std=0.1)
    models = []
    for variant in variants:
        model = build_network({**section, **variant}, 2, [0, 1], ndim)
        model.load_state_dict(base.state_dict())
        models.append(model.double())  # float64: a changed summation order (channels_last) is not a difference
    return models


@pytest.mark.parametrize("name", ["unet", "resnet", "convnet"])
def test_runtime_variants_compute_the_same_step_and_gradients(name):
    section = {"name": name, "width": 8, "depth": 2}
    variants = [{"periodic_pad": "torch", "channels_last": False}, {"periodic_pad": "fold", "channels_last": False},
                {"periodic_pad": "fold", "channels_last": True}]
    models = _trained_copies(section, variants)
    state = torch.randn(3, 2, 16, 16, dtype=torch.float64)
    outputs, grads = [], []
    for model in models:
        out = model.rollout(state, 2)
        out.square().sum().backward()
        outputs.append(out.detach())
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.net.parameters()]))
        assert out.is_contiguous()  # what the trainers see is in the default layout
    for out, grad in zip(outputs[1:], grads[1:]):
        assert torch.allclose(out, outputs[0], rtol=1e-10, atol=1e-10)
        assert torch.allclose(grad, grads[0], rtol=1e-9, atol=1e-9)
    folded = [m for m in models[1].net.modules() if isinstance(m, PERIODIC_CONVS)]
    assert folded and all(m.fold_backward for m in folded)
    assert not any(m.fold_backward for m in models[0].net.modules() if isinstance(m, PERIODIC_CONVS))
    weights = [p for p in models[2].net.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


def test_runtime_keys_are_not_part_of_the_architecture():
    plain = build_network({"name": "unet", "width": 4}, 2, [0, 1], 2)
    tuned = build_network({"name": "unet", "width": 4, "compile": False, "channels_last": "true",
                           "autocast": "off", "periodic_pad": "torch"}, 2, [0, 1], 2)
    assert plain.fingerprint() == tuned.fingerprint()  # a checkpoint loads whichever way it is run
    tuned.load_state_dict(plain.state_dict())
    assert tuned.runtime == RuntimeOptions(compile="false", channels_last="true", autocast="off",
                                           periodic_pad="torch")


@pytest.mark.parametrize("key, value", [("compile", "sometimes"), ("channels_last", 3), ("autocast", "fp8"),
                                        ("periodic_pad", "wrap")])
def test_bad_runtime_values_name_their_key(key, value):
    with pytest.raises(ConfigError, match=f"network.{key}"):
        build_network({"name": "unet", "width": 4, key: value}, 2, [0, 1], 2)


def test_auto_choices_by_device_and_network():
    auto = RuntimeOptions()
    cpu = torch.device("cpu")
    assert not auto.compiles(cpu) and auto.compiles(torch.device("cuda"))
    assert RuntimeOptions(compile="true").compiles(cpu)
    assert auto.autocast_dtype(cpu) is None and RuntimeOptions(autocast="fp16").autocast_dtype(cpu) is None
    assert RuntimeOptions(autocast="bf16").autocast_dtype(cpu) == torch.bfloat16  # on request only
    assert RuntimeOptions(autocast="fp16").autocast_dtype(torch.device("cuda")) == torch.float16
    assert RuntimeOptions(autocast="off").autocast_dtype(torch.device("cuda")) is None
    unet = build_network({"name": "unet", "width": 4}, 2, [0, 1], 2)
    fno = build_network({"name": "fno", "width": 4, "modes": 3}, 2, [0, 1], 2)
    assert auto.uses_channels_last(2, unet.net) and not auto.uses_channels_last(2, fno.net)
    assert not auto.uses_channels_last(1, unet.net)
    assert not unet.grad_scaling(cpu)


def test_compile_failure_warns_once_and_runs_eagerly(caplog):
    calls = []

    def broken_compiler(module):
        calls.append(module)
        raise RuntimeError("inductor: no working C++ compiler found\nlong traceback text")

    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    runner = CompiledNetwork(net, broken_compiler)
    x = torch.randn(2, 1, 8, 8)
    with caplog.at_level(logging.WARNING, logger="hyco.networks.runtime"):
        first, second = runner(x), runner(x)
    assert torch.equal(first, net(x)) and torch.equal(second, net(x))
    assert len(calls) == 1  # not retried on every call
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert "no working C++ compiler" in warnings[0].getMessage() and "eagerly" in warnings[0].getMessage()


def test_a_network_whose_compile_fails_trains_eagerly(monkeypatch, caplog):
    def unavailable(module, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unavailable)
    models = _trained_copies({"name": "convnet", "width": 4, "depth": 1}, [{"compile": False}, {"compile": True}])
    state = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    with caplog.at_level(logging.WARNING, logger="hyco.networks.runtime"):
        out = models[1].rollout(state, 2)
    assert torch.allclose(out, models[0].rollout(state, 2))
    out.sum().backward()
    assert all(p.grad is not None for p in models[1].net.parameters())
    assert sum("torch.compile failed" in r.getMessage() for r in caplog.records) == 1
    clone = copy.deepcopy(models[1])  # a frozen predictor: no compiled state copied
    assert clone._compiled == {} and torch.allclose(clone.rollout(state, 1), models[0].rollout(state, 1))


@pytest.mark.slow
def test_compile_without_a_cpp_compiler_falls_back_in_a_fresh_process(tmp_path):  # about 15 s
    """The real thing: inductor with no C++ compiler on the PATH (CXX names a missing program)."""
    script = textwrap.dedent("""
        import torch
        from hyco.networks import build_network
        torch.manual_seed(0)
        model = build_network({"name": "convnet", "width": 4, "depth": 1, "compile": True}, 1, [0], 2)
        eager = build_network({"name": "convnet", "width": 4, "depth": 1}, 1, [0], 2)
        eager.load_state_dict(model.state_dict())
        x = torch.randn(2, 1, 8, 8)
        assert torch.allclose(model(x), eager(x))
        print("OK", model._compiled["net"].failed is not None)
    """)
    env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), CC=str(tmp_path / "no-such-compiler"),
               TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "OK True"
    warnings = [line for line in done.stderr.splitlines() if "torch.compile failed" in line]
    assert len(warnings) == 1 and "C++ compiler" in warnings[0]


def test_bf16_autocast_on_cpu_runs_in_bf16_and_returns_the_model_dtype():
    """`network.autocast=bf16` on CPU: the forward pass runs in bfloat16 (its outputs differ from float32 by
    bf16 round-off, not more) and hands back the model's dtype; gradients reach every weight."""
    torch.manual_seed(0)
    x = torch.randn(2, 2, 16, 16)
    full = build_network({"name": "unet", "width": 8, "autocast": "off"}, 2, [0, 1], 2)
    half = build_network({"name": "unet", "width": 8, "autocast": "bf16"}, 2, [0, 1], 2)
    with torch.no_grad():  # the last layer starts at zero (output = input): give every weight a value
        for p in full.parameters():
            p.add_(0.1 * torch.randn_like(p))
    half.load_state_dict(full.state_dict())
    reference, out = full(x), half(x)
    assert out.dtype == torch.float32
    difference = float((out - reference).detach().norm() / (reference - x).detach().norm())
    assert 0.0 < difference < 5e-2, difference
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in half.parameters())
