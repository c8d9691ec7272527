"""The Dockerfiles (not buildable here: no Docker engine) copy only paths that exist in the
tree or that the documented staging step produces, run as non-root on pinned bases, and
every command they or the chart name is a real command or module of the project."""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.deploy.tools import ROOT, VALUES_FILES, find, render

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
STAGING = ROOT / "scripts" / "docker_context.sh"


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def _args(path: Path) -> dict[str, str]:
    return {
        k: v
        for op, rest in _instructions(path)
        if op == "ARG" and "=" in rest
        for k, v in [rest.split("=", 1)]
    }


def _staged_outputs() -> list[str]:
    m = re.search(r"^OUTPUTS=\(([^)]*)\)", STAGING.read_text(), flags=re.M)
    assert m, "scripts/docker_context.sh declares OUTPUTS=(...)"
    return m.group(1).split()


def test_dockerfiles_exist() -> None:
    assert {p.name for p in DOCKERFILES} == {"job.Dockerfile", "services.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copy_sources_exist(dockerfile: Path) -> None:
    staged = _staged_outputs()
    copies = 0
    for op, rest in _instructions(dockerfile):
        if op != "COPY" or "--from=" in rest:
            continue
        parts = [p for p in shlex.split(rest) if not p.startswith("--")]
        for src in parts[:-1]:
            copies += 1
            if any(src.startswith(out) for out in staged):
                continue
            assert (ROOT / src).exists(), f"{dockerfile.name}: COPY {src} does not exist"
            assert not src.startswith("build/"), f"{src}: build output not staged by the script"
    assert copies >= 4


def test_udf_jar_is_the_one_the_jobs_load() -> None:
    from jobs import flink_env

    rel = flink_env.UDF_JAR.relative_to(ROOT).as_posix()
    assert f"COPY {rel} {rel}" in (ROOT / "docker" / "job.Dockerfile").read_text()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_pinned_bases_and_non_root(dockerfile: Path) -> None:
    args = _args(dockerfile)
    froms = [rest.split()[0] for op, rest in _instructions(dockerfile) if op == "FROM"]
    stages = {
        rest.split()[-1]
        for op, rest in _instructions(dockerfile)
        if op == "FROM" and " AS " in rest.upper()
    }
    for ref in froms:
        ref = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ref)
        if ref in stages:
            continue
        name, _, tag = ref.rpartition(":")
        assert name and tag and tag != "latest", ref
        assert re.search(r"\d+\.\d+", tag), f"{ref}: tag is not a version"
    users = [rest for op, rest in _instructions(dockerfile) if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users


def test_job_image_base_is_flink_2_1_3_java17() -> None:
    args = _args(ROOT / "docker" / "job.Dockerfile")
    assert args["FLINK_IMAGE"] == "flink:2.1.3-scala_2.12-java17"
    values = render()
    (fd,) = [
        o for o in find(values, "FlinkDeployment") if o["metadata"]["name"].endswith("candles")
    ]
    # The PythonDriver jar the chart names ships with that base image's distribution.
    assert fd["spec"]["job"]["jarURI"].endswith("/opt/flink/opt/flink-python-2.1.3.jar")
    assert "VIRTUAL_ENV=/opt/candleflow/venv" in (ROOT / "docker" / "job.Dockerfile").read_text()
    python = fd["spec"]["flinkConfiguration"]["python.client.executable"]
    assert python == "/opt/candleflow/venv/bin/python"


def _console_scripts() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["scripts"]


def _module_exists(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def test_services_entrypoint_is_a_console_script() -> None:
    text = (ROOT / "docker" / "services.Dockerfile").read_text()
    (entry,) = re.findall(r"^ENTRYPOINT (\[.*\])", text, flags=re.M)
    assert ast.literal_eval(entry) == ["candleflow"]
    assert _console_scripts()["candleflow"] == "candleflow.cli:main"
    for module in re.findall(r"python -c \"import ([\w.]+)\"", text):
        assert _module_exists(module), module


def _cli() -> Any:
    from candleflow.cli import app

    return typer.main.get_command(app)


def resolve(cmd: Any, args: list[str]) -> Any:
    """Parse args through the real command tree without running anything; raises on an
    unknown command or option. (Typer vendors its own Click, so groups are recognised by
    their `commands`, not by isinstance.)"""
    ctx = cmd.make_context("candleflow", list(args), resilient_parsing=False)
    if hasattr(cmd, "commands"):
        rest = [*ctx._protected_args, *ctx.args]  # click 8.2+: protected args are private
        if not rest:
            assert cmd.invoke_without_command, f"{cmd.name}: needs a sub-command"
            return cmd
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"no command {rest[0]!r} under {cmd.name}"
        return resolve(sub, rest[1:])
    return cmd


@pytest.mark.parametrize("values", list(VALUES_FILES.values()), ids=list(VALUES_FILES))
def test_chart_commands_are_real(values: Path | None) -> None:
    objs = render(values)
    cli = _cli()
    checked = 0
    for o in find(objs, "Deployment") + find(objs, "Pod"):
        spec = o["spec"]["template"]["spec"] if o["kind"] == "Deployment" else o["spec"]
        for c in spec["containers"]:
            command = c.get("command")
            if command:  # python -m <module> ...
                assert command[:2] == ["python", "-m"] and _module_exists(command[2]), command
            else:  # the image's ENTRYPOINT is `candleflow`
                resolve(cli, c["args"])
            checked += 1
    assert checked >= 4
    for fd in find(objs, "FlinkDeployment"):
        args = fd["spec"]["job"]["args"]
        assert args[0] == "-pym"
        spec = importlib.util.find_spec(args[1])
        assert spec and spec.origin, f"{args[1]} is not a module of the project"
        tree = ast.parse(Path(spec.origin).read_text())
        assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), (
            f"{args[1]} has no main()"
        )
        assert "__main__" in Path(spec.origin).read_text(), f"{args[1]} does not run main()"


def test_resolve_rejects_unknown_commands_and_options() -> None:
    cli = _cli()
    with pytest.raises(AssertionError):
        resolve(cli, ["no-such-command"])
    with pytest.raises(Exception) as err:
        resolve(cli, ["serve", "--no-such-option", "1"])
    assert "UsageError" in {c.__name__ for c in type(err.value).__mro__}
    with pytest.raises(Exception) as err:
        resolve(cli, ["ingest", "live", "--exchange", "binance"])  # --symbols is required
    assert "UsageError" in {c.__name__ for c in type(err.value).__mro__}
