"""Feast's SQL registry shared by many projects: one project's apply and read, side by side.

Feast's ``FeatureStore`` caches every project of its SQL registry (ten queries each) when it
opens it and again after each object written; the store's own (``ProjectFeatureStore``) caches
the project it opened. Each round registers the market definitions again in one project (what
``featurestore registry apply`` asks of Feast, without the offline tables) and reads them back
(what every process does at its start without kept definitions), through each store in turn,
with the other projects the registry holds, then with more of them, each holding the same
definitions, up to each count of ``REGISTRY_OTHERS`` (default ``0,25,100``).
``REGISTRY_ROUNDS`` (3) rounds per count. Every project it made is deleted at the end.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.stats import doc_paragraph
from bench.stats import markdown_table
from featurestore.config import Settings

__all__ = ["run"]


@contextmanager
def _opened(settings: Settings, project: str, store_class: Any) -> Iterator[Any]:
    """``store_class(config=...)`` as ``feature_store`` configures it, its engines closed after."""
    from featurestore.definitions.feast_api import RepoConfig
    from featurestore.definitions.feast_codec import ensure_registry_schema
    from featurestore.definitions.repo_config import repo_config_dict

    ensure_registry_schema(settings)
    config = RepoConfig(**repo_config_dict(settings, project))
    config.repo_path = Path.cwd()
    store = store_class(config=config)
    try:
        yield store
    finally:
        store.registry.write_engine.dispose()
        store.registry.read_engine.dispose()


def _timed(
    settings: Settings, project: str, store_class: Any, objects: list[Any]
) -> tuple[float, float]:
    """Seconds to open and register ``objects``, then to open and read them back."""
    from featurestore.definitions.registry import read_registry
    from featurestore.definitions.registry import register_objects

    began = time.perf_counter()
    with _opened(settings, project, store_class) as store:
        register_objects(store, objects)
    applied = time.perf_counter()
    with _opened(settings, project, store_class) as store:
        read_registry(store.registry, project)
    return applied - began, time.perf_counter() - applied


def run(settings: Settings) -> str:
    """Apply and read times per count of other projects, Feast's store beside the store's own."""
    from featurestore.definitions import market_definitions
    from featurestore.definitions.feast_api import FeatureStore
    from featurestore.definitions.feast_codec import to_feast_objects
    from featurestore.definitions.feast_project_store import ProjectFeatureStore
    from featurestore.definitions.registry import register_objects

    counts = [int(n) for n in os.environ.get("REGISTRY_OTHERS", "0,25,100").split(",")]
    rounds = int(os.environ.get("REGISTRY_ROUNDS", "3"))
    run_id = uuid.uuid4().hex[:8]
    bootstrap = settings.kafka.bootstrap
    mine = f"bench_registry_{run_id}"
    objects = to_feast_objects(market_definitions(mine), kafka_bootstrap=bootstrap)
    stores = {"Feast FeatureStore": FeatureStore, "ProjectFeatureStore": ProjectFeatureStore}
    made = [mine]
    rows = []
    try:
        with _opened(settings, mine, ProjectFeatureStore) as store:
            register_objects(store, objects)
            present = len(store.registry.list_projects(allow_cache=False)) - 1
        for count in sorted({present, *(c for c in counts if c > present)}):
            while present + len(made) - 1 < count:
                other = f"bench_registry_{run_id}_{len(made)}"
                theirs = to_feast_objects(market_definitions(other), kafka_bootstrap=bootstrap)
                with _opened(settings, other, ProjectFeatureStore) as store:
                    register_objects(store, theirs)
                made.append(other)
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in stores}
            for _ in range(rounds):
                for name, store_class in stores.items():
                    times[name].append(_timed(settings, mine, store_class, objects))
                    print(f"[registry] {count} others, {name}: {times[name][-1]}", flush=True)
            apply = {n: statistics.median(t[0] for t in times[n]) for n in stores}
            read = {n: statistics.median(t[1] for t in times[n]) for n in stores}
            plain, own = stores
            rows.append([
                count,
                apply[plain], apply[own], apply[plain] / apply[own],
                read[plain], read[own], read[plain] / read[own],
                ", ".join(f"{a:.1f}" for a, _ in times[plain]),
                ", ".join(f"{a:.1f}" for a, _ in times[own]),
            ])  # fmt: skip
    finally:
        for project in made:
            with _opened(settings, project, ProjectFeatureStore) as store:
                store.registry.delete_project(project, commit=True)
    table = markdown_table(
        ["other projects", "apply s, Feast (median)", "apply s, ours (median)", "ratio",
         "read s, Feast (median)", "read s, ours (median)", "ratio",
         "apply runs s, Feast", "apply runs s, ours"],
        rows,
    )  # fmt: skip
    title = "### Registry: apply and read beside other projects"
    return f"{title}\n\n{doc_paragraph(__doc__, 1)}\n\n{table}\n"
