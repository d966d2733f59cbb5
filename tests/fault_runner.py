"""Runs training scripts as forked processes that share one interpreter start-up (used by tests/test_faults.py).

``python tests/fault_runner.py plan.json results.json``: the plan lists phases; each phase lists runs
``{"name", "script", "argv", "env", "kill_while_renaming": step or null}``. The runner imports torch, transformers,
accelerate, datasets, hf_maskedav and the example scripts once (most of a run's cost on a small machine), then for
each run of a phase forks a child process that sets the run's environment, redirects its output to
``<output_dir>.<name>.out`` and calls the script's ``main(argv)``; the exit status is the script's (``SystemExit``
included). Every run is a separate OS process: signals, ``SIGKILL`` and exit codes are real. The children of a phase
run at the same time; after each phase the runner records every run's exit status and what its output folder holds
(so a folder can be inspected before the next phase changes it) in ``results.json``, and the pid of each child in
``<results>.pids.json`` as soon as it starts (for signals sent from outside).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import traceback
from pathlib import Path

import accelerate  # noqa: F401  (imported before forking: the point of the runner)
import datasets  # noqa: F401
import torch
import transformers  # noqa: F401

import hf_maskedav  # noqa: F401
from hf_maskedav.training.checkpointing import latest_checkpoint


def _load(script: str):
    spec = importlib.util.spec_from_file_location(f"script_{Path(script).stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _child(run: dict, module) -> int:
    output_dir = run["argv"][run["argv"].index("--output_dir") + 1]
    log = os.open(f"{output_dir}.{run['name']}.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    for key in [k for k in os.environ if k.startswith("HF_MASKEDAV_")]:
        del os.environ[key]
    os.environ.update(run.get("env", {}))
    torch.set_num_threads(1)
    step = run.get("kill_while_renaming")
    if step is not None:
        # SIGKILL at the worst moment of a checkpoint: everything is written into the temporary folder, the rename
        # that would make it "checkpoint-<step>" has not happened yet.
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if os.path.basename(str(dst)) == f"checkpoint-{step}" and str(src).endswith(".tmp"):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    sys.argv = [run["script"], *run["argv"]]
    try:
        code = module.main(run["argv"])
    except SystemExit as error:  # as the interpreter reports it
        code = error.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return int(code or 0)


def _listing(output_dir: str) -> dict:
    folder = Path(output_dir)
    if not folder.is_dir():
        return {}
    entries = sorted(p.name for p in folder.iterdir())
    return {
        "entries": entries,
        "contents": {name: sorted(p.name for p in (folder / name).iterdir()) for name in entries if (folder / name).is_dir()},
        "states": {
            name: json.loads((folder / name / "training_state.json").read_text())
            for name in entries
            if (folder / name / "training_state.json").is_file()
        },
        "latest": latest_checkpoint(output_dir),
    }


def main(plan_path: str, results_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    modules = {script: _load(script) for script in {run["script"] for phase in plan for run in phase}}
    results, pids = {}, {}
    for phase in plan:
        children = {}
        for run in phase:
            pid = os.fork()
            if pid == 0:
                os._exit(_child(run, modules[run["script"]]))
            children[pid] = run
            pids[run["name"]] = pid
            Path(results_path + ".pids.json").write_text(json.dumps(pids))
        for _ in range(len(children)):
            pid, status = os.wait()
            run = children[pid]
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            results[run["name"]] = {"returncode": code}
        for run in phase:
            output_dir = run["argv"][run["argv"].index("--output_dir") + 1]
            results[run["name"]]["after"] = _listing(output_dir)
    Path(results_path).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
