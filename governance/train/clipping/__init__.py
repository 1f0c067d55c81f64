"""Per-sample clipping for DP-SGD, faster than Opacus' hooks on the layers it covers.

- :mod:`governance.train.clipping.linear`: single-pass clipping of Linear/LayerNorm (and, through
  :mod:`~governance.train.clipping.conv`, Conv2d/GroupNorm) layers, and the fused MLP step.
- :mod:`governance.train.clipping.conv`: the per-sample maths of Conv2d and GroupNorm.
- :mod:`governance.train.clipping.sequential`: the fused step for ``nn.Sequential`` conv nets.

Opacus stays the oracle: the tests hold each path to a one-sample-at-a-time reference and to
Opacus' hooks with the same seed.
"""
