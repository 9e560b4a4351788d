"""Packaging: the sdist and the wheel built from this repository, the wheel installed into a fresh
venv (nothing but the package registry), and the commands a desk runs first working there: the
version, `check` on the rules, `backtest` on the episodes shipped as package data, completion, and
`replay --report` without the optional `report` extra saying which extra to install (one line,
exit 1, no traceback). `make dist` runs it (marked `packaging`, so not in `make test`): about
20 s, a minute on a loaded machine (a build backend and the dependencies come from the registry)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from backtest_logs import write_log

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parent.parent
REPORT_MISSING = "error: --report needs matplotlib: pip install 'liquidity-watchdog[report]'\n"


def run(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"{done.args}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The sdist built from the repository, the wheel built from that sdist, and the wheel
    installed with its dependencies (no extra) into a fresh venv."""
    tmp = tmp_path_factory.mktemp("packaging")
    dist = tmp / "dist"
    ok(run(sys.executable, "-m", "build", "--sdist", "--outdir", str(dist), str(REPO), cwd=tmp))
    [sdist] = dist.glob("liquidity_watchdog-*.tar.gz")
    ok(run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(sdist), cwd=tmp))
    [wheel] = dist.glob("liquidity_watchdog-*.whl")
    venv = tmp / "venv"
    ok(run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp))
    python = venv / "bin" / "python"
    ok(run(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(wheel), cwd=tmp))
    work = tmp / "desk"                              # a working directory with no episodes/ in it
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"sdist": sdist, "wheel": wheel, "python": python, "watchdog": str(venv / "bin" / "watchdog"),
            "work": work, "env": env}


def watchdog(installed: dict, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run(installed["watchdog"], *args, cwd=installed["work"], env={**installed["env"], **env})


def test_the_wheel_and_sdist_carry_the_package_data_and_every_dependency(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = Parser().parsestr(wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
    assert "watchdog/tuning/default_episodes.toml" in names
    assert not any(name.startswith(("tests/", "episodes/")) for name in names)
    requires = [re.match(r"[A-Za-z0-9._-]+", r)[0].lower() for r in metadata.get_all("Requires-Dist")
                if "extra ==" not in r]
    # every third-party package the code imports directly is a dependency, not a transitive accident
    for package in ("python-dateutil", "markupsafe", "jinja2", "google-re2", "click", "pydantic", "aiohttp"):
        assert package in requires, package
    assert "report" in metadata.get_all("Provides-Extra")
    with tarfile.open(installed["sdist"]) as sdist:
        assert any(n.endswith("/watchdog/tuning/default_episodes.toml") for n in sdist.getnames())


def test_the_installed_commands_run_from_anywhere(installed):
    assert ok(watchdog(installed, "--version")).strip() == "watchdog, version 0.1.0"
    checked = ok(watchdog(installed, "check", "--rules", str(REPO / "rules")))
    assert checked.startswith("ok: ") and " rules (" in checked
    # the package is this project's, from the venv (not the checkout, not PyPI's `watchdog`)
    where = ok(run(str(installed["python"]), "-c", "import watchdog.cli, watchdog; print(watchdog.__file__)",
                   cwd=installed["work"], env=installed["env"]))
    assert "site-packages" in where and not where.startswith(str(REPO / "watchdog"))


def test_backtest_outside_the_repository_scores_against_the_shipped_episodes(installed):
    log = write_log(installed["work"] / "small.db", {"iorb": {"2019-09-01": "2.1"},
                                                     "sofr": {"2019-09-16": "2.43", "2019-09-17": "5.25"}})
    scored = ok(watchdog(installed, "backtest", "--db", str(log), "--rules", str(REPO / "rules")))
    assert scored.startswith("backtest: 16 episodes (")
    assert "repo-spike-2019-09" in scored


def test_report_without_its_extra_names_the_extra_in_one_line(installed):
    assert ok(run(str(installed["python"]), "-c", "import importlib.util as u; print(u.find_spec('matplotlib'))",
                  cwd=installed["work"], env=installed["env"])).strip() == "None"
    log = write_log(installed["work"] / "report.db", {"iorb": {"2019-09-01": "2.1"}, "sofr": {"2019-09-16": "2.43"}})
    done = watchdog(installed, "replay", "--db", str(log), "--rules", str(REPO / "rules"), "--report", "out.html")
    assert (done.returncode, done.stderr) == (1, REPORT_MISSING)
    assert "Traceback" not in done.stdout
    assert not (installed["work"] / "out.html").exists()


def test_shell_completion_as_the_readme_says(installed):
    script = ok(watchdog(installed, _WATCHDOG_COMPLETE="bash_source"))
    assert "complete -o nosort -F _watchdog_completion watchdog" in script
    words = ok(watchdog(installed, _WATCHDOG_COMPLETE="bash_complete", COMP_WORDS="watchdog sil", COMP_CWORD="1"))
    assert words.split() == ["plain,silence"]
    assert ok(watchdog(installed, _WATCHDOG_COMPLETE="zsh_source")).startswith("#compdef watchdog")
    assert "complete --no-files --command watchdog" in ok(watchdog(installed, _WATCHDOG_COMPLETE="fish_source"))
