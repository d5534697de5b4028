"""The kwok setup of the NetMARKS extender: started with --bind, its kube-scheduler
profile hands it the bindings (bindVerb), and the policy table starts it so."""

from __future__ import annotations

from harness.backends.k8s import extender_stanza
from harness.backends.k8s.hostsched import _bind_verb
from schedulers import policy_spec


def test_bind_verb_only_for_an_extender_started_with_bind() -> None:
    assert _bind_verb(("netmarks-extender", "--bind", "--await-binds", "0.5")) == "bind"
    assert _bind_verb(("netmarks-extender",)) is None
    stanza = extender_stanza("http://127.0.0.1:8888/", bind_verb="bind")
    assert stanza["bindVerb"] == "bind"
    assert "bindVerb" not in extender_stanza("http://127.0.0.1:8888/")


def test_the_table_starts_netmarks_binding_and_waiting_for_earlier_bindings() -> None:
    found = policy_spec("netmarks").kubernetes
    assert found is not None
    argv = found.host_command
    assert "--bind" in argv
    assert float(argv[argv.index("--await-binds") + 1]) > 0
