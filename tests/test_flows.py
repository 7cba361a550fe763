"""ui.flows: the two update diagrams name what each update feeds, scores against, freezes and changes."""

from __future__ import annotations

from ui import flows


def _edges(dot: str) -> set[tuple[str, str]]:
    """Every a -> b pair, chains (a -> b -> c) included."""
    pairs = set()
    for line in dot.splitlines():
        for statement in line.split(";"):
            nodes = [n.strip().split(" ")[0] for n in statement.split("->")]
            pairs.update(zip(nodes, nodes[1:], strict=False))
    return pairs


def test_d_update_feeds_real_and_fakes_with_g_frozen_and_changes_only_theta_d():
    dot = flows.d_update_flow()
    edges = _edges(dot)
    assert {("real", "D"), ("fake", "D"), ("z", "G"), ("G", "fake"), ("bce", "step"), ("step", "D")} <= edges
    assert 'G [label="G (frozen)"' in dot and "real against 1" in dot and "fakes against 0" in dot
    assert "update θ_d" in dot and "θ_g" not in dot
    assert ("step", "G") not in edges  # G is not updated by D's step


def test_g_update_runs_z_through_g_and_d_against_label_1_and_changes_only_theta_g():
    dot = flows.g_update_flow()
    edges = _edges(dot)
    chain = [("z", "G"), ("G", "fake"), ("fake", "D"), ("D", "out"), ("out", "bce"), ("bce", "step"), ("step", "G")]
    assert set(chain) <= edges
    assert 'D [label="D (frozen)"' in dot and "against label 1" in dot
    assert "θ_g only" in dot and "θ_d" not in dot
    assert "real" not in {a for a, _ in edges}  # G's update sees no real examples
    assert ("step", "D") not in edges
