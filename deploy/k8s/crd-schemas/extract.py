"""Write the JSON schema of a CustomResourceDefinition's served version, for offline validation.

    python deploy/k8s/crd-schemas/extract.py CRD.yaml VERSION > GROUP_VERSION_KIND.json

The schema is the CRD's ``openAPIV3Schema`` without its ``description`` texts (they make up most
of a CRD's size and validate nothing). tests/unit/deploy/test_manifests.py validates the custom
resources of deploy/k8s against these files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def strip_descriptions(node: Any) -> Any:
    """``node`` without the ``description`` of any schema in it."""
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def main(path: str, version: str) -> None:
    """Print the schema of ``version`` of the CRD in ``path``."""
    with Path(path).open(encoding="utf-8") as source:
        crd = yaml.safe_load(source)
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema = strip_descriptions(served["schema"]["openAPIV3Schema"])
            json.dump(schema, sys.stdout, indent=1, sort_keys=True)
            sys.stdout.write("\n")
            return
    raise SystemExit(f"{path} serves no version {version}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
