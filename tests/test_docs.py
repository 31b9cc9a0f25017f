"""README and docs/ hold together: every relative link (and its #anchor)
resolves, README keeps the two set-up commands CI runs, and the reference
tables that are not checked against a live process elsewhere match the code
(the operator's metrics)."""
from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text outside code blocks and code spans (a `[x](y)` in code is not a link)."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M))


def anchors(path: pathlib.Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading suffixed -1, -2 …"""
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if ROOT in dest.parents else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, broken


def test_every_doc_is_linked_from_readme():
    readme = (ROOT / "README.md").read_text()
    for doc in (ROOT / "docs").glob("*.md"):
        assert f"](docs/{doc.name}" in readme, f"README does not link docs/{doc.name}"


def test_the_setup_commands_stay_at_the_top_and_ci_runs_the_test_one():
    """README's first code block is `make demo` and `make test`; .ci/run
    runs exactly that test command, and both are Makefile targets."""
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first.splitlines()]
    assert commands == ["make demo", "make test"]
    assert re.findall(r"^## .*", readme, re.M)[0] == "## Set-up: two commands"
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec make test")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_the_operators_metrics_table_matches_its_registry():
    from prometheus_client import REGISTRY

    from podsup_operator import metrics

    metrics.enable_metrics_api_metrics()
    exported = {f.name: (f.type, f.documentation) for f in REGISTRY.collect()
                if f.name.startswith("podsup_operator_")}
    text = (ROOT / "docs" / "metrics.md").read_text()
    section = text.split("\n## The operator's metrics\n", 1)[1].split("\n## ", 1)[0]
    documented = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`podsup_operator_"):
            name = cells[0].strip("`")
            # the registry names a counter's family without its _total sample suffix
            documented[name.removesuffix("_total") if cells[1] == "counter" else name] = (cells[1], cells[3])
    assert documented == exported
