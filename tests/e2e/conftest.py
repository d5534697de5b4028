"""Fixtures for tests against a real Kubernetes control plane with kwok nodes.

The binaries come from `tools/k8s/build`. Without them the e2e tests are skipped on a
developer machine, but fail in CI (CI=true), where the build is part of the setup.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

from harness.backends.k8s import K8sBinaries, K8sBinariesMissing, KwokCluster, binaries
from harness.backends.k8s.cluster import KwokError
from harness.backends.k8s.workloads import delete_namespace

E2E_NODES = 5


@pytest.fixture(scope="session")
def k8s_binaries(missing_tool: Callable[[str], NoReturn]) -> K8sBinaries:
    try:
        return binaries()
    except K8sBinariesMissing as e:
        missing_tool(str(e))


@pytest.fixture(scope="session")
def kwok_cluster(
    k8s_binaries: K8sBinaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KwokCluster]:
    """One 5-node kwok cluster (node-1..node-5, 4 CPU / 8 GiB each) per test session.

    Tests share it, so each test works in its own namespace (see `namespace`).
    """
    # One retry: on a loaded 2-core machine the apiserver's RBAC bootstrap can outlast
    # kube-controller-manager's 20 s health wait, and then the whole session would error.
    # A failed start cleans up after itself, so a second attempt starts from scratch.
    for attempt in (1, 2):
        workdir = tmp_path_factory.mktemp("kwok")
        try:
            cluster = KwokCluster.start(
                nodes=E2E_NODES, cpu="4", memory="8Gi", workdir=workdir, bins=k8s_binaries
            )
        except KwokError as e:
            if attempt == 2:
                raise
            warnings.warn(f"kwok cluster failed to start, retrying once: {e}", stacklevel=1)
            continue
        with cluster:
            yield cluster
        return


@pytest.fixture
def namespace(kwok_cluster: KwokCluster) -> Iterator[str]:
    """A fresh namespace on the shared cluster, deleted after the test.

    Teardown waits until its pods are gone, so that the next test finds every node
    empty (namespace deletion alone finishes in the background, ~6 s later).
    """
    from kubernetes import client

    name = f"t-{uuid.uuid4().hex[:8]}"
    core: Any = kwok_cluster.core_v1()
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    delete_namespace(kwok_cluster, name)
