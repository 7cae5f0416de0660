"""The one helper behind the configs' Keras-style argument errors."""


def check(condition: bool, message: str) -> None:
    """Raises ValueError(message) unless `condition` holds."""
    if not condition:
        raise ValueError(message)
