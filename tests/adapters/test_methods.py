"""Method-specific behaviour: calibration, triplet fine-tune, memory LRU, MAML gradients."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from fewshot_gui.adapters import create_adapter
from fewshot_gui.adapters.maml import HeadLearner, inner_adapt
from fewshot_gui.adapters.memory import MemoryReadWrite
from fewshot_gui.adapters.metalstm import MetaLSTMLearner, preprocess
from fewshot_gui.adapters.metric import PrototypeLearner, triplet_loss


def gaussian_task(seed, shot, sep=0.6, n_query=100, dim=64, way=5):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(way, dim)) * sep

    def sample(n, c):
        return (centers[c] + rng.normal(size=(n, dim))).astype(np.float32)

    x = np.concatenate([sample(shot, c) for c in range(way)])
    y = [str(c) for c in range(way) for _ in range(shot)]
    q = np.concatenate([sample(n_query, c) for c in range(way)])
    return x, y, q, np.repeat(np.arange(way), n_query)


def nll(adapter, q, truth):
    p = adapter.predict_proba(q)
    return -np.log(np.maximum(p[np.arange(len(truth)), truth], 1e-12)).mean()


def test_leave_one_out_temperature_beats_fixed_default():
    for distance in ("cosine", "euclidean"):
        calibrated, fixed = [], []
        for seed in range(6):
            x, y, q, truth = gaussian_task(seed, shot=10)
            calibrated.append(nll(create_adapter("metric", distance=distance).fit(x, y), q, truth))
            default = create_adapter("metric", distance=distance, calibrate=False).fit(x, y)
            fixed.append(nll(default, q, truth))
        assert np.mean(calibrated) < np.mean(fixed), distance


def test_one_shot_support_falls_back_to_default_temperature():
    x, y, _, _ = gaussian_task(0, shot=1)
    adapter = create_adapter("metric").fit(x, y)
    assert adapter.scale == 10.0
    learned = {"log_scale": torch.tensor(np.log(3.0))}
    assert np.isclose(create_adapter("metric", state=learned).fit(x, y).scale, 3.0)


def test_triplet_fine_tune_reduces_triplet_loss_and_skips_one_shot():
    x, y, _, _ = gaussian_task(1, shot=5, sep=0.4)
    adapter = create_adapter("metric", triplet=True, triplet_steps=20).fit(x, y)
    losses = adapter.triplet_losses
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert adapter.proj is not None
    z = torch.tensor(x)
    yt = torch.tensor([int(c) for c in y])
    assert triplet_loss(z, yt, 0.2) is not None
    one_shot = create_adapter("metric", triplet=True).fit(*gaussian_task(1, shot=1)[:2])
    assert one_shot.proj is None and one_shot.triplet_losses == []


def test_memory_lru_evicts_least_recently_used():
    eye = np.eye(8, dtype=np.float32)
    memory = create_adapter("memory", capacity=3).fit(eye[:3], ["a", "b", "c"])
    memory.predict_proba(eye[[0, 2]])  # reads "a" and "c"; "b" is least used now
    memory.add_example(eye[3], "d")
    assert memory.support_size == 4
    held = sorted(memory.slot_label[s] for s in memory.occupied)
    assert held == ["a", "c", "d"]
    memory.predict_proba(eye[[2, 3]])
    memory.add_example(eye[4], "e")  # "a" is now the least used
    assert sorted(memory.slot_label[s] for s in memory.occupied) == ["c", "d", "e"]


def test_memory_save_restore_round_trip_continues_identically():
    x, y, q, _ = gaussian_task(2, shot=3)
    memory = create_adapter("memory", capacity=10).fit(x, y)
    memory.predict_proba(q[:7])
    restored = create_adapter("memory").load_state(memory.state_dict())
    np.testing.assert_allclose(restored.predict_proba(q), memory.predict_proba(q), atol=1e-6)
    memory.add_example(q[0], "0")
    restored.add_example(q[0], "0")
    assert restored.slot_example == memory.slot_example
    assert torch.equal(restored.usage, memory.usage)


def test_memory_module_trains_and_adapter_uses_its_state():
    torch.manual_seed(0)
    module = MemoryReadWrite(16, proj_dim=8)
    s, sy, qx = torch.randn(10, 16), torch.arange(10) % 5, torch.randn(4, 16)
    loss = F.cross_entropy(module(s, sy, qx, 5), torch.arange(4))
    loss.backward()
    assert module.key_proj.weight.grad is not None and module.log_scale.grad is not None
    state = module.state_dict()
    adapter = create_adapter("memory", state=state).fit(s.numpy(), [str(int(c)) for c in sy])
    expected = torch.softmax(module(s, sy, qx, 5), 1).detach().numpy()
    np.testing.assert_allclose(adapter.predict_proba(qx.numpy()), expected, atol=1e-5)


def test_maml_second_order_differs_and_base_params_unchanged():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    xs, ys, xq, yq = torch.randn(9, 6), torch.arange(9) % 3, torch.randn(6, 6), torch.arange(6) % 3

    def loss_fn(module, fast):
        return F.cross_entropy(functional_call(module, fast, (xs,)), ys)

    grads = {}
    for first_order in (False, True):
        params = dict(net.named_parameters())
        fast = inner_adapt(net, params, loss_fn, steps=2, lr=0.5, first_order=first_order)
        outer = F.cross_entropy(functional_call(net, fast, (xq,)), yq)
        grads[first_order] = torch.autograd.grad(outer, list(params.values()))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    assert any(not torch.allclose(a, b) for a, b in zip(grads[False], grads[True], strict=True))


def test_metasgd_rates_get_gradients_and_head_learner_trains():
    torch.manual_seed(0)
    learner = HeadLearner(dim=16, steps=2, learn_lr=True)
    s, sy, qx, qy = torch.randn(10, 16), torch.arange(10) % 5, torch.randn(5, 16), torch.arange(5)
    F.cross_entropy(learner(s, sy, qx, 5), qy).backward()
    assert learner.lr_weight.grad is not None and learner.lr_weight.grad.abs().sum() > 0
    assert learner.log_scale.grad is not None
    anil = create_adapter("metasgd", state=learner.state_dict()).fit(
        s.numpy(), [str(int(c)) for c in sy]
    )
    expected = torch.softmax(learner(s, sy, qx, 5), 1).detach().numpy()
    np.testing.assert_allclose(anil.predict_proba(qx.numpy()), expected, atol=1e-5)


def test_prototype_learner_is_differentiable():
    learner = PrototypeLearner()
    s, sy, qx = torch.randn(10, 16, requires_grad=True), torch.arange(10) % 5, torch.randn(5, 16)
    F.cross_entropy(learner(s, sy, qx, 5), torch.arange(5)).backward()
    assert s.grad is not None and learner.log_scale.grad is not None


def test_metalstm_preprocessing_and_meta_gradients():
    x = torch.tensor([1.0, -1e-6, 0.0, -2.0])
    out = preprocess(x)
    assert torch.allclose(out[0], torch.tensor([0.0, 1.0]))
    assert torch.allclose(out[3], torch.tensor([float(np.log(2.0)) / 10, -1.0]))
    tiny = torch.tensor([-1.0, -1e-6 * float(np.exp(10))])  # below e^-p: (-1, e^p x)
    assert torch.allclose(out[1], tiny)
    torch.manual_seed(0)
    learner = MetaLSTMLearner(dim=16, steps=3)
    s, sy, qx, qy = torch.randn(10, 16), torch.arange(10) % 5, torch.randn(5, 16), torch.arange(5)
    F.cross_entropy(learner(s, sy, qx, 5), qy).backward()
    for p in (learner.input_gate.weight, learner.forget_gate.bias, learner.lstm.weight_ih):
        assert p.grad is not None and p.grad.abs().sum() > 0
    adapter = create_adapter("metalstm", state=learner.state_dict())
    adapter.fit(s.numpy(), [str(int(c)) for c in sy])
    expected = torch.softmax(learner(s, sy, qx, 5), 1).detach().numpy()
    np.testing.assert_allclose(adapter.predict_proba(qx.numpy()), expected, atol=1e-5)
