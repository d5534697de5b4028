"""The shared PromQL client: URLs, answers and the errors of both."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from settlers import promql


def _free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_query_url_carries_the_evaluation_time() -> None:
    url = promql.query_url("http://prom:9090/", "up", 12.5)
    assert url == "http://prom:9090/api/v1/query?query=up&time=12.500"
    assert promql.query_url("http://prom:9090", "up") == "http://prom:9090/api/v1/query?query=up"


def test_answers_are_parsed_and_refusals_named() -> None:
    vector = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "a"}, "value": [1.0, "3"]}]}}
    assert promql.parse_vector(vector) == [({"job": "a"}, 3.0)]
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "m"}, "values": [[2, "5"], [1, "4"], [3, "NaN"]]}]}}
    assert promql.parse_matrix(matrix) == [promql.Series({"__name__": "m"}, ((1, 4), (2, 5)))]
    assert promql.parse_scalar({"status": "success", "data": {"result": [1, "7.5"]}},
                               "time()") == 7.5
    with pytest.raises(promql.PrometheusError, match="refused an instant query: bad"):
        promql.vector_result({"status": "error", "error": "bad"})
    with pytest.raises(promql.PrometheusError, match="expected an instant vector, got 'matrix'"):
        promql.parse_vector(matrix)


def test_an_unreachable_prometheus_is_named() -> None:
    url = _free_url()
    with pytest.raises(promql.PrometheusError, match=f"{url}: cannot query Prometheus"):
        promql.http_query(url, timeout_s=2)("up", None)


async def test_an_unreachable_prometheus_is_named_async() -> None:
    url = _free_url()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(promql.PrometheusError, match=f"{url}: cannot query Prometheus"):
            await promql.query_async(session, url, "up")
