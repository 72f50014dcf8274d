from miakit.signals.store import Store


def test_put_and_get_across_connections(tmp_path):
    store = Store(tmp_path)
    store.put_many({"a": b"1", "b": b"22"})
    assert store.get_many(["a", "b", "c"]) == {"a": b"1", "b": b"22"}
    assert len(Store(tmp_path)) == 2


def test_default_location_follows_miakit_cache(cache_dir):
    store = Store()
    assert store.path == cache_dir / "store.sqlite"


def test_many_keys_in_one_lookup(tmp_path):
    store = Store(tmp_path)
    store.put_many({f"k{i}": bytes([i % 256]) for i in range(1500)})
    assert len(store.get_many(f"k{i}" for i in range(1500))) == 1500
