"""Shared fixtures. Tests that talk to the cluster run inside its network namespace (scripts/test.sh does that);
helpers live in tests/support/runs.py."""
import uuid

import pytest

from tests.support.runs import Kubectl, in_cluster_netns


@pytest.fixture(scope="session")
def cluster():
    if not in_cluster_netns():
        pytest.fail("the local cluster is not reachable: run the tests with scripts/test.sh "
                    "(it starts the cluster and runs pytest inside its network namespace)")
    return Kubectl()


@pytest.fixture
def namespace(cluster):
    name = "t-" + uuid.uuid4().hex[:8]
    cluster("create", "namespace", name)
    yield name
    cluster("delete", "namespace", name, "--wait=false")
