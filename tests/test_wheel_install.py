"""The package as a user gets it: `python -m build` makes a wheel and an sdist that pass
`twine check`; the wheel installs into a fresh venv (no editable install, no repo on the path)
and the README's commands run there, the first of them compiling the kernels and saying so.

Offline: the build uses this interpreter's setuptools (--no-isolation), and the fresh venv
sees the already-installed dependencies (NumPy, numba, matplotlib, ...) through a .pth file
naming a folder of links to them, so `pip install --no-index` resolves lstmlab's declared
dependencies without downloading anything, and installs lstmlab from the wheel alone.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import lstmlab

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("build")
pytest.importorskip("twine")


def run(argv, cwd, env=None, timeout=600):
    res = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, f"{argv}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    tree = root / "lstmlab"  # a copy: the build's egg-info and build/ stay out of the repo
    shutil.copytree(REPO / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(REPO / "tests", tree / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    out = root / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, tree], cwd=root)
    return out


def test_wheel_and_sdist_pass_twine_check(dist):
    files = sorted(dist.iterdir())
    version = lstmlab.__version__
    assert [f.name for f in files] == [f"lstmlab-{version}-py3-none-any.whl",
                                       f"lstmlab-{version}.tar.gz"]
    res = run([sys.executable, "-m", "twine", "check", "--strict", *files], cwd=dist)
    assert res.stdout.count("PASSED") == 2
    with zipfile.ZipFile(files[0]) as whl:
        names = set(whl.namelist())
        meta = whl.read(f"lstmlab-{version}.dist-info/METADATA").decode()
    assert {"lstmlab/datasets/airline_passengers.csv", "lstmlab/datasets/sunspots_yearly.csv",
            "lstmlab/cli.py", "lstmlab/explore/static/app.js"} <= names
    assert not any("__pycache__" in n for n in names)
    requires = re.findall(r"^Requires-Dist: (.*)$", meta, flags=re.M)
    plain = sorted(r for r in requires if "extra ==" not in r)
    assert [re.split(r"[<>=]", r)[0] for r in plain] == ["matplotlib", "numba", "numpy",
                                                              "threadpoolctl", "werkzeug"]
    extras = set(re.findall(r"^Provides-Extra: (.*)$", meta, flags=re.M))
    assert {"onnx", "torch", "keras", "sklearn", "all"} <= extras


@pytest.fixture(scope="module")
def fresh(dist, tmp_path_factory):
    root = tmp_path_factory.mktemp("fresh")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    # the installed dependencies, without any lstmlab of this interpreter (an editable one)
    deps = root / "deps"
    deps.mkdir()
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        if not entry.name.lower().startswith(("lstmlab", "__editable__", "_lstmlab")):
            (deps / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=root).stdout.strip())
    (site / "deps.pth").write_text(f"{deps}\n", encoding="utf-8")
    wheel = next(dist.glob("*.whl"))
    run([sys.executable, "-m", "pip", "--isolated", "--python", python, "install", "--no-index",
         "--quiet", wheel], cwd=root)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "LSTMLAB_FAST")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    work = root / "work"
    work.mkdir()
    return {"python": python, "lstmlab": bindir / "lstmlab", "env": env, "cwd": work,
            "site": site}


def test_installed_from_the_wheel_alone(fresh):
    res = run([fresh["python"], "-c", "import lstmlab, sys; print(lstmlab.__file__)"],
              cwd=fresh["cwd"], env=fresh["env"])
    where = Path(res.stdout.strip())
    assert where.is_relative_to(fresh["site"]) and not where.is_relative_to(REPO)


def _read_only(site: Path) -> list[str]:
    """A command prefix that runs with ``site`` mounted read-only (a private mount namespace:
    Linux, as root), or [] where that cannot be done."""
    prefix = ["unshare", "-m", "sh", "-c",
              f'mount --bind "{site}" "{site}" && mount -o remount,ro,bind "{site}" "{site}" '
              f'&& exec "$@"', "sh"]
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return []
    probe = subprocess.run(prefix + ["touch", str(site / "probe")], capture_output=True)
    return prefix if probe.returncode != 0 and not (site / "probe").exists() else []


def test_readme_commands_in_the_fresh_venv(fresh, tmp_path):
    """`lstmlab --version` and `lstmlab demo --quick` from the wheel, with the install folder
    read-only where that can be arranged: the first run compiles the kernels into numba's
    per-user cache instead, and says so."""
    env, cwd = dict(fresh["env"]), fresh["cwd"]
    env["HOME"] = str(tmp_path / "home")  # numba's per-user cache: $HOME/.cache/numba
    env.pop("XDG_CACHE_HOME", None)
    prefix = _read_only(fresh["site"])
    res = run(prefix + [fresh["lstmlab"], "--version"], cwd, env)
    assert res.stdout.strip() == f"lstmlab {lstmlab.__version__}"
    res = run(prefix + [fresh["lstmlab"], "demo", "--quick", "--out", "demo"], cwd, env,
              timeout=900)
    assert "compiling kernels, once: ~" in res.stderr and "kernels compiled in" in res.stderr
    assert "3. Summary" in res.stdout and (cwd / "demo" / "report.html").stat().st_size > 10_000
    cached = list((tmp_path / "home").rglob("*.nbi"))
    in_tree = list((fresh["site"] / "lstmlab").rglob("*.nbi"))
    if prefix:
        assert cached and not in_tree
    else:
        assert cached or in_tree
