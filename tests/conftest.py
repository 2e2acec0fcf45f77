"""Suite-wide test settings."""

from hypothesis import settings

# Property tests check behaviour, not speed: on a busy 2-core machine a single example can
# take longer than hypothesis' default 200 ms deadline without anything being wrong.
settings.register_profile("llmos", deadline=None)
settings.load_profile("llmos")
