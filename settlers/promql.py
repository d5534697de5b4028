"""The one client of Prometheus' HTTP query API, and the parsers of its answers.

NetMARKS' traffic source (``schedulers.promtraffic``; blocking for the CLI,
asynchronous in the extender) and the kubernetes backend's byte meter
(``harness.backends.kubernetes.meshbytes``) both ask Prometheus instant queries
(``/api/v1/query``, range-vector selectors included). It sits here, the lowest layer
both stand on, so there is one place that knows the URL, the ``time=`` parameter and
what a failed answer looks like.

Fetching and parsing are separate on purpose: a fetch returns the decoded JSON
document (Prometheus' 400/422/503 answers carry a JSON error, returned as is), and
the parsers raise :class:`PrometheusError` for an answer that is an error or not of
the expected type. Tests replay recorded documents through the parsers alone.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = [
    "PrometheusError",
    "Query",
    "Series",
    "http_query",
    "parse_matrix",
    "parse_scalar",
    "parse_vector",
    "query_async",
    "query_sync",
    "query_url",
    "vector_result",
]

# (promql, evaluation time in unix seconds or None for "now") -> the decoded answer
Query = Callable[[str, float | None], Any]


class PrometheusError(RuntimeError):
    """Prometheus refused a query or could not be reached."""


def query_url(base_url: str, promql: str, at: float | None = None) -> str:
    """The instant-query URL of ``promql`` evaluated at ``at`` (None: Prometheus' now)."""
    params = {"query": promql} | ({} if at is None else {"time": f"{at:.3f}"})
    return base_url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode(params)


def query_sync(base_url: str, promql: str, at: float | None = None, *,
               timeout_s: float = 10.0) -> Any:
    """The decoded answer to an instant query (blocking)."""
    try:
        with urllib.request.urlopen(query_url(base_url, promql, at), timeout=timeout_s) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:  # 400/422/503 carry a JSON error
        try:
            return json.load(exc)
        except ValueError:
            raise PrometheusError(f"{base_url}: Prometheus answered HTTP {exc.code} "
                                  f"for {promql!r}") from exc
    except (OSError, ValueError) as exc:
        raise PrometheusError(f"{base_url}: cannot query Prometheus: {exc}") from exc


async def query_async(session: aiohttp.ClientSession, base_url: str, promql: str,
                      at: float | None = None) -> Any:
    """The decoded answer to an instant query, on ``session`` (its timeout applies;
    a TimeoutError passes through for the caller to word)."""
    try:
        async with session.get(query_url(base_url, promql, at)) as resp:
            return await resp.json(content_type=None)
    except (aiohttp.ClientError, ValueError) as exc:
        raise PrometheusError(f"{base_url}: cannot query Prometheus: {exc}") from exc


def http_query(base_url: str, timeout_s: float = 10.0) -> Query:
    """A `Query` against Prometheus' HTTP API at ``base_url``."""

    def query(promql: str, at: float | None) -> Any:
        return query_sync(base_url, promql, at, timeout_s=timeout_s)

    return query


def _data(doc: Any, what: str) -> Any:
    if not isinstance(doc, dict) or doc.get("status") != "success":
        err = doc.get("error") if isinstance(doc, dict) else doc
        raise PrometheusError(f"Prometheus refused {what}: {err}")
    return doc.get("data") or {}


def vector_result(doc: Any) -> list[dict[str, Any]]:
    """The raw series (``{"metric": ..., "value": [t, "v"]}``) of an instant vector."""
    data = _data(doc, "an instant query")
    if data.get("resultType") != "vector":
        raise PrometheusError(f"expected an instant vector, got {data.get('resultType')!r}")
    result = data.get("result")
    return result if isinstance(result, list) else []


def parse_vector(doc: Any) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of an instant-vector answer."""
    return [(dict(item.get("metric") or {}), float(item["value"][1]))
            for item in vector_result(doc)]


def parse_scalar(doc: Any, what: str) -> float:
    """The value of a scalar answer (e.g. ``time()``); ``what`` names it in errors."""
    return float(_data(doc, what)["result"][1])


@dataclass(frozen=True)
class Series:
    """One series: its labels (with ``__name__``) and (unix s, value) samples."""

    labels: Mapping[str, str]
    samples: tuple[tuple[float, float], ...]

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.labels.items()))


def parse_matrix(doc: Any) -> list[Series]:
    """The series of a range-vector answer (``resultType: matrix``), samples ascending;
    NaN and infinite samples are left out."""
    data = _data(doc, "a range query")
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"expected a range vector, got {data.get('resultType')!r}")
    out = []
    for item in data.get("result") or []:
        samples = []
        for ts, value in item.get("values") or []:
            v = float(value)
            if math.isfinite(v):
                samples.append((float(ts), v))
        samples.sort()
        out.append(Series(dict(item.get("metric") or {}), tuple(samples)))
    return out
