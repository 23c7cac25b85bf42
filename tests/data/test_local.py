"""Local copies: ``fedsparse data import`` into the data root, ``fedsparse data info``,
and relative ``data.path`` resolved against the YAML file's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsparse.cli import main
from fedsparse.config import load_config


def test_import_puts_a_checked_copy_in_the_data_root(monkeypatch, tmp_path: Path, mnist_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FEDSPARSE_DATA", str(tmp_path / "root"))
    assert main(["data", "import", "mnist", str(mnist_dir)]) == 0
    copied = sorted(p.name for p in (tmp_path / "root" / "mnist").iterdir())
    assert copied == sorted(p.name for p in mnist_dir.glob("*-ubyte.gz"))
    assert main(["data", "info"]) == 0
    assert f"mnist: local copy {tmp_path / 'root' / 'mnist'}" in capsys.readouterr().out


def test_a_folder_that_is_not_a_dataset_is_refused_in_one_line(monkeypatch, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FEDSPARSE_DATA", str(tmp_path / "root"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert main(["data", "import", "mnist", str(tmp_path / "half")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "missing" in err[0]
    assert not (tmp_path / "root" / "mnist").exists()


def test_a_relative_data_path_is_relative_to_the_yaml_file(tmp_path: Path, mnist_dir: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "local-mnist").symlink_to(mnist_dir)
    config = tmp_path / "configs" / "mine.yaml"
    config.write_text("data: {dataset: mnist, path: ../local-mnist}\nmodel: {name: mlp}\n")
    assert load_config(config).data.path == str((tmp_path / "local-mnist").resolve())
    with pytest.raises(Exception, match="does not exist"):
        load_config(config, ["data.path=not-here"])  # --set: relative to the working directory
