"""`letterbench run` end to end on the real partial data, and `letterbench predict` on drawn letters."""

from __future__ import annotations

import pytest

from letterbench.cli.main import main


@pytest.mark.parametrize(
    "encode, expect",
    [
        (lambda text: text.replace("ResNet", "R\xe9sNet").encode("latin-1"), "not UTF-8"),
        (lambda text: b"\xef\xbb\xbf" + text.encode(), None),  # a byte-order mark: read as UTF-8
    ],
)
def test_a_recipe_saved_in_another_encoding_gets_one_line(tmp_path, capsys, encode, expect):
    from importlib import resources

    text = "# ResNet\n" + resources.files("letterbench.recipes").joinpath("smallcnn.toml").read_text()
    (tmp_path / "mine.toml").write_bytes(encode(text))
    from letterbench.recipes import load_recipe

    if expect is None:
        assert load_recipe(str(tmp_path / "mine.toml")).model == "smallcnn"
        return
    code = main(["train", "--recipe", str(tmp_path / "mine.toml"), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and expect in err[0] and "save it as UTF-8" in err[0]
