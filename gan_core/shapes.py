"""Every network's layer sizes as plain numbers, in one place.

models.py builds its layers from these lists, and config.py counts a config's weights with them, without torch: a
config is checked for size as it is made, before anything is built (tests/test_config.py checks the counts against
the built networks).
"""

from __future__ import annotations

Conv = tuple[int, int, int, int]  # in channels, out channels, kernel size, stride


def mlp_generator_dims(z_in: int, width: int, depth: int, out: int) -> list[int]:
    """Input (z and any one-hot label), hidden widths w, 2w, 4w, …, output."""
    return [z_in] + [width * 2**i for i in range(depth)] + [out]


def mlp_discriminator_dims(x_in: int, width: int, depth: int) -> list[int]:
    """Input (x and any one-hot label), hidden widths …, 4w, 2w, w, one logit."""
    return [x_in] + [width * 2 ** (depth - 1 - i) for i in range(depth)] + [1]


def dcgan_generator_convs(z_in: int, width: int, channels: int) -> list[Conv]:
    """Transposed convolutions from z as a 1×1 map: 3×3, 6×6, 13×13, then the output layer to 28×28."""
    w = width
    return [(z_in, w * 4, 3, 2), (w * 4, w * 2, 4, 1), (w * 2, w, 3, 2), (w, channels, 4, 2)]


def dcgan_discriminator_convs(x_in: int, width: int) -> list[Conv]:
    """Strided convolutions 28 → 13 → 5, then the output layer to one logit."""
    w = width
    return [(x_in, w, 4, 2), (w, w * 2, 4, 2), (w * 2, 1, 4, 2)]


def mlp_weights(dims: list[int], batchnorm: bool) -> int:
    """Weights and biases of Linear layers between consecutive dims, with batch norm's γ and β on the hidden ones."""
    linear = sum(a * b + b for a, b in zip(dims, dims[1:], strict=False))
    return linear + (2 * sum(dims[1:-1]) if batchnorm else 0)


def conv_weights(convs: list[Conv], batchnorm: bool) -> int:
    """The same for convolutions (the last one is the output layer, without batch norm)."""
    total = sum(cin * cout * k * k + cout for cin, cout, k, _ in convs)
    return total + (2 * sum(cout for _, cout, _, _ in convs[:-1]) if batchnorm else 0)
