"""The CLI under awkward conditions: signals, killed runs, re-runs into the input folder, broken models, links
in input folders, option parsing; see docs/bad_inputs.md."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import speechlike
from se_app.cli import main, parser


def _env(tiny_models):
    return {**os.environ, "SE_APP_MODELS": str(tiny_models), "OMP_NUM_THREADS": "1"}


def _parts(folder):
    return [p for p in folder.rglob("*") if ".part" in p.name]


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly_and_a_rerun_resumes(tiny_models, tmp_path, signum, code):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    sf.write(str(inp / "f0.wav"), np.tile(speechlike(1.0, 48000), 40), 48000, subtype="PCM_16")
    for k in range(1, 5):
        shutil.copy(inp / "f0.wav", inp / f"f{k}.wav")
    cmd = [sys.executable, "-m", "se_app", "enhance", str(inp), "-o", str(out), "-q"]
    p = subprocess.Popen(cmd, env=_env(tiny_models), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "f0.wav").exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    p.send_signal(signum)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == code, err
    assert "Traceback" not in err
    lines = [s for s in err.splitlines() if "interrupted" in s]
    assert len(lines) == 1 and "of 5 files enhanced" in lines[0] and "again to resume" in lines[0]
    done = len(list(out.glob("*.wav")))
    assert 1 <= done < 5 and not _parts(out)  # the file in progress was discarded with its temporary
    p = subprocess.run(cmd, env=_env(tiny_models), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and f"{5 - done} enhanced, 0 failed, {done} skipped" in p.stderr


def test_rerun_removes_stale_temporaries_of_dead_runs_only(tiny_registry, tmp_path, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    sf.write(str(inp / "a.wav"), speechlike(0.3), 16000, subtype="PCM_16")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (out / "sub").mkdir(parents=True)
    stale = [out / "sub" / f".b.wav.{dead}-0123abcd.part.wav", out / ".a.wav.x7_kq2mz.part.wav"]  # and mkstemp's
    live = out / f".c.wav.{os.getpid()}-0123abcd.part.wav"  # a run still going
    for p in stale + [live]:
        p.write_bytes(b"\0" * 100)
    assert main(["-q", "enhance", str(inp), "-o", str(out)]) == 0
    assert not any(p.exists() for p in stale) and live.exists()
    assert "interrupted run" in capsys.readouterr().err


@pytest.mark.parametrize("out_rel,suffix", [("enhanced", ""), ("enhanced", "_enh"), (".", "_enh")])
def test_output_inside_the_input_folder_is_never_an_input(tiny_registry, tmp_path, capsys, out_rel, suffix):
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    sf.write(str(inp / "x.wav"), speechlike(0.3), 16000)
    sf.write(str(inp / "sub" / "y.wav"), speechlike(0.3, seed=1), 16000)
    args = ["-q", "enhance", str(inp), "-o", str(inp / out_rel), "--suffix", suffix]
    assert main(args) == 0 and "2 enhanced, 0 failed, 0 skipped" in capsys.readouterr().err
    before = sorted(p.relative_to(inp) for p in inp.rglob("*"))
    for _ in range(2):
        assert main(args) == 0 and "0 enhanced, 0 failed, 2 skipped" in capsys.readouterr().err
    assert sorted(p.relative_to(inp) for p in inp.rglob("*")) == before
    assert not list(inp.rglob("enhanced/enhanced")) and not list(inp.rglob("*_enh_enh*"))


@pytest.mark.parametrize("content,why", [(b"", "the file is empty"), (b"hello, not a model\n", "torch.save")])
def test_model_that_is_not_a_checkpoint(tiny_registry, tmp_path, capsys, content, why):
    model = tmp_path / "model.pt"
    model.write_bytes(content)
    sf.write(str(tmp_path / "a.wav"), speechlike(0.3), 16000)
    assert main(["enhance", str(tmp_path / "a.wav"), "-o", str(tmp_path / "o"), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(model) in err and "not a se_app checkpoint" in err and why in err


def test_links_in_input_folders_are_counted(tiny_registry, tmp_path, capsys):
    inp = tmp_path / "in"
    inp.mkdir()
    sf.write(str(inp / "a.wav"), speechlike(0.3), 16000)
    os.symlink("missing.wav", inp / "broken.wav")
    os.symlink("self.wav", inp / "self.wav")
    os.symlink(".", inp / "loop")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", inp / "other")
    assert main(["-q", "enhance", str(inp), "-o", str(tmp_path / "o")]) == 0
    assert ("1 enhanced, 0 failed, 0 skipped, 4 links ignored (1 broken link, 1 folder link, 2 link loops)"
            in capsys.readouterr().err)


def test_options_after_the_subcommand_and_version(capsys):
    for args in (["enhance", "x", "-o", "y", "-q", "-v"], ["-q", "-v", "enhance", "x", "-o", "y"]):
        a = parser().parse_args(args)
        assert a.quiet and a.verbose
    a = parser().parse_args(["enhance", "x", "-o", "y"])
    assert not a.quiet and not a.verbose
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["--version"])
    assert e.value.code == 0 and "se-app 0.1.0" in capsys.readouterr().out
    assert "debug logging" in parser().format_help()


@pytest.mark.parametrize("value", ["-10", "nan", "inf", "loud"])
def test_atten_limit_must_be_finite_and_not_negative(value, capsys):
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["enhance", "x", "-o", "y", "--atten-limit", value])
    assert e.value.code == 2 and "--atten-limit" in capsys.readouterr().err
    assert parser().parse_args(["enhance", "x", "-o", "y", "--atten-limit", "0"]).atten_limit == 0


def test_train_and_make_testset_options_have_help_with_defaults():
    p = parser()
    sub = next(a for a in p._actions if a.dest == "cmd").choices
    for name in ("train", "make-testset"):
        for action in sub[name]._actions:
            assert action.help, f"{name} {action.option_strings} has no help"
    train, mk = (" ".join(sub[n].format_help().split()) for n in ("train", "make-testset"))
    assert "(default: 6000)" in train and "(default: 256)" in train and "(default: 1)" in train
    assert "(default: -5 0 5 10)" in mk and "(default: test)" in mk
