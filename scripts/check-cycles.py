#!/usr/bin/python3
"""check-cycles.py BUILD_DIR [LIB...] - no two files of one library call each
other in a circle.

For each static library (common, crypto, linkserver, proxy, cli by default)
the file-level call graph is read from its object files: file A uses file B
when a symbol A leaves undefined (`nm -u`) is one B defines (`nm --defined-only`,
global symbols only).  Any strongly connected set of two or more files is a
cycle: those files cannot be read, tested or reused one without the other.
The libraries themselves are checked the same way (common <- crypto <-
linkserver <- proxy <- cli must stay a ladder, not a circle).  Each cycle is
printed with one concrete circle through it and the symbols on its edges; the
exit status is 1 if there is any, 0 otherwise.

Run by `meson test -C build --suite unit` (test `cycles`)."""
import os
import subprocess
import sys

LIBS = ["common", "crypto", "linkserver", "proxy", "cli"]
NM = os.environ.get("NM", "nm")


def nm(path, *flags):
    out = subprocess.run([NM, *flags, path], check=True, capture_output=True,
                         text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if not parts:
            continue
        kind, name = parts[-2], parts[-1]
        if "--defined-only" in flags:
            # Global definitions only (upper-case kinds); static ones are
            # private to the file and cannot be called from another.
            if kind.isupper():
                syms.add(name)
        else:
            syms.add(name)
    return syms


def objects(build, lib):
    pdir = os.path.join(build, lib, "libsealpost_%s.a.p" % lib)
    if not os.path.isdir(pdir):
        sys.exit("check-cycles: no %s (build the project first)" % pdir)
    objs = {}
    for name in sorted(os.listdir(pdir)):
        if name.endswith(".o"):
            label = name[:-2]
            if label.startswith("meson-generated_.._"):
                label = label[len("meson-generated_.._"):]
            objs[label] = os.path.join(pdir, name)
    return objs


def graph(units):
    """units: name -> list of object files.  Edges name -> name -> symbols."""
    owner = {}
    for u, paths in units.items():
        for p in paths:
            for s in nm(p, "--defined-only"):
                owner[s] = u
    edges = {u: {} for u in units}
    for u, paths in units.items():
        undefined = set()
        for p in paths:
            undefined |= nm(p, "-u")
        for s in sorted(undefined):
            g = owner.get(s)
            if g is not None and g != u:
                edges[u].setdefault(g, []).append(s)
    return edges


def report(label, edges):
    n = 0
    for comp in sccs(edges):
        n += 1
        path = circle(edges, comp)
        print("%s: cycle among %s" % (label, ", ".join(comp)))
        print("  " + " -> ".join(path))
        for a, b in zip(path, path[1:]):
            print("    %s -> %s: %s" % (a, b, ", ".join(edges[a][b])))
    return n


def sccs(edges):
    """Tarjan's strongly connected components, in a stable order."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
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
            out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def circle(edges, comp):
    """One shortest circle through the component's first file."""
    start = comp[0]
    members = set(comp)
    prev = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                path.reverse()
                return path + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return [start]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    libs = sys.argv[2:] or LIBS
    found = 0
    per_lib = {}
    for lib in libs:
        objs = objects(build, lib)
        per_lib[lib] = list(objs.values())
        found += report(lib + "/", graph({f: [p] for f, p in objs.items()}))
    found += report("libraries", graph(per_lib))
    if found:
        print("check-cycles: %d cycle(s)" % found)
        return 1
    print("check-cycles: no cycles in %s" % ", ".join(libs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
