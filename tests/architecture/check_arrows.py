#!/usr/bin/python3
"""The dependency arrows of docs/architecture.md, checked on the sources.

Each library folder may include only the folders its arrows point to; an
include of anything else of ours fails, with the file, the line and the arrow
it breaks. Relative includes ("../x.hpp") are refused everywhere in the
libraries: they would walk around the check. Standard, Boost and other
system headers are not ours and not checked.

  tests/architecture/check_arrows.py [ROOT]      exit 0: every arrow holds
"""

import os
import re
import sys

# Folder -> the folders of ours it may include (itself included). Checked in
# order; the first folder that contains a file decides, so the most specific
# folder comes first (broker/codec before broker). The bridges are one folder
# per kind, side by side; bridges/ itself holds no code.
LIBS = ["broker/codec", "namespace", "auth", "persistence"]
ENGINE = ["broker", "broker/core", "broker/net", "broker/ops", "broker/hosts"]
BRIDGES = ["bridges/mqtt", "bridges/opcua", "bridges/sparkplug"]
ARROWS = [
    ("broker/codec", ["broker/codec"]),
    ("namespace", ["namespace"]),
    ("persistence", ["persistence"]),
    ("auth", ["auth", "namespace"]),
    ("bridges/mqtt", ["bridges/mqtt", "broker/codec", "namespace"]),
    ("bridges/opcua", ["bridges/opcua"]),
    ("bridges/sparkplug", ["bridges/sparkplug"]),
    # Inside the engine: the core (sessions, router, admission) knows no
    # network, no operations and no hosts; the hosts know only the core.
    # "broker" alone is the files at the top of broker/ (config, main).
    ("broker/core", ["broker/core", "broker"] + LIBS),
    ("broker/hosts", ["broker/hosts", "broker/core", "broker"] + LIBS + BRIDGES),
    ("broker/net", ENGINE + LIBS + BRIDGES),
    ("broker/ops", ENGINE + LIBS + BRIDGES),
    ("broker", ENGINE + LIBS + BRIDGES),
]
OURS = ["broker", "namespace", "persistence", "auth", "bridges"]
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


def owner(rel):
    for folder, allowed in ARROWS:
        if rel.startswith(folder + "/"):
            return folder, allowed
    return None, None


def under(path, folder):
    return path == folder or path.startswith(folder + "/")


def check(root):
    broken = []
    for top in OURS:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in sorted(files):
                if not name.endswith((".hpp", ".cpp", ".h", ".ipp")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                folder, allowed = owner(rel)
                if folder is None:
                    broken.append(f"{rel}: in no folder of the arrows (a library's code lives in one)")
                    continue
                with open(path, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = m.group(1)
                        if target.startswith("../") or "/../" in target:
                            broken.append(f"{rel}:{lineno}: relative include \"{target}\" (name the folder)")
                            continue
                        if not any(under(target, o) for o in OURS):
                            continue  # not ours: the standard library, Boost, ...
                        # A folder's own headers are its own, not a deeper one's:
                        # broker/ may include broker/codec because it is listed;
                        # bridges/mqtt may not include bridges/opcua, nor a path
                        # in no folder of the arrows ("bridges/x.hpp").
                        target_folder, _ = owner(target)
                        if target_folder is None or target_folder not in allowed:
                            broken.append(f"{rel}:{lineno}: {folder} may not include \"{target}\" "
                                          f"({folder} -> {', '.join(allowed)} only)")
    return broken


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    broken = check(root)
    for b in broken:
        print(b)
    if broken:
        print(f"{len(broken)} include(s) break the dependency arrows (docs/architecture.md)")
        return 1
    print("every include follows the dependency arrows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
