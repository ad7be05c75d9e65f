"""YAML for people (module_utils/yamlout.py): scripts as literal blocks, order kept, streams read whole."""
import io
import json

import yaml

from ansible_collections.llmd.wide_ep.plugins.module_utils import yamlout


def test_multiline_strings_are_literal_blocks_and_keys_keep_their_order():
    text = yamlout.dump({"z": 1, "args": ["set -e\nexec vllm serve m\n"], "a": "one line"})
    assert text.splitlines()[0] == "z: 1"
    assert "- |\n  set -e\n  exec vllm serve m\n" in text
    assert "a: one line" in text
    assert yamlout.safe_load(text) == {"z": 1, "args": ["set -e\nexec vllm serve m\n"], "a": "one line"}


def test_load_all_skips_empty_documents():
    docs = yamlout.load_all(io.StringIO("---\na: 1\n---\n---\nb: 2\n"))
    assert docs == [{"a": 1}, {"b": 2}]


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "a.b"},
       "spec": {"group": "b", "versions": [{"name": "v1", "served": True}]}}


def test_a_crd_file_is_kept_parsed_and_read_again_only_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "crds.yaml"
    src.write_text(yaml.safe_dump_all([CRD, dict(CRD, metadata={"name": "c.b"})]))
    first = yamlout.load_schema_file(str(src))
    assert [d["metadata"]["name"] for d in first] == ["a.b", "c.b"]
    (kept,) = list((tmp_path / "cache/llmd.wide_ep/parsed-yaml").iterdir())
    assert json.loads(kept.read_text()) == first
    assert yamlout.load_schema_file(str(src)) == first
    src.write_text(yaml.safe_dump_all([dict(CRD, metadata={"name": "d.b"})]))   # edited: parsed again
    assert [d["metadata"]["name"] for d in yamlout.load_schema_file(str(src))] == ["d.b"]
    assert len(list((tmp_path / "cache/llmd.wide_ep/parsed-yaml").iterdir())) == 2


def test_a_file_with_anything_but_crds_is_never_written(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "mixed.yaml"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"}, "stringData": {"token": "hf_x"}}
    src.write_text(yaml.safe_dump_all([CRD, secret]))
    assert yamlout.load_schema_file(str(src))[1]["stringData"] == {"token": "hf_x"}
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_still_reads(tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("a file where the folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "crds.yaml"
    src.write_text(yaml.safe_dump(CRD))
    assert yamlout.load_schema_file(str(src)) == [CRD]
