from hypothesis import given
from hypothesis import strategies as st

from miakit.signals.engine import rolling_windows


@given(
    n=st.integers(0, 400),
    first=st.integers(0, 300),
    max_length=st.integers(2, 64),
    stride_fraction=st.floats(0.01, 1.0),
)
def test_every_scored_position_is_predicted_exactly_once_with_enough_context(n, first, max_length, stride_fraction):
    stride = max(1, min(max_length - 1, int(max_length * stride_fraction)))
    windows = rolling_windows(n, first, max_length, stride)
    scored = []
    for start, end, rel_first in windows:
        assert 0 <= start < end <= n
        assert end - start <= max_length
        assert rel_first >= 1  # a scored token always has at least one token of context
        positions = list(range(start + rel_first, end))
        assert positions, "no window scores nothing"
        for pos in positions:
            context = pos - start
            # the first window sees everything before it; later ones at least max_length - stride tokens
            assert context == pos or context >= max_length - stride
        scored.extend(positions)
    assert scored == list(range(max(1, first), n))


def test_short_text_is_one_window():
    assert rolling_windows(10, 1, 64, 32) == [(0, 10, 1)]


def test_stride_one_gives_maximal_context():
    windows = rolling_windows(8, 1, 4, 1)
    assert windows == [(0, 4, 1), (1, 5, 3), (2, 6, 3), (3, 7, 3), (4, 8, 3)]
