#!/usr/bin/env python3
"""The module graph of each crate under host/ must follow its layers.

Reads every `.rs` file of each crate, finds which of the crate's modules
each one names (`crate::m`, `super::m`, `self::m`, `use m::` of a child
module, and names re-exported at a module's root), and fails when

- a module names a module of a higher layer, or
- two modules name each other (directly or round a longer cycle),

at every level: the crate's top-level modules, then the children of each
module directory. A child naming its parent (`super::Item`) is the usual
shape of a module directory and is not counted.

The layers are written down here, once, bottom first. A module missing from
its crate's layers fails the check, so a new module gets its place on
purpose. Usage: scripts/check-layers.py [--graph | --self-test]
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Bottom first. A module may name modules of its own layer or lower ones
# (never higher), and no cycle may form, within a layer either.
LAYERS = {
    "host": [
        ["bindings", "cost", "disk", "host_limits", "invocation", "keys", "liveness", "unsettled", "typed", "proxy"],
        ["actions"],
        ["manifest", "membership"],
        ["audit", "egress", "error"],
        ["approvals", "scheduler", "retention", "data_dir", "llm"],
        ["sandbox", "telemetry"],
        ["capabilities"],
        ["registry"],
        ["state"],
        ["invoke", "changes"],
        ["host"],
        ["registration", "demo", "loadgen"],
    ],
    "host/store": [
        ["value"],
        ["settings", "archive"],
    ],
    "host/ledger": [
        ["agent", "payer", "cost", "guest_output"],
        ["allocation", "transfer"],
    ],
    "host/policy": [
        ["rules"],
        ["chain"],
    ],
    "host/runtime": [
        ["hostcall", "limiter", "meter", "wait", "cache", "slots", "concurrent"],
        ["engine"],
        ["guest"],
        ["boundary", "io"],
    ],
    "host/sqlite": [
        ["sql", "projection", "schema", "stored_rows"],
        ["group_commit", "hot", "journal", "counters"],
        ["database"],
        ["store"],
        ["plans", "allocation", "rows", "projector"],
        ["usage"],
        ["settlement", "reservation", "retention"],
        ["ledger"],
        ["listing_plans"],
    ],
    "host/postgres": [
        ["scratch"],
        ["connect"],
        ["store", "leases"],
        ["changes"],
        ["ledger"],
        ["economy", "allocations", "counters"],
        ["calls"],
        ["retention"],
        ["backend"],
    ],
    "host/api": [
        ["grammar"],
        ["requests", "replies"],
    ],
    "host/server": [
        ["ratelimit", "request_id", "openapi"],
        ["error"],
        ["json_body", "contract"],
        ["health", "agents", "artifacts", "uploads", "invoke", "ledger", "allocations",
         "policies", "approvals", "tasks", "proxy", "mcp"],
    ],
    "host/cli": [
        ["output", "client"],
        ["exit"],
        ["project"],
        ["commands", "serve", "mcp"],
    ],
}

USE_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_TREE_RE = re.compile(r"\buse\s+(crate|super|self)::\{([^;]*)\};", re.S)
CHILD_USE_RE = re.compile(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?use\s+([a-z_][a-z0-9_]*)::", re.M)
MOD_RE = re.compile(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([a-z]+\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)
REEXPORT_RE = re.compile(r"^\s*pub(?:\([a-z]+\))?\s+use\s+(?:self::)?([a-z_][a-z0-9_]*)::(\{[^;]*\}|[A-Za-z0-9_]+)\s*;", re.M)


def strip_comments(text):
    """`text` with its comments, strings and character literals blanked
    out, so only code is searched for paths."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif (c == "r" or text.startswith("br", i)) and re.match(r"b?r#*\"", text[i:]) and not (
            i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            m = re.match(r"b?r(#*)\"", text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'":
            m = re.match(r"'(?:\\.[^']{0,8}|[^'\\])'", text[i:])
            if m:
                i += m.end()
                out.append("' '")
            else:  # a lifetime or a label
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def modules_of(src):
    """Module path (tuple) -> file, for every file of the crate."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            parts = rel[:-3].split(os.sep)
            if parts == ["lib"] or parts == ["main"]:
                parts = []
            elif parts[-1] == "mod":
                parts = parts[:-1]
            if parts and parts[0] in ("bin",):
                continue
            mods[tuple(parts)] = os.path.join(dirpath, f)
    return mods


def reexports(text):
    """Names a module re-exports from a child: name -> child module."""
    out = {}
    for child, names in REEXPORT_RE.findall(text):
        for n in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", names):
            if n not in ("self", "as"):
                out[n] = child
    return out


def resolve(path, mods, exports):
    """The module (tuple) a path names: the longest module prefix, or the
    child a root re-export points to."""
    path = tuple(path)
    for n in range(len(path), -1, -1):
        if path[:n] in mods:
            base = path[:n]
            rest = path[n:]
            if rest and rest[0] in exports.get(base, {}):
                child = base + (exports[base][rest[0]],)
                if child in mods:  # not a re-export from another crate
                    return child
            return base
    return ()


def edges_of(mods):
    """(from module, to module) for each module that names another."""
    texts = {m: strip_comments(open(f, encoding="utf-8").read()) for m, f in mods.items()}
    exports = {m: reexports(t) for m, t in texts.items()}
    edges = set()
    for m, text in texts.items():
        here = m

        def add(base, segs):
            target = resolve(base + tuple(segs), mods, exports)
            if target != here:
                edges.add((here, target))

        for kind, rest in USE_RE.findall(text):
            segs = [s for s in rest.split("::") if s]
            base = () if kind == "crate" else (here[:-1] if kind == "super" else here)
            add(base, segs)
        for kind, tree in USE_TREE_RE.findall(text):
            base = () if kind == "crate" else (here[:-1] if kind == "super" else here)
            for item in re.split(r",(?![^{]*\})", tree):
                segs = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", item.split("{")[0])
                if segs and segs[0] not in ("self",):
                    add(base, segs[:2])
        children = set(MOD_RE.findall(text))
        for name in CHILD_USE_RE.findall(text):
            if name in children:
                add(here, [name])
    return edges


def level_edges(edges, parent):
    """Edges between the children of `parent`, each end cut to that level."""
    out = set()
    depth = len(parent)
    for a, b in edges:
        if a[:depth] != parent or b[:depth] != parent:
            continue
        if len(a) <= depth or len(b) <= depth:
            continue  # naming the parent, or the parent naming its children
        ca, cb = a[depth], b[depth]
        if ca != cb:
            out.add((ca, cb))
    return out


def cycles(nodes, edges):
    """Strongly connected components of more than one node (Tarjan)."""
    graph = {n: sorted(b for a, b in edges if a == n) for n in nodes}
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return out


def check_crate(crate, layers, problems, graph_out):
    src = os.path.join(ROOT, crate, "src")
    mods = modules_of(src)
    edges = edges_of(mods)
    parents = sorted({m[:-1] for m in mods if m} | {()}, key=len)
    for parent in parents:
        children = sorted({m[len(parent)] for m in mods if len(m) > len(parent) and m[: len(parent)] == parent})
        if not children:
            continue
        level = level_edges(edges, parent)
        where = crate + ("/" + "/".join(parent) if parent else "")
        if graph_out:
            for a, b in sorted(level):
                print(f"{where}: {a} -> {b}")
        for comp in cycles(children, level):
            ring = [f"{a} -> {b}" for a, b in sorted(level) if a in comp and b in comp]
            problems.append(f"{where}: the modules {', '.join(comp)} name each other in a circle ({'; '.join(ring)})")
        if parent == () and layers is not None:
            rank = {}
            for i, layer in enumerate(layers):
                for m in layer:
                    rank[m] = i
            for m in sorted(set(rank) - set(children)):
                problems.append(f"{where}: module `{m}` is in LAYERS but not in the crate: remove it from scripts/check-layers.py")
            for m in children:
                if m not in rank:
                    problems.append(f"{where}: module `{m}` has no layer: add it to LAYERS in scripts/check-layers.py")
            for a, b in sorted(level):
                if a in rank and b in rank and rank[b] > rank[a]:
                    problems.append(f"{where}: `{a}` (layer {rank[a]}) names `{b}` (layer {rank[b]}), a higher layer")


def self_test():
    """The check finds a cycle and a layer broken in a crate made for it."""
    import tempfile

    global ROOT
    with tempfile.TemporaryDirectory() as root:
        src = os.path.join(root, "host", "demo", "src")
        os.makedirs(os.path.join(src, "deep"))
        files = {
            "lib.rs": "mod a;\nmod b;\nmod c;\nmod deep;\npub use c::Thing;\n",
            "a.rs": "let _q = '\"';\nuse crate::b::B;\n// use crate::c::Nothing;\n",
            "b.rs": "use super::{a::A, deep};\n",
            "c.rs": "pub struct Thing;\n",
            "deep/mod.rs": "mod x;\nmod y;\nuse crate::Thing;\n",
            "deep/x.rs": "use super::y::Y;\nuse super::Z;\n",
            "deep/y.rs": "use super::x::X;\n",
        }
        for name, text in files.items():
            with open(os.path.join(src, name), "w", encoding="utf-8") as f:
                f.write(text)
        ROOT, saved = root, ROOT
        try:
            problems = []
            check_crate("host/demo", [["c"], ["a", "deep"], ["b"]], problems, False)
        finally:
            ROOT = saved
    expected = [
        "host/demo: the modules a, b name each other in a circle (a -> b; b -> a)",
        "host/demo: `a` (layer 1) names `b` (layer 2), a higher layer",
        "host/demo/deep: the modules x, y name each other in a circle (x -> y; y -> x)",
    ]
    for e in expected:
        assert e in problems, f"self-test: expected {e!r} in {problems!r}"
    assert not any("deep` (layer" in p or "names `c`" in p for p in problems), problems
    print("layers: self-test found the cycles and the broken layer it was given")


def main():
    if "--self-test" in sys.argv:
        self_test()
        return
    graph = "--graph" in sys.argv
    problems = []
    crates = ["host"] + sorted(
        "host/" + d for d in os.listdir(os.path.join(ROOT, "host"))
        if os.path.exists(os.path.join(ROOT, "host", d, "Cargo.toml"))
    )
    for crate in crates:
        check_crate(crate, LAYERS.get(crate), problems, graph)
    for p in problems:
        print(f"layers: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"layers: {len(crates)} crates follow their layers, without a cycle")


if __name__ == "__main__":
    main()
