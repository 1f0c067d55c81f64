"""The mitigated decision rule: per-group thresholds and their randomisation, saved as JSON.

fairlearn's ``ThresholdOptimizer`` ends in an ``InterpolatedThresholder``: for each group value, with
probability ``p0`` decide by ``score op0 t0`` and with ``p1`` by ``score op1 t1`` (and, where the
optimum needs it, ignore the score with probability ``p_ignore`` and decide ``constant``). This
module holds that rule as plain data, so that it can be saved beside the model, hashed into the
manifest and applied by ``predict`` without fairlearn, and it applies it exactly as fairlearn does:
the same positive probabilities, and the same decisions for the same ``random_state``
(``probability >= RandomState(seed).rand(n)``), which tests/mitigation checks against fairlearn.

The rule reads the sensitive attribute at decision time. In US employment testing that is
race-norming, prohibited by 42 U.S.C. §2000e-2(l); the ``employment-four-fifths`` pack fails such a
model on a protected attribute.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RULE_FILE", "DecisionRule", "GroupThreshold", "load_decision_rule"]

#: Where the rule lives in a model folder (or an output folder in predictions-only mode).
RULE_FILE = "decision_rule.json"


def _threshold_to_json(value: float) -> float | str:
    # JSON has no infinities; fairlearn uses ±inf for "always" and "never".
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _threshold_from_json(value: float | str) -> float:
    return float(value)


@dataclass(frozen=True)
class GroupThreshold:
    """The randomised threshold of one group: ``p0·[score op0 t0] + p1·[score op1 t1]``."""

    p0: float
    operator0: str
    threshold0: float
    p1: float
    operator1: str
    threshold1: float
    p_ignore: float = 0.0
    constant: float = 0.0

    def positive_probability(self, scores: np.ndarray) -> np.ndarray:
        def op(operator: str, threshold: float) -> np.ndarray:
            return scores > threshold if operator == ">" else scores < threshold

        out = self.p0 * op(self.operator0, self.threshold0) + self.p1 * op(self.operator1, self.threshold1)
        if self.p_ignore:
            out = self.p_ignore * self.constant + (1 - self.p_ignore) * out
        return np.asarray(out, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "p0": self.p0,
            "operator0": self.operator0,
            "threshold0": _threshold_to_json(self.threshold0),
            "p1": self.p1,
            "operator1": self.operator1,
            "threshold1": _threshold_to_json(self.threshold1),
            "p_ignore": self.p_ignore,
            "constant": self.constant,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> GroupThreshold:
        return cls(
            p0=float(raw["p0"]),
            operator0=str(raw["operator0"]),
            threshold0=_threshold_from_json(raw["threshold0"]),
            p1=float(raw["p1"]),
            operator1=str(raw["operator1"]),
            threshold1=_threshold_from_json(raw["threshold1"]),
            p_ignore=float(raw.get("p_ignore", 0.0)),
            constant=float(raw.get("constant", 0.0)),
        )


@dataclass(frozen=True)
class DecisionRule:
    """Per-group randomised thresholds on the model's positive-class score.

    Attributes
    ----------
    attribute
        The sensitive attribute the rule reads at decision time.
    constraint, tol
        What the thresholds were fitted for (fairlearn's ``constraints`` and ``tol``).
    classes
        ``(negative, positive)`` class labels: decision 1 is ``classes[1]``.
    groups
        Group value → its threshold.
    random_state
        The seed of the randomised decisions (``predict`` uses it unless given another).
    """

    attribute: str
    constraint: str
    tol: float | None
    classes: tuple[str, str]
    groups: Mapping[str, GroupThreshold]
    random_state: int = 0
    method: str = "threshold"
    uses_sensitive_attribute: bool = field(default=True)
    #: Share of the fitted rule in a blend with the model's own decision (score > ½): 1 is the
    #: rule itself; a smaller share traces the line between the two, where fairlearn has no
    #: tolerance (equalized odds).
    blend: float = 1.0

    def positive_probability(
        self, scores: Sequence[float] | np.ndarray, groups: Sequence[Any] | np.ndarray
    ) -> np.ndarray:
        """The probability of the positive decision for each row (group values compared as strings).

        Raises
        ------
        ValueError
            If a row's group has no threshold (the rule was fitted without that group).
        """
        array = np.asarray(groups)
        names, codes = np.unique(array if array.dtype.kind == "U" else array.astype(str), return_inverse=True)
        return self.positive_probability_coded(scores, codes.reshape(-1), [str(n) for n in names])

    def positive_probability_coded(
        self, scores: Sequence[float] | np.ndarray, codes: np.ndarray, names: Sequence[str]
    ) -> np.ndarray:
        """:meth:`positive_probability` with the groups as integer codes into ``names``."""
        s = np.asarray(scores, dtype=np.float64)
        codes = np.asarray(codes)
        used: list[int] = (
            np.flatnonzero(np.bincount(codes, minlength=len(names))).tolist() if len(codes) else []
        )
        unknown = sorted({names[c] for c in used} - set(self.groups))
        if unknown:
            raise ValueError(
                f"no threshold for {self.attribute}={unknown[0]!r}; the rule knows {sorted(self.groups)}"
            )
        out = np.zeros(len(s), dtype=np.float64)
        for code in used:
            mask = codes == code
            out[mask] = self.groups[names[code]].positive_probability(s[mask])
        if self.blend != 1.0:
            out = self.blend * out + (1.0 - self.blend) * (s > 0.5)
        return out

    def decide(
        self,
        scores: Sequence[float] | np.ndarray,
        groups: Sequence[Any] | np.ndarray,
        random_state: int | None = None,
    ) -> np.ndarray:
        """0/1 decisions, drawn as fairlearn draws them for the same ``random_state``."""
        return self._draw(self.positive_probability(scores, groups), random_state)

    def decide_coded(
        self,
        scores: Sequence[float] | np.ndarray,
        codes: np.ndarray,
        names: Sequence[str],
        random_state: int | None = None,
    ) -> np.ndarray:
        """:meth:`decide` with the groups as integer codes into ``names``."""
        return self._draw(self.positive_probability_coded(scores, codes, names), random_state)

    def _draw(self, probability: np.ndarray, random_state: int | None) -> np.ndarray:
        rng = np.random.RandomState(self.random_state if random_state is None else random_state)
        return (probability >= rng.rand(len(probability))).astype(np.int64)

    def predict(
        self,
        scores: Sequence[float] | np.ndarray,
        groups: Sequence[Any] | np.ndarray,
        random_state: int | None = None,
    ) -> np.ndarray:
        """Decisions as class labels (``classes[1]`` for a positive decision)."""
        return np.asarray(self.classes, dtype=object)[self.decide(scores, groups, random_state)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "attribute": self.attribute,
            "constraint": self.constraint,
            "tol": self.tol,
            "classes": list(self.classes),
            "random_state": self.random_state,
            "uses_sensitive_attribute": self.uses_sensitive_attribute,
            "blend": self.blend,
            "groups": {k: v.to_dict() for k, v in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DecisionRule:
        classes = tuple(str(c) for c in raw["classes"])
        if len(classes) != 2:
            raise ValueError(f"a decision rule has two classes, got {list(classes)}")
        return cls(
            attribute=str(raw["attribute"]),
            constraint=str(raw["constraint"]),
            tol=None if raw.get("tol") is None else float(raw["tol"]),
            classes=(classes[0], classes[1]),
            groups={str(k): GroupThreshold.from_dict(v) for k, v in dict(raw["groups"]).items()},
            random_state=int(raw.get("random_state", 0)),
            method=str(raw.get("method", "threshold")),
            uses_sensitive_attribute=bool(raw.get("uses_sensitive_attribute", True)),
            blend=float(raw.get("blend", 1.0)),
        )


def load_decision_rule(model_dir: str | os.PathLike[str]) -> DecisionRule | None:
    """The decision rule saved in a model folder by ``governance mitigate``, or None.

    Raises
    ------
    InputError
        When the file exists but is not a valid rule.
    """
    import json

    from governance.errors import InputError

    path = Path(model_dir) / RULE_FILE
    if not path.is_file():
        return None
    try:
        return DecisionRule.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(path, None, f"not a valid decision rule ({exc.__class__.__name__}: {exc})") from None
