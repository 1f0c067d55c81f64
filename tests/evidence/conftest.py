"""An audit folder like the demo's (same files, same kinds of content), keys, and a signed copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from governance.evidence.hooks import write_audit_manifest

#: The demo folder's files (`governance demo`), with sizes scaled down to keep hashing cheap.
DEMO_FILES: dict[str, int] = {
    "results.json": 0,
    "report.html": 3000,
    "report.md": 1500,
    "report.json": 2000,
    "report.pdf": 4000,
    "junit.xml": 800,
    "model/config.json": 480,
    "model/model.safetensors": 5856,
    "model/preprocessing.json": 700,
    "model/training.json": 900,
}


def results_doc(metrics: dict[str, float] | None = None, **run: str) -> dict:
    return {
        "schema_version": 1,
        "run": {
            "tool_version": "0.1.0",
            "spec_name": run.get("spec_name", "german-credit"),
            "seed": 0,
            "started_at": "2026-12-01T10:00:00+00:00",
            "finished_at": "2026-12-01T10:01:00+00:00",
            "device": "cpu",
        },
        "subject": {
            "data": {
                "train": {"path": "train.csv", "sha256": "a" * 64},
                "eval": {"path": "eval.csv", "sha256": "b" * 64},
            },
            "model": {"path": "model", "files": {"model.safetensors": "c" * 64}},
        },
        "metrics": metrics
        or {
            "performance.accuracy": 0.74,
            "fairness.sex.demographic_parity_ratio": 0.91,
            "privacy.epsilon": 2.99,
            "privacy.delta": 1e-5,
        },
        "sections": {},
        "findings": [],
    }


def make_demo_folder(root: Path, *, seed: int = 0) -> Path:
    """A folder with the demo's files, random bytes of the demo's kinds, and its manifest."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for rel, size in DEMO_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel == "results.json":
            path.write_text(json.dumps(results_doc(), indent=2))
        else:
            path.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    spec = root.parent / "spec.yaml"
    spec.write_text("name: german-credit\n")
    write_audit_manifest(
        root, {"spec": spec, "model/model.safetensors": root / "model" / "model.safetensors"}
    )
    return root


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two P-256 key pairs (PEM): ``key``/``pub`` and an unrelated ``other_key``/``other_pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = tmp_path_factory.mktemp("keys")
    out: dict[str, Path] = {}
    for prefix in ("", "other_"):
        private = ec.generate_private_key(ec.SECP256R1())
        out[f"{prefix}key"] = folder / f"{prefix}key.pem"
        out[f"{prefix}pub"] = folder / f"{prefix}pub.pem"
        out[f"{prefix}key"].write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out[f"{prefix}pub"].write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return out


@pytest.fixture
def demo_folder(tmp_path: Path) -> Path:
    return make_demo_folder(tmp_path / "audit")


@pytest.fixture(scope="session")
def signed_template(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Path:
    from governance.evidence.signing import sign_folder

    folder = make_demo_folder(tmp_path_factory.mktemp("signed") / "audit")
    sign_folder(folder, keys["key"], signer="reviewer@example.org")
    return folder


@pytest.fixture
def signed_folder(tmp_path: Path, signed_template: Path) -> Path:
    target = tmp_path / "signed-audit"
    shutil.copytree(signed_template, target)
    return target
