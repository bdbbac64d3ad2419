"""``mesdash lineage LOT_NAME… [--forward] [--json]``: a genealogy in the terminal."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from mesdash.core.db import get_warehouse
from mesdash.core.db.warehouse import Warehouse
from mesdash.core.resilience.problem import jsonable_bytes
from mesdash.core.validation import normalize_ids
from mesdash.lineage.model import STRUCTURAL
from mesdash.lineage.service import LineageEngine

STYLE = {"WAFER": "magenta", "GA": "green", "GC": "cyan", "GD": "yellow", "LOT": "white"}


def run(warehouse: Warehouse, names: Sequence[str], forward: bool) -> dict[str, Any]:
    """Names resolved to container ids (an unknown name maps to []), then the genealogy of
    every id found."""
    engine = LineageEngine(warehouse)
    wanted = normalize_ids(names)
    found = engine.ids_by_name(wanted)
    resolved = {name: found.get(name, []) for name in wanted}
    ids = [cid for cids in resolved.values() for cid in cids]
    result = engine.resolve(ids, "forward" if forward else "backward")
    return {"names": resolved, "result": result}


def _label(node: Mapping[str, Any], serials: Sequence[str] = ()) -> str:
    kind = node["node_type"]
    text = f"[bold]{escape(node['container_name'])}[/] [{STYLE.get(kind, 'dim')}]{kind}[/]"
    if node["container_id"] != node["container_name"]:
        text += f" [dim]{escape(node['container_id'])}[/]"
    if serials:
        text += f" → serials {escape(', '.join(serials))}"
    return text


def build_tree(seed: str, result: Mapping[str, Any]) -> Tree:
    """The seed's closure as a tree: parents (backward) or children (forward) under each
    node, a node reached twice expanded once; wafer lots and GD originals as leaves."""
    forward = result["direction"] == "forward"
    members = {seed, *result["descendants" if forward else "ancestors"].get(seed, [])}
    nexts: dict[str, list[tuple[str, str]]] = {}
    for edge in result["edges"]:
        near, far = edge["from_cid"], edge["to_cid"]
        if not forward:
            near, far = far, near
        structural = edge["edge_type"] in STRUCTURAL
        if near in members and (far in members or not structural):
            nexts.setdefault(near, []).append((far, edge["edge_type"]))
    serials = result.get("leaf_serials", {})
    nodes = result["nodes"]
    root = Tree(_label(nodes[seed], serials.get(seed, ())))
    shown = {seed}
    queue = deque([(root, seed)])  # breadth first: a node is expanded where it is nearest
    while queue:
        branch, cid = queue.popleft()
        for nxt, kind in sorted(nexts.get(cid, ()), key=lambda e: (e[1] not in STRUCTURAL, e)):
            name = escape(nodes[nxt]["container_name"])
            if kind not in STRUCTURAL:
                branch.add(f"[dim]{kind}:[/] {_label(nodes[nxt])}")
            elif nxt in shown:
                branch.add(f"[dim]{kind}: {name} (shown elsewhere)[/]")
            else:
                shown.add(nxt)
                child = branch.add(f"[dim]{kind}:[/] {_label(nodes[nxt], serials.get(nxt, ()))}")
                queue.append((child, nxt))
    return root


def render(console: Console, payload: Mapping[str, Any]) -> None:
    result = payload["result"]
    for name, cids in payload["names"].items():
        if not cids:
            console.print(f"[yellow]{escape(name)}: no such lot[/]")
    for seed in result["descendants" if result["direction"] == "forward" else "ancestors"]:
        if seed in result["nodes"]:
            console.print(build_tree(seed, result))
    diag = result["diagnostics"]
    missing = diag.get("missing_parents") or diag.get("missing_children") or []
    notes = [
        f"{len(diag['cycles'])} cycle(s)" if diag["cycles"] else "",
        f"{len(missing)} missing container(s)" if missing else "",
        f"depth cap ({diag['max_depth']}) reached for {len(diag['depth_capped'])} lot(s)"
        if diag["depth_capped"]
        else "",
    ]
    if any(notes):
        console.print("[yellow]" + "; ".join(n for n in notes if n) + "[/]")


def lineage(
    lot_names: Annotated[list[str], typer.Argument(help="lot names (CONTAINERNAME)")],
    forward: Annotated[
        bool, typer.Option("--forward", help="where the lots went (default: where they came from)")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Genealogy of lots by name: backward (default) or --forward."""
    payload = run(get_warehouse(), lot_names, forward)
    if json_out:
        typer.echo(jsonable_bytes(payload).decode())
    else:
        render(Console(), payload)
    if not any(payload["names"].values()):
        raise typer.Exit(1)
