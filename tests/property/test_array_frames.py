"""A batching client's pending messages leave as the writer task would join them: the fast
path of `_array_frames` (one array frame) gives the same bytes as the general one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat_web.ws.connection import MAX_BATCH_CHARS, _array_frames, _arrays
from chat_web.ws.direct import text_frame

_message = st.one_of(
    st.text(min_size=1, max_size=40).map(lambda t: '{"m":' + repr(t) + "}"),
    st.just('[{"id":1},{"id":2}]'),  # a batch's answer: never nested
    st.integers(1, 3).map(lambda n: '"' + "x" * (n * MAX_BATCH_CHARS // 3) + '"'),  # large
)


@given(st.lists(_message, min_size=1, max_size=300))
def test_the_one_array_fast_path_frames_as_the_general_path(texts: list[str]) -> None:
    expected = b"".join(text_frame(f.encode()) for f in _arrays(list(texts)))
    assert _array_frames(list(texts)) == expected
