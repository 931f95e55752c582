"""The JSON codec's direct C calls answer exactly what Python's json classes answer (daemons/jsonrpc.py).

``decode_body`` calls the decoder's C scanner itself and ``dumps`` a C encoder built once, skipping the Python
layers of ``json.JSONDecoder.decode`` and ``json.JSONEncoder.encode``: these tests hold them to those classes,
configured as the daemon configures them, over generated bodies and values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemons import jsonrpc
from daemons.jsonrpc import RPCError

REFERENCE_DECODER = json.JSONDecoder(parse_constant=jsonrpc._refuse_constant, parse_float=jsonrpc._finite_float)
REFERENCE_ENCODERS = {
    allow_nan: json.JSONEncoder(default=jsonrpc.json_default, separators=(",", ":"), allow_nan=allow_nan)
    for allow_nan in (True, False)
}

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
encodable = st.recursive(
    scalars | st.decimals(allow_nan=False) | st.binary(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
)
whitespace = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0", max_size=3)
noise = st.sampled_from(["", "x", ",", "}", "]", "1", "NaN", "Infinity", "-Infinity", "1e400", "\x00", "\ufeff"])


def reference_decode(body: bytes) -> Any:
    try:
        return REFERENCE_DECODER.decode(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return RPCError


def fast_decode(body: bytes) -> Any:
    try:
        return jsonrpc.decode_body(body)
    except RPCError:
        return RPCError


@settings(max_examples=400, deadline=None)
@given(json_values, whitespace, whitespace, noise, noise)
def test_decode_body_answers_what_json_decoder_decode_does(value, before, after, prefix, suffix) -> None:
    text = json.dumps(value)
    for body in (text, before + text + after, prefix + text, text + suffix, before + text + after + suffix):
        encoded = body.encode("utf-8")
        assert repr(fast_decode(encoded)) == repr(reference_decode(encoded)), body


@pytest.mark.parametrize(
    "body", [b"", b" ", b"\n\t", b"{}", b" {} ", b"{} {}", b"[1,]", b'"\\ud800"', b"\xff", b"[" * 100_000]
)
def test_decode_body_edge_cases(body: bytes) -> None:
    assert repr(fast_decode(body)) == repr(reference_decode(body))


@settings(max_examples=400, deadline=None)
@given(encodable, st.booleans())
def test_dumps_answers_what_json_encoder_encode_does(value, allow_nan) -> None:
    try:
        expected: Any = REFERENCE_ENCODERS[allow_nan].encode(value)
    except ValueError as exc:
        expected = ValueError(str(exc))
    try:
        got: Any = jsonrpc.dumps(value, allow_nan=allow_nan)
    except ValueError as exc:
        got = ValueError(str(exc))
    assert repr(got) == repr(expected)


def test_dumps_of_a_deep_value() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):  # as json's encoder: an answer this deep becomes an internal error
        jsonrpc.dumps(deep)
