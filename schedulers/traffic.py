"""Traffic between workloads: NetMARKS' F(A,B), from a file, a DataFrame or Prometheus.

``get(a, b)`` is F(A,B) of the paper: the average bytes per second carried by
the calls workload ``a`` makes to workload ``b`` over the window, *both*
directions of those calls (request bytes a->b plus response bytes b->a).
``between(a, b) = get(a, b) + get(b, a)`` is all traffic exchanged by the pair,
which is what co-locating the two saves.

Files are CSV, Parquet or YAML with one row per directed pair::

    source,destination,bytes[,window_s]        # bytes over window_s (default 1 s)

YAML may be a list of such rows or ``{window_s: 60, edges: [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from settlers.economy import Economy

if TYPE_CHECKING:  # numpy and pandas load lazily: the extender starts without them
    import numpy as np
    import pandas as pd

    from schedulers.promtraffic import Interval

__all__ = [
    "PAPER_SIZES",
    "TrafficError",
    "TrafficMatrix",
    "example_traffic_path",
    "traffic_from_economy",
]

# Message sizes of the NetMARKS sweep (16 B .. 1 MiB).
PAPER_SIZES = (16, 256, 4096, 65536, 1048576)
# Approximate fixed bytes of one call: an HTTP request line + headers + JSON body,
# and the response headers (incl. the trace header). Only the ratio to the payload
# matters for placement.
_REQUEST_OVERHEAD = 200
_RESPONSE_OVERHEAD = 200


class TrafficError(ValueError):
    """A traffic matrix source is unreadable or malformed; the message says which and why."""


class TrafficMatrix:
    """Average bytes/s between workloads (directed pairs); empty means "no data".

    ``since`` and ``until`` (unix seconds, None when unknown) are the interval the
    rates average over, e.g. the warm-up for the harness's matrix.
    """

    __slots__ = ("_neighbours", "_rates", "since", "source", "until")

    def __init__(self, rates: Mapping[tuple[str, str], float] | None = None,
                 *, source: str = "", since: float | None = None,
                 until: float | None = None) -> None:
        self._rates: dict[tuple[str, str], float] = {}
        for (a, b), r in (rates or {}).items():
            if r < 0 or r != r:  # NaN check without importing math
                raise TrafficError(f"{source or 'traffic'}: rate {a}->{b} is {r!r}; "
                                   "rates must be >= 0")
            if a == b or r == 0:
                continue  # a workload's traffic with itself never crosses a placement choice
            self._rates[(a, b)] = self._rates.get((a, b), 0.0) + float(r)
        self.source = source
        self.since = since
        self.until = until
        self._neighbours: dict[str, dict[str, float]] = {}
        for (a, b), r in self._rates.items():
            row_a = self._neighbours.setdefault(a, {})
            row_a[b] = row_a.get(b, 0.0) + r
            row_b = self._neighbours.setdefault(b, {})
            row_b[a] = row_b.get(a, 0.0) + r

    # -- reading -----------------------------------------------------------------------
    def get(self, a: str, b: str) -> float:
        """F(a, b): bytes/s of the calls ``a`` makes to ``b`` (request + response)."""
        return self._rates.get((a, b), 0.0)

    def between(self, a: str, b: str) -> float:
        """All bytes/s exchanged by ``a`` and ``b``, both call directions."""
        return self._neighbours.get(a, {}).get(b, 0.0)

    def neighbours(self, workload: str) -> Mapping[str, float]:
        """workload -> ``between(workload, it)`` for every workload it talks to."""
        return self._neighbours.get(workload, {})

    @property
    def workloads(self) -> list[str]:
        return sorted(self._neighbours)

    def total(self) -> float:
        return sum(self._rates.values())

    def __len__(self) -> int:
        return len(self._rates)

    def __bool__(self) -> bool:
        return bool(self._rates)

    def __repr__(self) -> str:
        return f"TrafficMatrix({len(self)} pairs, {self.total():.1f} B/s, source={self.source!r})"

    def dense(self, workloads: Sequence[str]) -> np.ndarray:
        """Symmetric ``between`` matrix over ``workloads`` (float64, zero diagonal)."""
        import numpy as np

        index = {w: i for i, w in enumerate(workloads)}
        m = np.zeros((len(workloads), len(workloads)))
        for (a, b), r in self._rates.items():
            if a in index and b in index:
                m[index[a], index[b]] += r
                m[index[b], index[a]] += r
        return m

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        rows = [(a, b, r) for (a, b), r in sorted(self._rates.items())]
        return pd.DataFrame(rows, columns=["source", "destination", "bytes_per_s"])

    def to_csv(self, path: str | Path) -> None:
        df = self.to_dataframe().rename(columns={"bytes_per_s": "bytes"})
        df["window_s"] = 1
        df.to_csv(path, index=False)

    # -- building ----------------------------------------------------------------------
    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, *, source: str = "<dataframe>",
                       since: float | None = None, until: float | None = None
                       ) -> TrafficMatrix:
        """Rows of source, destination and ``bytes_per_s`` (or ``bytes`` [+ ``window_s``])."""
        import pandas as pd

        missing = {"source", "destination"} - set(df.columns)
        if missing:
            raise TrafficError(f"{source}: missing column(s) {sorted(missing)}; expected "
                               "source, destination, bytes[, window_s] (or bytes_per_s)")
        if "bytes_per_s" in df.columns:
            rate = pd.to_numeric(df["bytes_per_s"], errors="coerce")
        elif "bytes" in df.columns:
            window = (pd.to_numeric(df["window_s"], errors="coerce")
                      if "window_s" in df.columns else pd.Series(1.0, index=df.index))
            if (window <= 0).any() or window.isna().any():
                raise TrafficError(f"{source}: window_s must be a positive number")
            rate = pd.to_numeric(df["bytes"], errors="coerce") / window
        else:
            raise TrafficError(f"{source}: needs a 'bytes' (or 'bytes_per_s') column")
        if rate.isna().any():
            bad = df.index[rate.isna()][0]
            raise TrafficError(f"{source}: row {bad}: bytes is not a number")
        if (rate < 0).any():
            raise TrafficError(f"{source}: bytes must be >= 0")
        rates: dict[tuple[str, str], float] = {}
        for a, b, r in zip(df["source"].astype(str), df["destination"].astype(str), rate,
                           strict=True):
            rates[(a, b)] = rates.get((a, b), 0.0) + float(r)
        return cls(rates, source=source, since=since, until=until)

    @classmethod
    def from_file(cls, path: str | Path) -> TrafficMatrix:
        """Read a CSV, Parquet or YAML traffic file (see the module docstring)."""
        import pandas as pd

        from settlers.tables import read_parquet

        p = Path(path)
        name = str(path)
        if not p.is_file():
            raise TrafficError(f"{name}: no such traffic file")
        suffix = p.suffix.lower()
        try:
            if suffix == ".csv":
                df = pd.read_csv(p)
            elif suffix in (".parquet", ".pq"):
                # No Arrow reader threads: they can abort the exit (settlers.tables).
                df = read_parquet(p)
            elif suffix in (".yaml", ".yml"):
                df = _yaml_frame(yaml.safe_load(p.read_text()), name)
            else:
                raise TrafficError(f"{name}: unknown traffic file type {suffix!r}; "
                                   "use .csv, .parquet or .yaml")
        except TrafficError:
            raise
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise TrafficError(f"{name}: cannot read traffic file: {exc}") from exc
        return cls.from_dataframe(df, source=name)

    @classmethod
    def from_prometheus(cls, url: str, window_s: float | Interval = 300.0, *,
                        timeout_s: float = 2.0, metrics: Literal["auto", "l7", "l4"] = "auto",
                        now: float | None = None, namespace: str | None = None) -> TrafficMatrix:
        """Query the Prometheus HTTP API at ``url`` (blocking; see :mod:`promtraffic`).

        ``window_s``: a sliding window in seconds, or a :class:`promtraffic.Interval`
        (``Interval(since=t0)``: the average since t0, the paper's F); ``namespace``:
        only the calls into that namespace's workloads."""
        from schedulers import promtraffic  # local import: keeps file-only users light

        return promtraffic.fetch_sync(url, window_s, timeout_s=timeout_s, metrics=metrics,
                                      now=now, namespace=namespace)


def _yaml_frame(data: Any, name: str) -> pd.DataFrame:
    import pandas as pd

    window = 1.0
    if isinstance(data, dict):
        window = float(data.get("window_s", 1.0))
        data = data.get("edges")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise TrafficError(f"{name}: YAML traffic must be a list of {{source, destination, "
                           "bytes}} rows or a mapping with an 'edges' list")
    df = pd.DataFrame(data)
    if "window_s" not in df.columns:
        df["window_s"] = window
    return df


def traffic_from_economy(economy: Economy, sizes: Iterable[int] = PAPER_SIZES,
                         orders_per_s: float = 1.0) -> TrafficMatrix:
    """The traffic the order mix "every item, every size, ``orders_per_s`` each" causes.

    One order for ``count`` units of X asks each input of X for its share; every
    call carries a request (fixed overhead) and a response of units x size bytes.
    """
    sizes = list(sizes)
    rates: dict[tuple[str, str], float] = {}
    for top in economy.names:
        for size in sizes:
            _visit(economy, top, 1, size, orders_per_s, rates)
    return TrafficMatrix(rates, source=f"derived from economy {economy.name}")


def _visit(economy: Economy, item: str, units: int, size: int, rate: float,
           rates: dict[tuple[str, str], float]) -> None:
    for src, q in economy[item].inputs.items():
        need = units * q
        call = _REQUEST_OVERHEAD + _RESPONSE_OVERHEAD + need * size
        rates[(item, src)] = rates.get((item, src), 0.0) + call * rate
        _visit(economy, src, need, size, rate, rates)


def example_traffic_path(economy_name: str = "settlers2") -> Path:
    """The shipped example traffic matrix for a shipped economy."""
    ref = resources.files("schedulers") / "data" / f"{economy_name}-traffic.csv"
    return Path(str(ref))
