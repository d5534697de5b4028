"""The economy: which item consumes which inputs, and how each item is deployed.

An economy file is YAML::

    name: settlers2
    defaults: {replicas: 1, work_ms: 0, resources: {cpu: 100m, memory: 64Mi}}
    items:
      water: {}
      bread: {inputs: {flour: 1, water: 1}, work_ms: 2, replicas: 2}

``items`` may also be a list of mappings with a ``name`` key. Every problem found
while loading is reported as an :class:`EconomyError` whose message names the item
and says what is wrong, so a user can fix the file without reading this code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from settlers.quantity import parse_cpu, parse_memory

__all__ = [
    "DEFAULT_ECONOMY",
    "Economy",
    "EconomyError",
    "Item",
    "Resources",
    "load_economy",
]

DEFAULT_ECONOMY = "settlers2"

# DNS-1035 label: the item name becomes a Deployment and a Service name.
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


class EconomyError(ValueError):
    """An economy file or mapping is invalid; the message says where and why."""


# The keys each level of an economy file may have, declared as pydantic models with
# extra="forbid" like the experiment config, so both files refuse a misspelt key the
# same way. The values stay `Any` here: they are checked below, where a message can
# name the item and say what a right value looks like.
class _Keys(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _TopKeys(_Keys):
    name: Any = None
    description: Any = None
    defaults: Any = None
    items: Any = None


class _DefaultKeys(_Keys):
    replicas: Any = None
    work_ms: Any = None
    resources: Any = None


class _ItemKeys(_Keys):
    name: Any = None
    inputs: Any = None
    work_ms: Any = None
    replicas: Any = None
    resources: Any = None
    description: Any = None


class _ResourceKeys(_Keys):
    cpu: Any = None
    memory: Any = None


def _unknown_keys(keys: type[_Keys], data: Mapping[Any, Any]) -> list[Any]:
    """The keys of ``data`` that ``keys`` does not declare (sorted), [] when none."""
    try:
        keys.model_validate(data)
    except ValidationError as exc:
        # extra_forbidden: an undeclared name; invalid_key: not a string at all.
        return sorted((err["loc"][0] for err in exc.errors()
                       if err["type"] in ("extra_forbidden", "invalid_key")), key=str)
    return []


def _allowed(keys: type[_Keys]) -> list[str]:
    return sorted(keys.model_fields)


@dataclass(frozen=True)
class Resources:
    """Resource requests of one pod: CPU in millicores, memory in bytes."""

    cpu_m: int = 100
    memory: int = 64 * 2**20

    def as_k8s(self) -> dict[str, str]:
        return {"cpu": f"{self.cpu_m}m", "memory": f"{self.memory // 2**20}Mi"}


@dataclass(frozen=True)
class Item:
    """One producer service: ``inputs`` maps input item -> units consumed per unit."""

    name: str
    inputs: Mapping[str, int] = field(default_factory=dict)
    work_ms: float = 0.0
    replicas: int = 1
    resources: Resources = field(default_factory=Resources)

    @property
    def is_raw(self) -> bool:
        return not self.inputs


@dataclass(frozen=True)
class Economy:
    """A validated, acyclic economy. Items are kept in topological order (raw first)."""

    name: str
    items: Mapping[str, Item]
    description: str = ""

    def __post_init__(self) -> None:
        _validate_graph(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items.values())

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, name: object) -> bool:
        return name in self.items

    def __getitem__(self, name: str) -> Item:
        try:
            return self.items[name]
        except KeyError:
            raise KeyError(f"unknown item {name!r}; known items: {', '.join(self.items)}") from None

    @property
    def names(self) -> list[str]:
        return list(self.items)

    def consumers(self, name: str) -> list[str]:
        """Items that consume ``name`` directly."""
        return [i.name for i in self if name in i.inputs]

    def edges(self) -> list[tuple[str, str, int]]:
        """(consumer, input, quantity) for every dependency."""
        return [(i.name, src, q) for i in self for src, q in i.inputs.items()]

    def closure(self, name: str) -> list[str]:
        """``name`` and every item it transitively depends on, in topological order."""
        need: set[str] = set()
        stack = [name]
        while stack:
            cur = stack.pop()
            if cur in need:
                continue
            need.add(cur)
            stack.extend(self[cur].inputs)
        return [n for n in self.items if n in need]

    def units_needed(self, name: str, count: int = 1) -> dict[str, int]:
        """How many units of each item one order for ``count`` x ``name`` produces."""
        totals: dict[str, int] = {}

        def visit(item: str, units: int) -> None:
            totals[item] = totals.get(item, 0) + units
            for src, q in self[item].inputs.items():
                visit(src, units * q)

        visit(name, count)
        return totals

    def subset(self, names: list[str]) -> Economy:
        """The economy restricted to ``names`` and everything they depend on."""
        keep: set[str] = set()
        for n in names:
            keep.update(self.closure(n))
        return Economy(
            name=f"{self.name}-subset",
            items={n: i for n, i in self.items.items() if n in keep},
            description=f"{self.name} restricted to {', '.join(names)}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "items": {
                i.name: {
                    "inputs": dict(i.inputs),
                    "work_ms": i.work_ms,
                    "replicas": i.replicas,
                    "resources": i.resources.as_k8s(),
                }
                for i in self
            },
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "<economy>") -> Economy:
        return _parse(data, source)


def load_economy(path: str | Path | None = None) -> Economy:
    """Load an economy from a YAML file, or the shipped default when ``path`` is None.

    A bare name (no slash, no ``.yaml``) picks a shipped economy, e.g. ``settlers2``.
    """
    if path is None:
        path = DEFAULT_ECONOMY
    text: str
    source = str(path)
    p = Path(path)
    if not p.exists() and "/" not in source and not source.endswith((".yaml", ".yml")):
        ref = resources.files("settlers") / "data" / f"{source}.yaml"
        if not ref.is_file():
            raise EconomyError(f"{source}: no such economy file or shipped economy")
        text = ref.read_text()
    else:
        try:
            text = p.read_text()
        except OSError as exc:
            raise EconomyError(f"{source}: cannot read economy file: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except _DuplicateKey as exc:
        raise EconomyError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise EconomyError(f"{source}: not valid YAML: {exc}") from exc
    return _parse(data, source)


class _DuplicateKey(yaml.YAMLError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal mapping keys without a word, which would turn
    a duplicated item into a silently dropped one; this loader refuses them."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: let PyYAML report it
                continue
            if first is not None:
                what = "item" if node in self._items_nodes else "key"
                where = f"line {line}" if first == line else f"lines {first} and {line}"
                raise _DuplicateKey(f"{what} {key!r}: defined twice ({where}); "
                                    f"duplicate {what}s are not allowed")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    _items_nodes: list[yaml.Node] = []

    def construct_document(self, node: yaml.Node) -> Any:
        # Remember which mapping is the top-level `items:` one, to say "item" there.
        pairs = node.value if isinstance(node, yaml.MappingNode) else []
        self._items_nodes = [v for k, v in pairs
                             if isinstance(k, yaml.ScalarNode) and k.value == "items"]
        return super().construct_document(node)


def _parse(data: Any, source: str) -> Economy:
    if not isinstance(data, dict):
        raise EconomyError(f"{source}: an economy must be a mapping with an 'items' key")
    unknown = _unknown_keys(_TopKeys, data)
    if unknown:
        raise EconomyError(f"{source}: unknown top-level key(s) {unknown}; "
                           f"allowed: {_allowed(_TopKeys)}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise EconomyError(f"{source}: 'defaults' may only set {_allowed(_DefaultKeys)}")
    unknown = _unknown_keys(_DefaultKeys, defaults)
    if unknown:
        raise EconomyError(f"{source}: 'defaults' may only set {_allowed(_DefaultKeys)}, "
                           f"not {unknown}")
    raw_items = data.get("items")
    entries: list[tuple[str, Any]] = []
    if isinstance(raw_items, dict):
        entries = list(raw_items.items())
    elif isinstance(raw_items, list):
        seen: set[str] = set()
        for n, entry in enumerate(raw_items):
            if not isinstance(entry, dict) or "name" not in entry:
                raise EconomyError(f"{source}: items[{n}] must be a mapping with a 'name'")
            name = entry["name"]
            if name in seen:
                raise EconomyError(f"{source}: item {name!r}: duplicate item")
            seen.add(name)
            entries.append((name, entry))
    else:
        raise EconomyError(f"{source}: 'items' must be a mapping (or a list) of items")
    if not entries:
        raise EconomyError(f"{source}: the economy has no items")
    items: dict[str, Item] = {}
    for name, spec in entries:
        items[str(name)] = _parse_item(name, spec or {}, defaults, source)
    try:
        ordered = _topological(items)
    except EconomyError as exc:
        raise EconomyError(f"{source}: {exc}") from None
    return Economy(
        name=str(data.get("name") or Path(source).stem),
        description=str(data.get("description") or ""),
        items={n: items[n] for n in ordered},
    )


def _parse_item(name: Any, spec: Any, defaults: dict[str, Any], source: str) -> Item:
    where = f"{source}: item {name!r}"
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise EconomyError(f"{where}: the name must be a lowercase DNS label "
                           "(a-z, 0-9, '-', starting with a letter, at most 63 characters)")
    if not isinstance(spec, dict):
        raise EconomyError(f"{where}: must be a mapping")
    unknown = _unknown_keys(_ItemKeys, spec)
    if unknown:
        raise EconomyError(f"{where}: unknown key(s) {unknown}; allowed: {_allowed(_ItemKeys)}")
    inputs_raw = spec.get("inputs") or {}
    if isinstance(inputs_raw, list):  # shorthand: [a, b] means one unit of each
        inputs_raw = dict.fromkeys(inputs_raw, 1)
    if not isinstance(inputs_raw, dict):
        raise EconomyError(f"{where}: 'inputs' must map input item -> quantity")
    inputs: dict[str, int] = {}
    for src, q in inputs_raw.items():
        if isinstance(q, bool) or not isinstance(q, int) or q <= 0:
            raise EconomyError(f"{where}: input {src!r} has quantity {q!r}; "
                               "quantities must be positive integers")
        inputs[str(src)] = q
    work = spec.get("work_ms", defaults.get("work_ms", 0))
    if isinstance(work, bool) or not isinstance(work, int | float) or work < 0:
        raise EconomyError(f"{where}: work_ms must be a number >= 0, got {work!r}")
    replicas = spec.get("replicas", defaults.get("replicas", 1))
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise EconomyError(f"{where}: replicas must be an integer >= 1, got {replicas!r}")
    res_spec = {**(defaults.get("resources") or {}), **(spec.get("resources") or {})}
    unknown = _unknown_keys(_ResourceKeys, res_spec)
    if unknown:
        raise EconomyError(f"{where}: resources may only set {_allowed(_ResourceKeys)}, "
                           f"not {unknown}")
    try:
        res = Resources(
            cpu_m=parse_cpu(res_spec.get("cpu", "100m")),
            memory=parse_memory(res_spec.get("memory", "64Mi")),
        )
    except ValueError as exc:
        raise EconomyError(f"{where}: {exc}") from None
    if res.cpu_m <= 0 or res.memory <= 0:
        raise EconomyError(f"{where}: resource requests must be positive")
    return Item(name=name, inputs=inputs, work_ms=float(work), replicas=replicas, resources=res)


def _topological(items: Mapping[str, Item]) -> list[str]:
    """Kahn's order (stable: file order among ready items); raises on unknown inputs/cycles."""
    for item in items.values():
        for src in item.inputs:
            if src not in items:
                raise EconomyError(f"item {item.name!r}: unknown input {src!r}")
            if src == item.name:
                raise EconomyError(f"item {item.name!r}: consumes itself (cycle)")
    remaining = {n: set(i.inputs) for n, i in items.items()}
    order: list[str] = []
    while remaining:
        ready = [n for n, deps in remaining.items() if not deps]
        if not ready:
            raise EconomyError(f"cycle among items: {' -> '.join(_find_cycle(items, remaining))}")
        for n in ready:
            order.append(n)
            del remaining[n]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _find_cycle(items: Mapping[str, Item], remaining: Mapping[str, set[str]]) -> list[str]:
    start = next(iter(remaining))
    path = [start]
    seen = {start: 0}
    cur = start
    while True:
        cur = next(iter(remaining[cur]))
        if cur in seen:
            return [*path[seen[cur]:], cur]
        seen[cur] = len(path)
        path.append(cur)


def _validate_graph(items: Mapping[str, Item]) -> None:
    for key, item in items.items():
        if key != item.name:
            raise EconomyError(f"item {item.name!r} is stored under {key!r}")
    _topological(items)
