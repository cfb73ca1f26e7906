"""The import contract in ``pyproject.toml`` holds, and it fails when a forbidden import appears."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter over the ``bot`` package found in ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_of_the_package(tmp_path: Path) -> Path:
    """A throwaway copy of ``bot/`` and ``pyproject.toml`` to break on purpose."""
    shutil.copytree(ROOT / "bot", tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contract_is_kept():
    """Every contract (layers, no stand-ins in production, no Slack in the service...) holds."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "forbidden_import", "broken_contract"),
    [
        ("service.py", "from bot.slack import blocks", "know nothing of Slack"),
        ("slack/blocks.py", "import sqlalchemy", "never touches the database"),
        ("web.py", "from bot.sim import server", "never imports the stand-ins"),
        ("sim/dis.py", "from bot.dis import client", "only what a user of the package could"),
        ("lifecycle.py", "from bot import service", "Layers"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    tmp_path, module, forbidden_import, broken_contract
):
    """Adding one forbidden import to a copy of the package makes lint-imports fail, naming it."""
    tree = copy_of_the_package(tmp_path)
    path = tree / "bot" / module
    path.write_text(path.read_text() + f"\n{forbidden_import}  # added by the test\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if "BROKEN" in line]
    assert any(broken_contract in line for line in broken), result.stdout
