"""Range queries posted through the client's session, answers decoded straight into numbers."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from prometheus_api_client import PrometheusApiClientException

from ftmoe.operator.node_metrics import PrometheusSource, fill, too_many_samples
from ftmoe.operator.policy import PrometheusSpec
from ftmoe.operator.prometheus_range import Series, decode


def answer(result: list[dict[str, Any]]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()


def test_an_answer_decodes_into_float_pairs() -> None:
    got = decode(answer([{"metric": {"node": "a"}, "values": [[100, "0.25"], [110.5, "NaN"], [120, "-Inf"]]}]))
    assert len(got) == 1 and got[0].metric == {"node": "a"}
    assert got[0].values[0] == (100.0, 0.25) and got[0].values[1][0] == 110.5
    assert np.isnan(got[0].values[1][1]) and got[0].values[2][1] == -np.inf


def test_an_answer_that_is_not_all_numbers_is_read_sample_by_sample() -> None:
    body = answer(
        [
            {"metric": {"node": "a"}, "values": [[0, "1.5"], [5, "+Inf"], [10, ""]]},  # msgspec does not parse "+Inf"
            {"metric": {"node": "b"}, "values": [[0, "2"], [5, "3"], [10], None]},
        ]
    )
    series = decode(body)
    assert [s.metric["node"] for s in series] == ["a", "b"]
    out = np.full((3, 2), np.nan)
    assert fill(out, series, {"a": 0, "b": 1}, np.array([0.0, 5.0, 10.0]), 5.0, "node")
    assert out[0, 0] == 1.5 and np.isnan(out[1:, 0]).all()  # +Inf and "" are gaps
    assert list(out[:2, 1]) == [2.0, 3.0] and np.isnan(out[2, 1])  # the malformed samples dropped, the rest kept


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"status":"success","data":[1]}', b'{"data":{"result":{"a":1}}}'])
def test_an_answer_that_is_not_a_range_querys_is_a_clear_query_error(body: bytes) -> None:
    with pytest.raises(PrometheusApiClientException, match="the answer is not"):
        decode(body)


class FakePrometheus(BaseHTTPRequestHandler):
    """query_range as Prometheus answers it; "refuse" in a query gets the sample-limit 422."""

    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.seen.append({"path": self.path, "form": form, "auth": self.headers.get("Authorization")})
        if "refuse" in form["query"][0]:
            body, code = b'{"status":"error","errorType":"execution","error":"query processing would load too many samples"}', 422
        else:
            start, end, step = float(form["start"][0]), float(form["end"][0]), float(form["step"][0].rstrip("s"))
            ts = np.arange(start, end + step / 2, step)
            body, code = answer([{"metric": {"node": f"n{i}"}, "values": [[t, str(i + t / 1000)] for t in ts]} for i in range(3)]), 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def prometheus() -> Iterator[str]:
    FakePrometheus.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_reader_posts_the_query_in_the_body_with_the_token_and_fills_the_window(prometheus: str) -> None:
    src = PrometheusSource(PrometheusSpec(url=prometheus, queries={"memory_used_fraction": "mem{{node}}"}), token="s3cret")
    w = src.fetch(["n0", "n1", "n2"], ["memory_used_fraction"], 1000.2, 10.0, 3, 20.0)
    assert w.error is None and w.complete.all()
    np.testing.assert_allclose(w.values[:, :, 0], [[i + t / 1000 for i in range(3)] for t in (980.0, 990.0, 1000.0)])
    seen = FakePrometheus.seen[0]
    assert seen["path"] == "/api/v1/query_range" and seen["auth"] == "Bearer s3cret"
    assert seen["form"]["query"] == ['mem{node=~"n0|n1|n2"}'] and seen["form"]["start"] == ["980"]


def test_a_refused_query_raises_the_clients_exception_with_the_status(prometheus: str) -> None:
    src = PrometheusSource(PrometheusSpec(url=prometheus))
    with pytest.raises(PrometheusApiClientException) as err:
        src.client.query_range("refuse", 0.0, 10.0, "5s")
    assert "HTTP Status Code 422" in str(err.value) and too_many_samples(err.value)
    assert isinstance(src.client.query_range("up", 0.0, 10.0, "5s")[0], Series)
