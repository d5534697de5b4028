"""Show an economy: a rich tree for the terminal and a layered picture (PNG/SVG)."""

from __future__ import annotations

from pathlib import Path

from rich.tree import Tree

from settlers.economy import Economy

__all__ = ["draw_economy", "economy_tree"]


def economy_tree(economy: Economy) -> Tree:
    """Every top-level product (consumed by nobody) as a root, its inputs below it.

    A shared supply chain is expanded the first time and then marked "(see above)",
    so the tree stays readable; a quantity other than 1 is the number of units
    consumed per unit of the parent.
    """
    root = Tree(f"[bold]{economy.name}[/bold]: {len(economy)} items"
                + (f" - {economy.description}" if economy.description else ""))
    shown: set[str] = set()
    for item in economy:
        if not economy.consumers(item.name):
            _add(root, economy, item.name, 1, shown)
    return root


def _add(parent: Tree, economy: Economy, name: str, quantity: int, shown: set[str]) -> None:
    item = economy[name]
    label = f"[bold]{name}[/bold]" if item.inputs else f"{name} [dim](raw)[/dim]"
    if quantity != 1:
        label = f"{quantity} x {label}"
    extras = []
    if item.work_ms:
        extras.append(f"work {item.work_ms:g} ms")
    if item.replicas != 1:
        extras.append(f"{item.replicas} replicas")
    if extras:
        label += f" [dim]({', '.join(extras)})[/dim]"
    if item.inputs and name in shown:
        parent.add(f"{label} [dim](see above)[/dim]")
        return
    shown.add(name)
    node = parent.add(label)
    for src, q in item.inputs.items():
        _add(node, economy, src, q, shown)


def draw_economy(economy: Economy, out: Path) -> None:
    """Write the dependency graph to ``out`` (format from its suffix: .png, .svg, .pdf).

    Layered by depth: raw items at the bottom, each item one layer above its deepest
    input, arrows from input to consumer labelled with the quantity when it is not 1.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: no display needed to write a file
    import matplotlib.pyplot as plt
    import networkx as nx

    graph = nx.DiGraph()
    depth: dict[str, int] = {}
    for item in economy:  # topological order: inputs come first
        depth[item.name] = 1 + max((depth[s] for s in item.inputs), default=-1)
        graph.add_node(item.name, layer=depth[item.name])
        for src, q in item.inputs.items():
            graph.add_edge(src, item.name, quantity=q)
    pos = _layered_positions(economy, depth)
    width = max(6.0, 1.3 * max(list(depth.values()).count(d) for d in set(depth.values())))
    fig, ax = plt.subplots(figsize=(width, 1.6 * (max(depth.values()) + 1) + 1))
    colors = ["#9ecae1" if economy[n].is_raw else "#fdae6b" for n in graph.nodes]
    nx.draw_networkx(graph, pos, ax=ax, node_color=colors, node_size=1400, font_size=8,
                     arrows=True, arrowsize=12, edge_color="#777777")
    labels = {(a, b): str(q) for a, b, q in graph.edges(data="quantity") if q != 1}
    if labels:
        nx.draw_networkx_edge_labels(graph, pos, edge_labels=labels, ax=ax, font_size=7)
    ax.set_title(f"economy {economy.name}: {len(economy)} items (blue: raw)")
    ax.axis("off")
    fig.tight_layout()
    try:
        fig.savefig(out)
    finally:
        plt.close(fig)


def _layered_positions(economy: Economy, depth: dict[str, int]) -> dict[str, tuple[float, float]]:
    """x within a layer by the mean x of the item's inputs (the barycenter heuristic),
    which keeps a supply chain roughly vertical and cuts most edge crossings."""
    layers: dict[int, list[str]] = {}
    for name, d in depth.items():
        layers.setdefault(d, []).append(name)
    x: dict[str, float] = {}
    for d in sorted(layers):
        names = layers[d]
        if d > 0:
            names.sort(key=lambda n: sum(x[s] for s in economy[n].inputs)
                       / len(economy[n].inputs))
        for i, name in enumerate(names):
            x[name] = i - (len(names) - 1) / 2
    return {name: (x[name], float(depth[name])) for name in depth}
