"""Beam PTransforms and DoFns, one concern a module, in the order the build applies them."""
