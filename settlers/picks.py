"""Which items to order from an economy nobody chose items for: picked from its graph.

The paper's items (flour, boat, bread, coal, ...) only exist in the Settlers economy.
For any other economy the harness orders a few items that stand for the graph's
shapes, chosen by :func:`representative_items`:

1. **deepest** — the item with the longest supply chain (most hops down to a raw
   item); ties go to the larger dependency closure, then to the economy's order.
2. **simple chain** — the deepest item (with at least one input) whose dependency
   closure is a single path: every item in it has at most one input. Ties go to the
   economy's order.
3. **shared supply** — among the items whose closure has a *shared input* (an item
   that two items of the same closure consume, so it is reached along two paths), the
   one with the smallest closure: the smallest diamond in the graph. Ties go to more
   shared inputs, then to the economy's order. An item already picked is skipped when
   another qualifies.

An item that fills several roles is listed once, with all its roles; a role no item
fills (no shared input anywhere, or every item is raw) is left out. The result is in
the economy's (topological) order and depends on nothing but the graph. On the
Settlers economy it gives boat, coal and tools (the paper's ``--quick`` items are
kept there; see ``results.config``).
"""

from __future__ import annotations

from dataclasses import dataclass

from settlers.economy import Economy

__all__ = [
    "ITEM_CLASSES",
    "SHARED_SUPPLY_CHAIN",
    "SIMPLE_CHAIN",
    "ItemPick",
    "depths",
    "item_class",
    "item_classes",
    "representative_items",
    "same_graph",
    "shared_inputs",
]

DEEPEST = "deepest"
SIMPLE_CHAIN = "simple chain"
SHARED_SUPPLY = "shared supply"
# The two item classes the paper's figures are split by (see item_class).
SHARED_SUPPLY_CHAIN = "shared supply chain"
ITEM_CLASSES = (SIMPLE_CHAIN, SHARED_SUPPLY_CHAIN)


@dataclass(frozen=True)
class ItemPick:
    """One chosen item, the roles it fills and, per role, why in numbers."""

    item: str
    roles: tuple[str, ...]
    why: tuple[str, ...]

    def describe(self) -> str:
        """``"sword (deepest: 5 hops to a raw item)"``."""
        return f"{self.item} ({'; '.join(self.why)})"


def depths(economy: Economy) -> dict[str, int]:
    """Hops from each item down to a raw item along its longest supply chain (raw: 0)."""
    depth: dict[str, int] = {}
    for item in economy:  # topological order: inputs come first
        depth[item.name] = 1 + max((depth[s] for s in item.inputs), default=-1)
    return depth


def shared_inputs(economy: Economy, name: str) -> list[str]:
    """Items in ``name``'s closure that two or more items of that closure consume."""
    closure = economy.closure(name)
    members = set(closure)
    consumed: dict[str, int] = {}
    for n in closure:
        for src in economy[n].inputs:
            if src in members:
                consumed[src] = consumed.get(src, 0) + 1
    return [n for n in closure if consumed.get(n, 0) >= 2]


def _is_chain(economy: Economy, name: str) -> bool:
    return all(len(economy[n].inputs) <= 1 for n in economy.closure(name))


def item_class(economy: Economy, name: str) -> str:
    """``"simple chain"`` or ``"shared supply chain"``: the paper's simple and complex items.

    A *simple chain* is an item whose dependency closure is one path: every item in it
    has at most one input, so an order travels down a line of services and every
    service is asked once (flour <- grain, boat <- board <- log <- tree; a raw item is a
    chain of one). Every other item is a *shared supply chain*: its supply branches,
    so services are asked in parallel and, where two branches meet (``shared_inputs``:
    grain for coal, via flour and pig), a service is reached along two paths. Bread
    (flour and water) branches without such a diamond and is complex here, as in the
    paper's split (simple: flour, log, board, boat; see ../shared/DESIGN.md). The class
    depends on the graph alone, so it is defined for any valid economy.
    """
    return SIMPLE_CHAIN if _is_chain(economy, name) else SHARED_SUPPLY_CHAIN


def item_classes(economy: Economy, names: list[str] | None = None) -> dict[str, str]:
    """Item -> class (:func:`item_class`) for ``names`` (default: every item)."""
    return {n: item_class(economy, n) for n in (economy.names if names is None else names)}


def representative_items(economy: Economy) -> list[ItemPick]:
    """The deepest item, the deepest simple chain and the smallest shared supply."""
    order = {n: i for i, n in enumerate(economy.names)}
    depth = depths(economy)
    size = {n: len(economy.closure(n)) for n in economy.names}
    roles: dict[str, list[tuple[str, str]]] = {}

    def add(name: str, role: str, why: str) -> None:
        roles.setdefault(name, []).append((role, why))

    deepest = min(economy.names, key=lambda n: (-depth[n], -size[n], order[n]))
    if depth[deepest] == 0:
        add(deepest, DEEPEST, "every item is raw: orders reach one service")
    else:
        add(deepest, DEEPEST, f"{DEEPEST}: {depth[deepest]} hops to a raw item, "
                              f"{size[deepest]} services")

    chains = [n for n in economy.names if depth[n] > 0 and _is_chain(economy, n)]
    if chains:
        chain = min(chains, key=lambda n: (-depth[n], order[n]))
        add(chain, SIMPLE_CHAIN, f"{SIMPLE_CHAIN}: {' <- '.join(_path(economy, chain))}")

    shared = {n: shared_inputs(economy, n) for n in economy.names}
    candidates = [n for n in economy.names if shared[n]]
    fresh = [n for n in candidates if n not in roles] or candidates
    if fresh:
        pick = min(fresh, key=lambda n: (size[n], -len(shared[n]), order[n]))
        add(pick, SHARED_SUPPLY, f"{SHARED_SUPPLY}: {', '.join(shared[pick])} reached along "
                                 f"two paths, {size[pick]} services")

    return [
        ItemPick(item=n, roles=tuple(r for r, _ in roles[n]), why=tuple(w for _, w in roles[n]))
        for n in economy.names if n in roles
    ]


def _path(economy: Economy, name: str) -> list[str]:
    path = [name]
    while economy[path[-1]].inputs:
        path.append(next(iter(economy[path[-1]].inputs)))
    return path


def same_graph(a: Economy, b: Economy) -> bool:
    """Whether two economies have the same items consuming the same inputs."""
    return {i.name: dict(i.inputs) for i in a} == {i.name: dict(i.inputs) for i in b}
