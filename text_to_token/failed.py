"""A text-to-token model's answer for one span that is a failure, not units: the reason, as a string. The inference
cache sends the span to the dead letters (as it does a failed batch's) and caches nothing for it."""


class Failed(str):
    """The reason a span has no units ("span_too_long: ...", "no end token within the length cap ...")."""
