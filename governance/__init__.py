"""governance: responsible-AI audit and governance for PyTorch models.

``import governance`` is cheap: the API below is resolved lazily, so torch, Opacus, Captum and
ART load only when a function that needs them is called.

Examples
--------
>>> import governance
>>> results = governance.load_results("out/demo/results.json")  # doctest: +SKIP
>>> report = governance.check(results, "eu-ai-act-high-risk")    # doctest: +SKIP
>>> report.passed                                                # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> "module:attribute"; resolved on first access (PEP 562).
_LAZY: dict[str, str] = {
    "load_results": "governance.results:load_results",
    "save_results": "governance.results:save_results",
    "Results": "governance.results:Results",
    "check": "governance.policy.engine:check",
    "load_policy": "governance.policy.loader:load_policy",
    "load_waivers": "governance.policy.waivers:load_waivers",
    "load_spec": "governance.spec:load_spec",
    "load_model": "governance.models.artifacts:load_model",
    "Trainer": "governance.train.trainer:Trainer",
    "PrivacySettings": "governance.train.trainer:PrivacySettings",
    "run_audit": "governance.pipeline:run_audit",
    "InputError": "governance.errors:InputError",
}

__all__ = ["__version__", *sorted(_LAZY)]

if TYPE_CHECKING:
    from governance.errors import InputError
    from governance.policy.engine import check
    from governance.policy.loader import load_policy
    from governance.policy.waivers import load_waivers
    from governance.results import Results, load_results, save_results
    from governance.spec import load_spec


def __getattr__(name: str) -> Any:
    try:
        target = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'governance' has no attribute {name!r}") from None
    module_name, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
