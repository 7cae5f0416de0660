"""Argument checks shared by the model builders; errors read like Keras'."""

MIN_IMAGE_SIZE = 32  # Five stride-2 stages take 32 pixels down to 1.


def check_choice(name, value, choices):
    """Raises ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}. Received: {name}={value!r}")


def check_at_least(name, value, minimum):
    """Raises ValueError unless `value` is an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")


def check_image_size(image_size):
    """Raises ValueError unless `image_size` is an int >= MIN_IMAGE_SIZE."""
    check_at_least("image_size", image_size, MIN_IMAGE_SIZE)
