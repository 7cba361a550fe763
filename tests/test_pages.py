"""The app as Streamlit runs it (AppTest: no browser)."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from gan_core.config import PRESETS


def test_dashboard_lists_every_preset() -> None:
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "dashboard.py"), default_timeout=60).run()
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["preset"]) == list(PRESETS)
    assert table.loc[table["preset"] == "digits", "dataset"].item() == "digits"
