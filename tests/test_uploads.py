"""Uploaded CSVs of 2D points: saved inside runs/uploads, validated once, idempotent."""

from pathlib import Path

import pytest
import tomllib

from gan_core.config import ConfigError, TrainConfig
from gan_core.data import MAX_CSV_POINTS, load_points_csv
from gan_core.runs import uploads
from gan_core.runs.uploads import MAX_UPLOAD_BYTES, save_points_upload

GOOD = b"0,0\n1,2\n-3.5,4e-1\n"


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().parent == (folder / "uploads").resolve()


def test_valid_file_is_saved_under_uploads_and_trains_as_points(tmp_path: Path) -> None:
    path = save_points_upload("My Points.csv", GOOD, runs_dir=tmp_path)
    assert _inside(path, tmp_path)
    assert path.name.startswith("my-points-") and path.suffix == ".csv"
    assert path.read_bytes() == GOOD
    assert load_points_csv(path).size == 3
    assert TrainConfig.from_dict({"dataset": "points", "points_csv": str(path)}).points_csv == str(path)


def test_header_row_is_accepted(tmp_path: Path) -> None:
    path = save_points_upload("pts.csv", b"x,y\n0,1\n1,0\n", runs_dir=tmp_path)
    assert load_points_csv(path).size == 2


def test_default_folder_is_the_runs_dir(isolated_env: dict[str, Path]) -> None:
    path = save_points_upload("p.csv", GOOD)
    assert _inside(path, isolated_env["GAN_RUNS_DIR"])


def test_bad_line_is_refused_with_its_line_and_the_users_file_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        save_points_upload("data/mine.csv", b"x,y\n1,2\n3,4\n5,abc\n", runs_dir=tmp_path)
    assert info.value.field == "points_csv"
    assert "line 4" in str(info.value) and "mine.csv" in str(info.value)
    assert not any((tmp_path / "uploads").iterdir())  # the invalid file was removed again


@pytest.mark.parametrize("name", ["../x.csv", "../../etc/passwd", "/tmp/abs.csv", "..\\..\\win.csv", "", ".", "..",
                                  "ünïcödé ✓.csv", "✓✓✓", "a" * 500 + ".csv", "\x00.csv", ".hidden.csv"])
def test_any_name_stays_inside_the_uploads_folder(tmp_path: Path, name: str) -> None:
    path = save_points_upload(name, GOOD, runs_dir=tmp_path / "runs")
    assert _inside(path, tmp_path / "runs")
    assert not path.name.startswith(".") and path.name.endswith(".csv") and len(path.name) <= 60
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_nameless_upload_is_called_points(tmp_path: Path) -> None:
    assert save_points_upload("✓.csv", GOOD, runs_dir=tmp_path).name.startswith("points-")


def test_too_big_is_refused_before_touching_the_disk(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        save_points_upload("big.csv", b"1,2\n" * (MAX_UPLOAD_BYTES // 4 + 1), runs_dir=tmp_path)
    assert info.value.field == "points_csv" and "MB" in str(info.value)
    assert not (tmp_path / "uploads").exists()


def test_same_content_same_path_and_different_content_another(tmp_path: Path) -> None:
    first = save_points_upload("p.csv", GOOD, runs_dir=tmp_path)
    assert save_points_upload("p.csv", GOOD, runs_dir=tmp_path) == first
    other = save_points_upload("p.csv", GOOD + b"5,6\n", runs_dir=tmp_path)
    assert other != first and first.read_bytes() == GOOD
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == sorted([first.name, other.name])


def test_streamlits_own_upload_limit_is_the_apps() -> None:
    """Streamlit holds a whole upload in memory before the app's check runs: its limit (in MiB) must be ours."""
    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1024 * 1024 == MAX_UPLOAD_BYTES


@pytest.mark.slow
def test_a_file_of_millions_of_rows_is_refused_at_the_row_cap_naming_the_field_and_the_limit(tmp_path: Path) -> None:
    data = b"1,2\n" * (MAX_UPLOAD_BYTES // 4)  # 5.2 M rows: the most rows the size limit lets through
    with pytest.raises(ConfigError) as info:
        save_points_upload("many.csv", data, runs_dir=tmp_path)
    message = str(info.value)
    assert info.value.field == "points_csv" and "\n" not in message
    assert f"more than {MAX_CSV_POINTS:,} points (line {MAX_CSV_POINTS + 1:,})" in message and "many.csv" in message
    assert not any((tmp_path / "uploads").iterdir())


def test_a_refused_file_is_refused_again_with_the_same_message_without_reading_it_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = b"x,y\n1,2\nnot,numbers\n"
    with pytest.raises(ConfigError) as first:
        save_points_upload("a.csv", bad, runs_dir=tmp_path)
    monkeypatch.setattr(uploads, "load_points_csv", lambda path: pytest.fail("parsed again"))
    with pytest.raises(ConfigError) as again:
        save_points_upload("b.csv", bad, runs_dir=tmp_path)  # another name, the same bytes: the user's name shown
    assert str(again.value) == str(first.value).replace("a.csv", "b.csv") and "line 3" in str(again.value)
    assert not any((tmp_path / "uploads").iterdir())


def test_an_upload_still_being_checked_is_not_taken_as_valid_by_another_browser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three students uploading the same refused file at once: each must get the refusal, none "ready"."""
    bad = b"1,2\nnot,numbers\n"
    real_loader = uploads.load_points_csv
    meanwhile: list[str] = []

    def slow_check(path: Path) -> object:
        if not meanwhile:  # while the first browser's file is being read, a second browser sends the same bytes
            meanwhile.append("checking")
            with pytest.raises(ConfigError) as second:
                save_points_upload("points.csv", bad, runs_dir=tmp_path)
            meanwhile.append(str(second.value))
        return real_loader(path)

    monkeypatch.setattr(uploads, "load_points_csv", slow_check)
    with pytest.raises(ConfigError, match="line 2"):
        save_points_upload("points.csv", bad, runs_dir=tmp_path)
    assert len(meanwhile) == 2 and "points.csv line 2" in meanwhile[1]
    assert not any((tmp_path / "uploads").iterdir())
