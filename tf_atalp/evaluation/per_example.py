"""Per-example outcomes in results files: one character per example, in split order.

A paired comparison of two models on the same test images (McNemar's test,
a paired bootstrap; `tf_atalp.study.statistics`) needs to know which images
each model got right, not only how many. Results store that as a string of
'1' (correct / robust) and '0', example i at position i: compact in JSON
(2000 images are 2000 characters) and readable by eye.
"""

import numpy as np


def encode_outcomes(outcomes) -> str:
    """bool [N] -> a string of N '0'/'1' characters."""
    values = np.asarray(outcomes, dtype=bool).ravel()
    return "".join("1" if value else "0" for value in values)


def decode_outcomes(text: str) -> np.ndarray:
    """A string of '0'/'1' characters -> bool [N]; raises ValueError on any other character."""
    if not isinstance(text, str) or set(text) - {"0", "1"}:
        raise ValueError("Per-example outcomes must be a string of '0' and '1'. Received: "
                         f"{text[:40] if isinstance(text, str) else type(text).__name__!r}")
    return np.frombuffer(text.encode("ascii"), dtype=np.uint8) == ord("1")
