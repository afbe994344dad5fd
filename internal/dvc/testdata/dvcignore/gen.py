#!/usr/bin/python3
"""Expected DVC ".dir" hashes of directory trees with .dvcignore files.

Independent of custody's Go code: pattern matching is done by pathspec
(Debian python3-pathspec 0.11, GitWildMatchPattern, the library DVC uses);
the walk, the per-directory merging of .dvcignore files and the listing
hash follow DVC 3.x's dvc/ignore.py, dvc/pathspec_math.py and
dvc_data/hashfile/tree.py as read from their sources (docs/data.md).

Usage: /usr/bin/python3 gen.py > cases.json
"""

import hashlib
import json
import os
import re
import sys
import tempfile

from pathspec.patterns import GitWildMatchPattern
from pathspec.util import normalize_file

DEFAULTS = [".hg/", ".git/", ".git", ".dvc/"]

# Each case: a tree (path -> content; a path ending in "/" is an empty
# directory) and the directory to hash, relative to the tree.
CASES = [
    {
        "name": "root-dvcignore",
        "target": "data",
        "tree": {
            "data/.dvcignore": "# temporary files\n*.tmp\nlogs/\n!keep.tmp\n\n",
            "data/a.csv": "a\n",
            "data/b.tmp": "b\n",
            "data/keep.tmp": "keep\n",
            "data/logs/x.csv": "x\n",
            "data/sub/c.tmp": "c\n",
            "data/sub/d.csv": "d\n",
            "data/sub/logs": "a file named logs is not a directory\n",
        },
    },
    {
        "name": "nested-dvcignore",
        "target": "data",
        "tree": {
            "data/.dvcignore": "*.bak\n",
            "data/top.bak": "1\n",
            "data/only_here.csv": "2\n",
            "data/sub/.dvcignore": "/only_here.csv\n!important.bak\ndeep/\n",
            "data/sub/only_here.csv": "3\n",
            "data/sub/x/only_here.csv": "4\n",
            "data/sub/important.bak": "5\n",
            "data/sub/x/important.bak": "6\n",
            "data/sub/other.bak": "7\n",
            "data/sub/deep/y.csv": "8\n",
            "data/sub/x/deep/z.csv": "9\n",
            "data/deep/kept.csv": "10\n",
            "data/sub2/a/b.csv": "11\n",
            "data/sub2/.dvcignore": "a/b.csv\n",
        },
    },
    {
        "name": "repo-root-above",
        "target": "repo/data",
        "tree": {
            "repo/.dvc/config": "",
            "repo/.dvcignore": "data/raw/\n**/cache\nnotes.txt\n",
            "repo/data/raw/x.csv": "x\n",
            "repo/data/clean/y.csv": "y\n",
            "repo/data/clean/cache/z.csv": "z\n",
            "repo/data/cache": "a file named cache\n",
            "repo/data/notes.txt": "n\n",
            "repo/data/a.csv": "a\n",
            "repo/data/.dvcignore": "!notes.txt\n",
        },
    },
    {
        "name": "subrepo-and-builtins",
        "target": "data",
        "tree": {
            "data/inner/.dvc/config": "",
            "data/inner/f.csv": "f\n",
            "data/.git/HEAD": "ref\n",
            "data/x/.git": "gitdir: elsewhere\n",
            "data/x/.hg": "a file named .hg is kept\n",
            "data/x/.hg2/k": "k\n",
            "data/y.csv": "y\n",
        },
    },
    {
        "name": "ignored-dvcignore",
        "target": "data",
        "tree": {
            "data/.dvcignore": "sub/.dvcignore\n",
            "data/sub/.dvcignore": "*.csv\n",
            "data/sub/a.csv": "a\n",
            "data/b.csv": "b\n",
        },
    },
    {
        "name": "no-reinclude-under-ignored-dir",
        "target": "data",
        "tree": {
            "data/.dvcignore": "build/\n!build/keep.csv\nout/*\n!out/keep.csv\n",
            "data/build/keep.csv": "1\n",
            "data/build/drop.csv": "2\n",
            "data/out/keep.csv": "3\n",
            "data/out/drop.csv": "4\n",
            "data/out/sub/deep.csv": "5\n",
            "data/z.csv": "6\n",
        },
    },
    {
        "name": "complex",
        "target": "data",
        "tree": {
            "data/.dvcignore": (
                "# Ignore everything\n1/**\n# Except directories (leaves all files ignored)\n!1/**/\n"
                "# Don't ignore files in 3\n!seq/**/3/**\n\ndata/\n!data/keep.csv\n\n"
                "data2/**\n!data2/**/\n!data2/**/*.csv\n\nignore.txt\n!no-ignore.txt\n"
            ),
            "data/1/2/3/shouldKeep.txt": "k\n",
            "data/1/2/shouldIgnore.txt": "i\n",
            "data/data/keep.csv": "1\n",
            "data/data/other.csv": "2\n",
            "data/data/subdir/file.txt": "3\n",
            "data/data2/keep.csv": "4\n",
            "data/data2/other.txt": "5\n",
            "data/data2/subdir/keep.csv": "6\n",
            "data/data2/subdir/other.txt": "7\n",
            "data/ignore.txt": "8\n",
            "data/no-ignore.txt": "9\n",
        },
    },
    {
        "name": "glob-syntax",
        "target": "data",
        "tree": {
            "data/.dvcignore": (
                "\\#hash.csv\n  [a-c]?.log  \r\nfi?e.t?t\n[!x]y.bin\n**/tmp/**\na/**/b\n"
                "/***.txt\n*.[0-9]\nspace\\ name\n"
            ),
            "data/#hash.csv": "1\n",
            "data/ab.log": "2\n",
            "data/dd.log": "3\n",
            "data/file.txt": "4\n",
            "data/sub/fire.tzt": "5\n",
            "data/zy.bin": "6\n",
            "data/xy.bin": "7\n",
            "data/q/tmp/r/s.csv": "8\n",
            "data/a/b": "9\n",
            "data/a/x/y/b": "10\n",
            "data/a/x/c": "11\n",
            "data/top.txt": "12\n",
            "data/sub/low.txt": "13\n",
            "data/v.1": "14\n",
            "data/v.x": "15\n",
            "data/space name": "16\n",
            "data/kept.csv": "17\n",
        },
    },
]


