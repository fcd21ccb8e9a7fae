"""Real multi-process runs on the CPU (gloo): two "nodes" launched by torchrun, and `lit-dl predict`
on two processes launched by Lightning. Each launch costs ~10-20 s, so one launch of each kind
serves several tests (module-scoped fixtures); the one-process references run in this process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lit_dl.cli import LitDLCLI
from tests.conftest import CONFIGS, HANG_TIMEOUT, REPO, read_scalars

# The default recipe on splits whose sizes are odd (val 189, test 201 samples), so two processes
# cannot split them evenly; the LR scaled linearly from a base batch equal to the per-device batch.
RECIPE = [
    "--config",
    str(CONFIGS / "digits_mlp.yaml"),
    "--trainer.accelerator=cpu",
    "--trainer.enable_progress_bar=false",
    "--data.init_args.val_fraction=0.105",
    "--data.init_args.test_fraction=0.1113",
    "--model.init_args.lr_scaling=linear",
    "--model.init_args.base_batch_size=64",
]
# One whole epoch of the default recipe: 1407 training samples on these splits, 704 per rank, 11
# batches of 64 on each of two ranks.
ONE_EPOCH = ["--trainer.max_epochs=1", "--trainer.log_every_n_steps=2"]
STEPS_PER_RANK = 11
# What Lightning prints when evaluation is not exact or logging does not fit the run.
DDP_WARNINGS = (
    "sync_dist=True",
    "replicates some samples",
    "smaller than the logging interval",
    "all_gather is deprecated",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Set by a launcher; inherited from an in-process DDP test they would make the child believe it was
# already launched (Lightning then starts no second process and waits for it forever).
LAUNCH_VARIABLES = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "GROUP_RANK",
)


def env() -> dict[str, str]:
    # One CPU thread per process, as the one-process references below use: a CPU matmul's last bits
    # depend on the thread count (a 9-row batch differs in its last row between 1 and 2 threads).
    clean = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}
    return {**clean, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def lit_dl_args(subcommand: str, root: Path, *extra: str) -> list[str]:
    return [subcommand, *RECIPE, f"--trainer.default_root_dir={root}", *extra]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """`lit-dl fit` on 2 nodes x 1 process, as a cluster runs it: one torchrun per node, rendezvous
    on node 0's address (here 127.0.0.1)."""
    tmp = tmp_path_factory.mktemp("two_nodes")
    port = free_port()
    # The default bundle with AtomicCheckpoint(async_write=True): rank 0 writes in a background thread,
    # and the test after fit loads the best file on both ranks (they wait for it at the end of fit).
    bundle = yaml.safe_load((CONFIGS / "callbacks" / "default.yaml").read_text())
    (atomic,) = [c for c in bundle if c["class_path"] == "lit_dl.callbacks.AtomicCheckpoint"]
    atomic["init_args"]["async_write"] = True
    callbacks = tmp / "callbacks.yaml"
    callbacks.write_text(yaml.safe_dump(bundle))
    args = lit_dl_args("fit", tmp / "runs", *ONE_EPOCH, "--trainer.devices=1", "--trainer.num_nodes=2")
    args += ["--trainer.strategy=ddp", f"--trainer.callbacks={callbacks}"]
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                f"--node-rank={rank}",
                "--nproc-per-node=1",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                "lit_dl",
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env(),
            cwd=tmp,
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=HANG_TIMEOUT)[0] for node in nodes]
    except subprocess.TimeoutExpired:  # one node stuck (say, its peer died): fail with both logs
        for node in nodes:
            node.kill()
        outputs = [f"(killed after {HANG_TIMEOUT} s)\n{node.communicate()[0]}" for node in nodes]
    return {"root": tmp / "runs", "outputs": outputs, "returncodes": [node.returncode for node in nodes]}


@pytest.fixture(scope="module")
def run_dir(two_nodes) -> Path:
    assert two_nodes["returncodes"] == [0, 0], "\n".join(out[-3000:] for out in two_nodes["outputs"])
    runs = sorted((two_nodes["root"] / "lightning_logs").iterdir())
    assert [p.name for p in runs] == ["version_0"]  # both nodes wrote into one run folder
    return runs[0]


