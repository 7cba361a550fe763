"""Runs on a Ray cluster: each run trains in a Ray actor, the RunManager's second backend beside the local worker
processes (gan_core.runs.processes).

Ray is optional: this module imports it only inside the functions that talk to a cluster, so the default install
neither needs nor imports it.
"""

from __future__ import annotations

import os

ENV_ADDRESS = "GAN_RAY_ADDRESS"


def address_from(value: str | None) -> str | None:
    """The Ray address to use: `value`, else GAN_RAY_ADDRESS; None (local worker processes) when both are empty."""
    text = (os.environ.get(ENV_ADDRESS, "") if value is None else value).strip()
    return text or None