def change_rule(rule, rel):
    """dvc/pathspec_math.py change_rule."""
    rule = rule.strip()
    if rule.startswith("#"):
        return rule
    not_ignore = rule.startswith("!")
    if not_ignore:
        rule = rule[1:]
    if rule[:-1].find("/") >= 0 and not rule.startswith("**/"):
        match_all, rule = False, rule[1:] if rule.startswith("/") else rule
    else:
        match_all, rule = True, rule[3:] if rule.startswith("**/") else rule
    if rule.startswith("\\"):
        rule = rule[1:]
    rule = f"/**/{rule}" if match_all else f"/{rule}"
    rule = f"!/{rel}{rule}" if not_ignore else f"/{rel}{rule}"
    return normalize_file(rule)


class Patterns:
    """dvc/ignore.py DvcIgnorePatterns, matching relative to the root."""

    def __init__(self, lines):
        self.lines = list(lines)
        self.spec = []
        for line in self.lines:
            regex, ignore = GitWildMatchPattern.pattern_to_regex(line)
            if regex is not None and ignore is not None:
                self.spec.append((re.compile(regex), ignore, line.endswith("/")))

    def find(self, path, is_dir):
        if is_dir:
            path = path.rstrip("/")
        for regex, ignore, dir_only in reversed(self.spec):
            if dir_only and not is_dir:
                continue
            paths = [path] + ([path + "/"] if dir_only else [])
            if any(regex.match(p) for p in paths):
                return ignore
        return False

    def ignored(self, path, is_dir):
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            if self.find("/".join(parts[:i]), is_dir or i < len(parts)):
                return True
        return False


def read_dvcignore(path):
    with open(path, encoding="utf-8") as f:
        return [l for l in map(str.strip, f.readlines()) if l and not l.startswith("#")]


def repo_root(start):
    d = os.path.abspath(start)
    while True:
        if os.path.lexists(os.path.join(d, ".dvc")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def dvc_dir_hash(target):
    root = repo_root(target) or os.path.abspath(target)
    lists = {"": Patterns(DEFAULTS)}

    def load(rel):
        parent = lists[rel.rpartition("/")[0] if "/" in rel else ""] if rel else lists[""]
        cur = parent
        name = f"{rel}/.dvcignore" if rel else ".dvcignore"
        full = os.path.join(root, name)
        if not cur.ignored(name, False) and os.path.exists(full):
            new = read_dvcignore(full)
            if rel:
                new = [change_rule(l, rel) for l in new]
            cur = Patterns(cur.lines + new)
        lists[rel] = cur

    load("")
    base = os.path.relpath(os.path.abspath(target), root)
    base = "" if base == "." else base.replace(os.sep, "/")
    if base:
        parts = base.split("/")
        for i in range(1, len(parts) + 1):
            load("/".join(parts[:i]))

    entries = []
    for dirpath, dirnames, filenames in os.walk(target):
        rel_dir = os.path.relpath(dirpath, target).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        from_root = "/".join(p for p in (base, rel_dir) if p)
        if from_root not in lists:
            load(from_root)
        pat = lists[from_root]

        def full(n):
            return f"{from_root}/{n}" if from_root else n

        keep = []
        for d in dirnames:
            if pat.ignored(full(d), True):
                continue
            if os.path.lexists(os.path.join(dirpath, d, ".dvc")):  # a sub-repository
                continue
            keep.append(d)
        dirnames[:] = sorted(keep)
        for n in filenames:
            if pat.ignored(full(n), False):
                continue
            with open(os.path.join(dirpath, n), "rb") as f:
                md5 = hashlib.md5(f.read()).hexdigest()
            rel = f"{rel_dir}/{n}" if rel_dir else n
            entries.append({"md5": md5, "relpath": rel})
    entries.sort(key=lambda e: e["relpath"])
    listing = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(listing).hexdigest() + ".dir", [e["relpath"] for e in entries]


def main():
    out = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            for p, content in case["tree"].items():
                full = os.path.join(tmp, p)
                if p.endswith("/"):
                    os.makedirs(full, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "w", encoding="utf-8", newline="") as f:
                    f.write(content)
            md5, files = dvc_dir_hash(os.path.join(tmp, case["target"]))
        out.append({**case, "md5": md5, "files": files})
    json.dump({"generator": "gen.py (pathspec %s)" % __import__("pathspec").__version__, "cases": out}, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
