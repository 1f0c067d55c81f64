"""`governance verify` on the demo folder: must answer in ≤ 0.5 s (median wall time, whole process).

The folder is built like `governance demo`'s (same files at the demo's sizes), with its manifest,
signed with a fresh P-256 key. Measured as a reviewer runs it: interpreter start, imports, hashing,
and (second figure) the signature check through model-signing.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 0.5

#: `governance demo`'s folder, file by file (bytes), as written on 2026-12-02.
DEMO_SIZES = {
    "results.json": 92124,
    "report.html": 143641,
    "report.md": 45396,
    "report.json": 113530,
    "report.pdf": 210834,
    "junit.xml": 8090,
    "model/config.json": 484,
    "model/model.safetensors": 5856,
    "model/preprocessing.json": 2202,
    "model/training.json": 6480,
}


def _folder(root: Path) -> tuple[Path, Path]:
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from governance.evidence.hooks import write_audit_manifest
    from governance.evidence.signing import sign_folder

    folder = root / "demo"
    for rel, size in DEMO_SIZES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(os.urandom(size))
    write_audit_manifest(folder, {})
    key = ec.generate_private_key(ec.SECP256R1())
    (root / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (root / "pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    sign_folder(folder, root / "key.pem")
    return folder, root / "pub.pem"


def _time(args: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def run(smoke: bool = False) -> dict[str, Any]:
    repeats = 2 if smoke else 7
    with tempfile.TemporaryDirectory() as tmp:
        folder, pub = _folder(Path(tmp))
        base = [sys.executable, "-m", "governance", "verify", str(folder)]
        manifest_only = _time(base, repeats)
        with_key = _time([*base, "--key", str(pub)], repeats)
    median = statistics.median(manifest_only)
    return {
        "verify_median_s": round(median, 3),
        "verify_best_s": round(min(manifest_only), 3),
        "verify_with_key_median_s": round(statistics.median(with_key), 3),
        "verify_with_key_best_s": round(min(with_key), 3),
        "target_s": TARGET_SECONDS,
        "met": median <= TARGET_SECONDS,
    }


if __name__ == "__main__":
    print(run())
