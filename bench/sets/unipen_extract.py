"""Extract UNIPEN train_r01_v07's isolated letters (category 1b, capitals; 1c, small letters) from a
bare git copy of github.com/GreenCappuccino/train_r01_v07 (CC BY 4.0) into JSON lines, one letter a
line: label, category, contributor, writer, quality, source, segment, x_ppi, y_ppi and strokes (flat
[x0, y0, x1, y1, ...] lists of raw tablet points, y up). Then ``unipen_letters.py`` packs them.

    python bench/sets/unipen_extract.py REPO.git unipen_letters.jsonl.gz

A data file's components are its ``.PEN_DOWN`` blocks (and ``.PEN_UP`` blocks that carry points,
counted for numbering but not drawn), numbered from 0 in stream order across its ``.INCLUDE``d
files. Segment specs: ``c``, ``c1-c2``, ``c:p``, ``c1:p1-c2:p2``, joined by commas.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import subprocess
from dataclasses import dataclass, field

SEGMENT = re.compile(r'\.SEGMENT\s+CHARACTER\s+(\S+)\s+(\S+)\s+"(.*)"')
META = (".X_POINTS_PER_INCH", ".Y_POINTS_PER_INCH")


class Repo:
    def __init__(self, path: str):
        self.git = subprocess.Popen(
            ["git", "-C", path, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.path = path

    def read(self, name: str) -> str | None:
        self.git.stdin.write(f"HEAD:{name}\n".encode())
        self.git.stdin.flush()
        head = self.git.stdout.readline().split()
        if len(head) < 3 or head[1] == b"missing":
            return None
        data = self.git.stdout.read(int(head[2]))
        self.git.stdout.read(1)
        return data.decode("latin-1")

    def names(self, *folders: str) -> list[str]:
        cmd = ["git", "-C", self.path, "ls-tree", "-r", "--name-only", "HEAD", *folders]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()


@dataclass
class Stream:
    components: list[tuple[str, list]] = field(default_factory=list)
    writers: list[str | None] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    current: list | str | None = None
    writer: str | None = None


def parse(repo: Repo, name: str, stream: Stream, stats: collections.Counter) -> None:
    text = repo.read("include/" + name)
    if text is None:
        stats["missing_include"] += 1
        raise FileNotFoundError(name)
    for line in text.splitlines():
        if line.startswith("."):
            key, *more = line.split(None, 1)
            rest = more[0].strip() if more else ""
            stream.current = None
            if key == ".INCLUDE":
                parse(repo, rest.split()[0], stream, stats)
            elif key == ".PEN_DOWN":
                stream.current = []
                stream.components.append(("D", stream.current))
                stream.writers.append(stream.writer)
            elif key == ".PEN_UP":
                stream.current = "UP"
            elif key == ".WRITER_ID":
                stream.writer = rest
            elif key in META:
                stream.meta[key] = rest
        elif stream.current is not None:
            values = line.split()
            if len(values) < 2:
                continue
            if stream.current == "UP":  # a pen-up block with points: numbered, never drawn
                stream.current = []
                stream.components.append(("U", stream.current))
                stream.writers.append(stream.writer)
            try:
                stream.current.append((int(float(values[0])), int(float(values[1]))))
            except ValueError:
                stats["bad_point"] += 1


def _component(spec: str) -> tuple[int, int | None]:
    c, _, p = spec.partition(":")
    return int(c), (int(p) if p else None)


def select(components: list[tuple[str, list]], spec: str) -> list[list]:
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        (c1, p1), (c2, p2) = _component(a), _component(b or a)
        for c in range(c1, c2 + 1):
            kind, points = components[c]
            if kind == "U":
                continue
            lo = p1 if (c == c1 and p1 is not None) else 0
            hi = p2 + 1 if (c == c2 and p2 is not None) else len(points)
            if points[lo:hi]:
                out.append(points[lo:hi])
    return out


def records(repo: Repo, path: str, stats: collections.Counter):
    category, contributor = path.split("/")[1:3]
    stream, segments = Stream(), []
    for line in (repo.read(path) or "").splitlines():
        if line.startswith(".INCLUDE"):
            parse(repo, line.split()[1], stream, stats)
        elif line.startswith(".SEGMENT"):
            found = SEGMENT.match(line)
            if found:
                segments.append(found.groups())
    for spec, quality, label in segments:
        try:
            strokes = select(stream.components, spec)
        except IndexError:
            stats["index_error"] += 1
            continue
        if not strokes:
            continue
        writer = stream.writers[int(re.split(r"[-:,]", spec)[0])]
        yield {
            "label": label,
            "category": category,
            "contributor": contributor,
            "writer": contributor + "/" + (writer or path.split("/")[-1].rsplit(".", 1)[0]),
            "quality": quality,
            "source": path,
            "segment": spec,
            "x_ppi": stream.meta.get(".X_POINTS_PER_INCH"),
            "y_ppi": stream.meta.get(".Y_POINTS_PER_INCH"),
            "strokes": [[v for point in s for v in point] for s in strokes],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", help="a bare git copy of github.com/GreenCappuccino/train_r01_v07")
    parser.add_argument("out", help="the JSON-lines file to write (.jsonl.gz)")
    args = parser.parse_args()
    repo, out = Repo(args.repo), args.out
    stats: collections.Counter = collections.Counter()
    with gzip.open(out, "wt") as f:
        for path in repo.names("data/1b", "data/1c"):
            try:
                for record in records(repo, path, stats):
                    f.write(json.dumps(record, separators=(",", ":")) + "\n")
                    stats["letters"] += 1
            except FileNotFoundError:
                stats["file_skipped"] += 1
    print(dict(stats))


if __name__ == "__main__":
    main()
