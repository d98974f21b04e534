"""Training: loss goes down, resume is exact, DDP agrees with one process, bad input fails early.

Tiny sizes only: a 60 000-character slice of the corpus, 2 blocks of width 32, a few steps.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import aft
from aft.train import main, read_metrics

TINY = ["--seq-len", "32", "--d-model", "32", "--n-layers", "2", "--heads", "2", "--window", "8",
        "--d-bias", "8", "--batch-size", "8", "--eval-windows", "8", "--warmup", "2", "--quiet"]


def run(corpus, out, *flags):
    return main([*TINY, "--corpus", corpus, "--out", str(out), *flags])


def losses(out, column):
    return [r[column] for r in read_metrics(Path(out) / "metrics.csv") if r[column] is not None]


def test_a_few_steps_lower_the_loss(corpus, tmp_path):
    assert run(corpus, tmp_path, "--steps", "15", "--eval-every", "15", "--lr", "1e-2") == 0
    val = losses(tmp_path, "val_loss")
    assert len(val) == 2 and val[1] < val[0] - 0.5
    assert (tmp_path / "ckpt.pt").is_file() and (tmp_path / "config.json").is_file()


@pytest.mark.parametrize("mixer", ["local", "attention"])
def test_resume_gives_the_losses_of_an_uninterrupted_run(corpus, tmp_path, mixer):
    flags = ["--mixer", mixer, "--steps", "6", "--eval-every", "2"]
    assert run(corpus, tmp_path / "whole", *flags) == 0
    assert run(corpus, tmp_path / "parts", *flags, "--stop-after", "3") == 0
    assert len(losses(tmp_path / "parts", "train_loss")) == 3
    assert run(corpus, tmp_path / "parts", *flags, "--resume") == 0
    for column in ("train_loss", "val_loss"):
        # bit for bit: the CSV holds every digit
        assert losses(tmp_path / "parts", column) == losses(tmp_path / "whole", column)


@pytest.mark.slow
def test_ddp_with_two_processes_agrees_with_one(corpus, tmp_path):
    flags = ["--corpus", corpus, "--steps", "3", "--eval-every", "3", *TINY]
    assert main([*flags, "--out", str(tmp_path / "one")]) == 0
    env = dict(os.environ, PYTHONPATH=str(Path(aft.__file__).parent.parent), OMP_NUM_THREADS="1")
    # torchrun and its two workers get a process group of their own, so that a hang ends
    # with all three killed, not with orphaned workers.
    torchrun = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "aft.train", *flags, "--out", str(tmp_path / "two"), "--device", "cpu"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        output, _ = torchrun.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(torchrun.pid, signal.SIGKILL)
        raise
    assert torchrun.returncode == 0, output.decode(errors="replace")[-3000:]
    with open(tmp_path / "two" / "config.json") as f:
        assert '"processes": 2' in f.read()
    for column in ("train_loss", "val_loss"):
        assert losses(tmp_path / "two", column) == pytest.approx(
            losses(tmp_path / "one", column), rel=1e-5)


@pytest.mark.parametrize(
    "flags, message",
    [(["--corpus", "/no/such/file.txt"], "corpus file not found"),
     (["--window", "64"], "window 64 is not allowed"),
     (["--batch-size", "0"], "--batch-size must be at least 1")],
)
def test_bad_input_fails_before_any_work(tmp_path, capsys, flags, message):
    assert main([*TINY, "--out", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "metrics.csv").exists()


def test_unknown_mixer_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--mixer", "lstm"])
    assert exit_info.value.code != 0 and "invalid choice" in capsys.readouterr().err


def test_resume_from_a_checkpoint_of_another_shape(corpus, tmp_path, capsys):
    assert run(corpus, tmp_path, "--steps", "1") == 0
    rows = (tmp_path / "metrics.csv").read_text()
    assert run(corpus, tmp_path, "--steps", "2", "--resume", "--d-model", "48") == 2
    assert "d_model=32 (checkpoint) vs 48 (now)" in capsys.readouterr().err
    assert (tmp_path / "metrics.csv").read_text() == rows
    assert run(corpus, tmp_path / "empty", "--steps", "1", "--resume") == 2


def test_help_documents_the_flags():
    result = subprocess.run([sys.executable, "-m", "aft.train", "--help"], capture_output=True,
                            text=True, env=dict(os.environ,
                                                PYTHONPATH=str(Path(aft.__file__).parent.parent)))
    assert result.returncode == 0
    for flag in ("--mixer", "--resume", "--device", "--stop-after", "--eval-every"):
        assert flag in result.stdout


@pytest.mark.slow
def test_the_comparison_command_writes_its_result_files(corpus, tmp_path):
    """`python -m aft.compare` end to end at a toy size (the real run takes minutes)."""
    import json

    from aft.compare import main as compare

    out = tmp_path / "results"
    assert compare(["--corpus", corpus, "--steps", "2", "--seq-len", "16", "--speed-seq-len",
                    "32", "--speed-steps", "1", "--d-model", "16", "--n-layers", "1",
                    "--heads", "2", "--window", "4", "--d-bias", "4", "--batch-size", "2",
                    "--eval-every", "1", "--gen-positions", "4", "8", "--gen-tokens", "2",
                    "--sample-length", "5", "--runs", str(tmp_path / "runs"), "--out", str(out),
                    "--quiet"]) == 0
    report = json.loads((out / "compare.json").read_text())
    assert set(report["mixers"]) == {"local", "attention"}
    for mixer in ("local", "attention"):
        assert report["mixers"][mixer]["steps_per_s_long"] > 0
        assert set(report["mixers"][mixer]["generation_ms_per_token"]) == {"4", "8"}
    for name in ("compare.csv", "compare_val_loss.png", "compare_sample.txt",
                 "compare_metrics_local.csv", "compare_metrics_attention.csv"):
        assert (out / name).stat().st_size > 0
