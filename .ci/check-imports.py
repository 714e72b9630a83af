#!/usr/bin/env python3
"""Checks the import graph against the layers in Package.swift.

Every Swift file under Sources/<Target>/ may import only
  - the targets and products its target lists as dependencies in Package.swift, and
  - the toolchain's own modules (Foundation, Glibc, Dispatch, Testing, ...);
a test target may also import what those dependencies depend on (the layers it tests rest on).
And every target may depend only on targets declared before it in Package.swift: the
manifest lists the layers lowest first, so this is the rule "each layer imports only the
layers below it". Exits 1 and names each offending file and import.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLCHAIN = {"Foundation", "FoundationEssentials", "Glibc", "Musl", "Darwin", "Dispatch", "Testing", "XCTest",
             "Synchronization", "_Concurrency", "Swift"}

def parse_manifest(text):
    targets = []  # (name, kind, deps) in declaration order
    for m in re.finditer(r"\.(target|executableTarget|testTarget|systemLibrary)\(\s*name:\s*\"(\w+)\"", text):
        kind, name = m.group(1), m.group(2)
        # The target's argument list: up to the matching closing parenthesis.
        depth, i = 0, m.start()
        while True:
            c = text[i]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        body = text[m.start():i]
        deps = set()
        d = re.search(r"dependencies:\s*\[(.*?)\]\s*(,|\)|$)", body, re.S)
        if d:
            inner = d.group(1)
            deps |= set(re.findall(r"\.product\(\s*name:\s*\"(\w+)\"", inner))
            inner = re.sub(r"\.product\([^)]*\)", "", inner)
            deps |= set(re.findall(r"\"(\w+)\"", inner))
        targets.append((name, kind, deps))
    return targets

def main():
    manifest = (ROOT / "Package.swift").read_text()
    targets = parse_manifest(manifest)
    order = {name: i for i, (name, _, _) in enumerate(targets)}
    declared = {name: deps for name, _, deps in targets}

    def closure(deps):
        seen, stack = set(), list(deps)
        while stack:
            d = stack.pop()
            if d not in seen:
                seen.add(d)
                stack.extend(declared.get(d, ()))
        return seen
    problems = []
    for name, kind, deps in targets:
        for dep in deps:
            if dep in order and order[dep] >= order[name] and kind != "testTarget":
                problems.append(f"Package.swift: {name} depends on {dep}, which is not a lower layer")
        folder = ROOT / ("Tests" if kind == "testTarget" else "Sources") / name
        if kind == "systemLibrary" or not folder.is_dir():
            continue
        allowed = (closure(deps) if kind == "testTarget" else deps) | TOOLCHAIN
        for path in sorted(folder.rglob("*.swift")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                m = re.match(r"(?:@testable\s+|@_implementationOnly\s+|(?:public|internal|package)\s+)?import\s+(?:(?:struct|class|enum|func|protocol|typealias|var|let)\s+)?(\w+)", line)
                if m and m.group(1) not in allowed:
                    problems.append(f"{path.relative_to(ROOT)}:{n}: imports {m.group(1)}, "
                                    f"which {name} does not list as a dependency in Package.swift")
    for p in problems:
        print(p)
    checked = sum(1 for name, kind, _ in targets if kind != "systemLibrary")
    if problems:
        print(f"import graph: {len(problems)} problem(s) in {checked} targets")
        return 1
    print(f"import graph: {checked} targets follow the layers in Package.swift")
    return 0

if __name__ == "__main__":
    sys.exit(main())
