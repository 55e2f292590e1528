"""Frames between the server and a session process: what orjson cannot say, json does."""

from __future__ import annotations

import math
import socket

import pytest

from reward_kit.env._wire import FrameError, decode, encode, recv_frame, send_frame


def test_values_orjson_refuses_still_cross() -> None:
    message = {"big": 2**70, "keys": {1: "int key"}, "odd": object}
    body = encode(message)[4:]
    assert decode(body) == {"big": 2**70, "keys": {"1": "int key"}, "odd": repr(object)}
    assert math.isnan(decode(b'{"x": NaN}')["x"])  # what json alone writes


def test_a_frame_crosses_a_socket_and_end_of_file_is_a_frame_error() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, theirs.makefile("rb") as stream:
        send_frame(ours, {"op": "call", "arguments": '{"n": 1}'})
        send_frame(ours, ["second"])
        assert recv_frame(stream) == {"op": "call", "arguments": '{"n": 1}'}
        assert recv_frame(stream) == ["second"]
        ours.sendall(encode(["cut"])[:-2])
        ours.shutdown(socket.SHUT_WR)
        with pytest.raises(FrameError):
            recv_frame(stream)
