"""Seeds derived from a user seed: one independent stream per purpose.

Used by the data pipeline (order, augmentation) and the attacks (random
starts, restarts), so every random draw of a run is a function of `--seed`.
"""

import numpy as np


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 31-bit seed derived from `seed` and `keys` (different keys -> independent seeds)."""
    words = [seed] + [k if isinstance(k, int) else int.from_bytes(k.encode(), "little")
                      for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0] >> 1)
