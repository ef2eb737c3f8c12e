"""docs/benchmarks.md keeps its order when any one benchmark rewrites its part: the real
control plane's sections first (bench.real's, then KubernetesPodOperator's and the
profile), the devcluster figures (`make bench`) after them."""

from __future__ import annotations

from pathlib import Path

from bench import kpo
from bench.real_report import BEGIN, END, kept_section

REAL = f"{BEGIN}\n## On the real control plane\n\nfigures\n{END}\n"
PROFILE = "## Where the controller's CPU goes\n\nprofile\n"
DEVCLUSTER = "## On devcluster (the development loop)\n\nold figures\n"


def test_the_devcluster_report_keeps_every_real_section(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\n{REAL}\n{kpo.SECTION}\n\nkpo\n\n{PROFILE}\n{DEVCLUSTER}")
    kept = kept_section(docs)
    assert kept.startswith(BEGIN)
    assert kpo.SECTION in kept and "profile" in kept
    assert "old figures" not in kept


def test_the_kpo_section_goes_before_the_devcluster_figures(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\n{REAL}\n{DEVCLUSTER}")
    kpo.update_docs(f"{kpo.SECTION}\n\nfirst\n", docs)
    text = docs.read_text()
    assert text.index(END) < text.index(kpo.SECTION) < text.index("## On devcluster")
    kpo.update_docs(f"{kpo.SECTION}\n\nsecond\n", docs)
    text = docs.read_text()
    assert "second" in text and "first" not in text
    assert text.index(kpo.SECTION) < text.index("## On devcluster")
