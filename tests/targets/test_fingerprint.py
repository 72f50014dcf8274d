"""Model-source fingerprints: a hub id is pinned to the commit of its files in the local Hugging Face cache,
or refused; never keyed by a branch name that moves (two revisions of main would share stored signals)."""

from __future__ import annotations

import pytest

from miakit.errors import MiakitError
from miakit.targets.fingerprint import source_fingerprint

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache under a temporary HF_HOME, offline (no test may reach the network)."""
    import huggingface_hub.constants as constants

    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))  # read at import time by huggingface_hub
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return home / "hub"


def _cached_snapshot(hub, repo: str, commit: str, refs: dict[str, str]) -> None:
    """The layout huggingface_hub writes: refs/<name> holds a commit, snapshots/<commit>/ the files."""
    folder = hub / ("models--" + repo.replace("/", "--"))
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "config.json").write_text("{}")
    (folder / "refs").mkdir()
    for name, target in refs.items():
        (folder / "refs" / name).write_text(target)


def test_hub_id_not_in_the_local_cache_is_an_error_not_an_unpinned_key(hf_cache):
    with pytest.raises(MiakitError, match="Cannot pin model 'miakit-tests/not-cached'") as info:
        source_fingerprint("miakit-tests/not-cached", None)
    assert "--revision" in str(info.value) and "local directory" in str(info.value)


def test_hub_id_is_pinned_to_the_cached_commit_of_its_branch_or_tag(hf_cache):
    other = "f" * 40
    _cached_snapshot(hf_cache, "org/model", COMMIT, {"main": COMMIT, "v2": other})
    (hf_cache / "models--org--model" / "snapshots" / other).mkdir()
    (hf_cache / "models--org--model" / "snapshots" / other / "config.json").write_text("{}")
    assert source_fingerprint("org/model", None) == f"hub:org/model@{COMMIT}"
    assert source_fingerprint("org/model", "main") == f"hub:org/model@{COMMIT}"
    assert source_fingerprint("org/model", "v2") == f"hub:org/model@{other}"
    with pytest.raises(MiakitError, match="Cannot pin"):
        source_fingerprint("org/model", "v3")  # a branch that is not in the cache


def test_a_full_commit_revision_is_its_own_pin(hf_cache):
    assert source_fingerprint("org/uncached", COMMIT) == f"hub:org/uncached@{COMMIT}"


def test_a_name_that_is_no_directory_and_no_hub_id_is_a_user_error(hf_cache, tmp_path):
    with pytest.raises(MiakitError, match=r"no model at .*: the folder does not exist"):
        source_fingerprint(str(tmp_path / "missing" / "model") + "//x", None)
