"""Controllable generation on hand-made models small enough to reason about."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_core.lessons.control import class_ascent, interpolate_labels, interpolate_z, slerp

Z_DIM, N = 16, 6


def _models() -> tuple[nn.Module, nn.Module]:
    """G: z → 1×4×4 image in (0, 1) with a batch-norm layer (so eval mode matters); C: a linear layer on the 16 pixels.

    16 pixels > 10 classes, so some pixel directions move the target logit and no other: the penalty can find them.
    """
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(Z_DIM, 16), nn.BatchNorm1d(16), nn.Sigmoid(), nn.Unflatten(1, (1, 4, 4)))
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    with torch.no_grad():
        classifier[1].weight.mul_(5)  # larger logit changes per step keep the test short
    generator.train()  # as a trainer leaves it
    classifier.eval()
    return generator, classifier


def _z() -> torch.Tensor:
    return torch.randn(N, Z_DIM, generator=torch.Generator().manual_seed(1))


def test_ascent_raises_the_target_probability_and_records_every_step() -> None:
    generator, classifier = _models()
    result = class_ascent(generator, classifier, _z(), target=3, steps=20, step_size=0.2, penalty=0.0)
    assert result.z.shape == (21, N, Z_DIM)
    assert result.images.shape == (21, N, 1, 4, 4)
    assert result.probs.shape == (21, N, 10) and result.scores.shape == (21,)
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert (result.z[0] == _z().numpy()).all()
    assert result.probs[-1, :, result.target].mean() > result.probs[0, :, result.target].mean()
    assert result.scores[-1] > result.scores[0]
    assert result.other_logit_shift[0] == 0.0


def test_score_is_the_courses_get_score() -> None:
    generator, classifier = _models()
    result = class_ascent(generator, classifier, _z(), target=3, steps=5, step_size=0.5, penalty=0.7)
    logits = torch.from_numpy(result.logits)
    others = [c for c in range(10) if c != 3]
    for s in range(6):
        distances = logits[s][:, others] - logits[0][:, others]
        expected = logits[s][:, 3].mean() - 0.7 * torch.norm(distances, dim=1).mean()
        assert result.scores[s] == pytest.approx(float(expected), rel=1e-5, abs=1e-6)


def test_penalty_keeps_the_other_logits_closer_to_where_they_started() -> None:
    generator, classifier = _models()
    free = class_ascent(generator, classifier, _z(), target=3, steps=20, step_size=0.2, penalty=0.0)
    held = class_ascent(generator, classifier, _z(), target=3, steps=20, step_size=0.2, penalty=1.0)
    assert held.other_logit_shift[-1] < 0.3 * free.other_logit_shift[-1]
    # it still moves towards the target, only more selectively
    assert held.probs[-1, :, held.target].mean() > held.probs[0, :, held.target].mean()


def test_models_are_unchanged_and_their_modes_restored() -> None:
    generator, classifier = _models()
    classifier[1].bias.requires_grad_(False)  # a flag that differs from the default must come back as it was
    before = {k: v.clone() for m in (generator, classifier) for k, v in m.state_dict().items()}
    flags = [p.requires_grad for m in (generator, classifier) for p in m.parameters()]
    class_ascent(generator, classifier, _z(), target=0, steps=5, step_size=1.0, penalty=0.1)
    after = {k: v for m in (generator, classifier) for k, v in m.state_dict().items()}
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch-norm running stats included
    assert [p.requires_grad for m in (generator, classifier) for p in m.parameters()] == flags
    assert all(p.grad is None for m in (generator, classifier) for p in m.parameters())
    assert generator.training and not classifier.training


def test_conditional_generator_gets_its_onehot_and_to_unit_is_applied() -> None:
    class Conditional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(Z_DIM + 10, 16)

        def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.linear(torch.cat([z, onehot], 1))).view(-1, 1, 4, 4)  # in [−1, 1], like DCGAN

    _, classifier = _models()
    onehot = interpolate_labels(2, 2, 0.0).expand(N, 10)
    result = class_ascent(Conditional(), classifier, _z(), target=1, steps=3, step_size=0.1, penalty=0.0,
                          onehot=onehot, to_unit=lambda x: (x + 1) / 2)
    assert result.images.min() >= 0 and result.images.max() <= 1


def test_bad_target_is_refused() -> None:
    generator, classifier = _models()
    with pytest.raises(ValueError):
        class_ascent(generator, classifier, _z(), target=10, steps=1, step_size=0.1, penalty=0.0)


def test_interpolation_endpoints_are_exact() -> None:
    a, b = torch.randn(3, 16), torch.randn(3, 16)
    for fn in (interpolate_z, slerp):
        assert torch.equal(fn(a, b, 0.0), a)
        assert torch.equal(fn(a, b, 1.0), b)
        path = fn(a, b, torch.linspace(0, 1, 5))
        assert path.shape == (5, 3, 16)
        assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(interpolate_z(a, b, 0.5), (a + b) / 2)


def test_slerp_keeps_the_norm_between_equal_length_vectors() -> None:
    a = torch.tensor([1.0, 0.0])
    b = torch.tensor([0.0, 1.0])
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([2**-0.5, 2**-0.5]))
    assert torch.allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: falls back to linear


def test_soft_labels_sum_to_one() -> None:
    t = torch.linspace(0, 1, 7)
    labels = interpolate_labels(1, 8, t)
    assert labels.shape == (7, 10)
    assert torch.allclose(labels.sum(1), torch.ones(7))
    assert labels[0, 1] == 1 and labels[-1, 8] == 1
    assert labels[3, 1] == pytest.approx(0.5) and labels[3, 8] == pytest.approx(0.5)
    assert interpolate_labels(4, 4, 0.3).tolist() == [0.0] * 4 + [1.0] + [0.0] * 5
