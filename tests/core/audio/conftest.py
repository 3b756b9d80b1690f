"""What the audio tower's tests share: the transformers reference of the small tower, and the tower itself
with the same seeded weights."""

from __future__ import annotations

import numpy as np
import pytest

from g3chat.core.audio.encoder import AudioEncoder
from tests.conftest import FIXTURES
from tests.fixtures.audio_synth import SMALL, random_weights


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "audio" / "encoder_small.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def encoder(ref: dict[str, np.ndarray]) -> AudioEncoder:
    return AudioEncoder(SMALL, random_weights(SMALL, int(ref["seed"])))