@pytest.fixture(scope="module")
def checkpoint(run_dir) -> Path:
    (ckpt,) = (run_dir / "checkpoints").glob("epoch=*.ckpt")  # the best (last.ckpt beside it)
    return ckpt


def test_two_nodes_train_the_default_recipe_into_one_run_folder(two_nodes, run_dir, checkpoint):
    node0, node1 = two_nodes["outputs"]
    assert "distributed_backend=gloo" in node0
    assert "All distributed processes registered. Starting with 2 processes" in node0
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in node1
    assert (node0 + node1).count("test/acc") == 1  # rank 0 prints the test metrics once
    assert checkpoint.name == f"epoch=0-step={STEPS_PER_RANK}.ckpt"
    # the train-loss window closes every log_every_n_steps (2) optimizer steps and at the epoch's end
    # (the 11th); a point is logged at the step count before the closing step, as Lightning's are
    assert [step for step, _ in read_scalars(run_dir)["train/loss"]] == [1, 3, 5, 7, 9, 10]


def test_no_ddp_warning_in_the_recipe_output(two_nodes):
    for output in two_nodes["outputs"]:
        assert [w for w in DDP_WARNINGS if w in output] == []


def test_two_process_val_and_test_metrics_equal_one_process_exactly(
    run_dir, checkpoint, tmp_path, one_thread
):
    logged = read_scalars(run_dir)
    one = tmp_path / "one"
    validated = LitDLCLI(args=lit_dl_args("validate", one, f"--ckpt_path={checkpoint}"))
    tested = LitDLCLI(args=lit_dl_args("test", one, f"--ckpt_path={checkpoint}"))
    assert (len(validated.datamodule.val_set), len(tested.datamodule.test_set)) == (189, 201)
    expected = {**validated.trainer.callback_metrics, **tested.trainer.callback_metrics}
    assert sorted(expected) == ["test/acc", "test/f1", "test/loss", "val/acc", "val/f1", "val/loss"]
    for name, value in expected.items():
        (step_value,) = logged[name]  # one epoch, one test: one point each
        assert step_value[1] == value.item(), name  # both float32: exact


def test_linear_lr_scaling_doubles_the_logged_lr_on_two_processes(run_dir, tmp_path):
    one = tmp_path / "one"
    # one process over as many steps as each of the two ranks took: the same schedule, step for step
    steps = f"--trainer.limit_train_batches={STEPS_PER_RANK}"
    LitDLCLI(args=lit_dl_args("fit", one, *ONE_EPOCH, steps, "--trainer.devices=1", "--test_after_fit=false"))
    lr_one = read_scalars(one / "lightning_logs" / "version_0")["lr-AdamW/decay"]
    lr_two = read_scalars(run_dir)["lr-AdamW/decay"]
    assert [step for step, _ in lr_two] == [step for step, _ in lr_one] == [1, 3, 5, 7, 9]
    assert lr_one[0][1] == pytest.approx(0.003)  # global batch 64 = base: unscaled
    for (_, two), (_, one_lr) in zip(lr_two, lr_one, strict=True):
        assert two == 2 * one_lr  # global batch 128: x2, exactly


def test_two_process_predict_writes_one_file_equal_to_one_process(checkpoint, tmp_path, one_thread):
    two = tmp_path / "two"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lit_dl",
            *lit_dl_args(
                "predict", two, f"--ckpt_path={checkpoint}", "--trainer.devices=2", "--trainer.strategy=ddp"
            ),
        ],
        capture_output=True,
        text=True,
        env=env(),
        cwd=tmp_path,
        timeout=HANG_TIMEOUT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert [w for w in DDP_WARNINGS if w in output] == []
    run = two / "lightning_logs" / "version_0"
    assert sorted(p.name for p in run.glob("predictions*")) == ["predictions.pt"]
    LitDLCLI(args=lit_dl_args("predict", tmp_path / "one", f"--ckpt_path={checkpoint}"))
    on_two = torch.load(run / "predictions.pt")
    on_one = torch.load(tmp_path / "one" / "lightning_logs" / "version_0" / "predictions.pt")
    assert sorted(on_two) == sorted(on_one) == ["index", "predicted_class", "probabilities"]
    assert torch.equal(on_one["index"], torch.arange(201))
    for key in on_one:
        assert torch.equal(on_two[key], on_one[key]), key
