"""`letterbench run` end to end on the real partial data, and `letterbench predict` on drawn letters."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import letters_folder
from PIL import Image

from letterbench.cli.main import main


def test_a_real_world_folder_from_a_spreadsheet_or_a_zip_of_a_mac_reads_as_meant(tmp_path):
    """labels.csv saved with a BOM (Excel's UTF-8) keeps its `file` column; an archiver's
    __MACOSX folder and hidden folders are not letters; unreadable images are counted aloud."""
    from letterbench.evaluation.real_world import load_real_world

    folder = letters_folder(tmp_path / "mine", per_letter=1)
    (folder / "__MACOSX").mkdir()
    (folder / ".hidden").mkdir()
    Image.new("L", (40, 40), 255).save(folder / "a" / "blank.png")  # no letter in it
    with pytest.warns(UserWarning, match=r"1 of 27 images hold no readable letter \(blank.png\)"):
        found = load_real_world(folder)
    assert len(found) == 27 and found.readable.sum() == 26
    letters = [p for p in sorted(folder.glob("?/*.png")) if p.name != "blank.png"]
    rows = ["file,label"] + [f"{p.relative_to(folder)},{p.parent.name}" for p in letters]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    assert len(load_real_world(folder)) == 26


def test_hidden_files_in_letter_folders_are_not_letters_and_unread_formats_are_named(tmp_path):
    from letterbench.evaluation.real_world import load_real_world

    folder = tmp_path / "set" / "l"
    folder.mkdir(parents=True)
    letter = np.full((40, 40), 255, np.uint8)
    letter[6:34, 17:23] = 0
    Image.fromarray(letter).save(folder / "one.png")
    (folder / "._one.png").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (folder / "two.heic").write_bytes(b"x")
    with pytest.warns(UserWarning, match=r"skipped 1 files in formats letterbench does not read \(.heic\)"):
        found = load_real_world(tmp_path / "set")
    assert len(found) == 1 and found.readable.all()  # the ._ file is no unreadable letter


def _letter_folder(folder: Path, table: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    letter = np.full((40, 40), 255, np.uint8)
    letter[6:34, 17:23] = 0
    for name in ("x.png", "y.png"):
        Image.fromarray(letter).save(folder / name)
    (folder / "labels.csv").write_bytes(table)
    return folder


@pytest.mark.parametrize(
    "table, expect",
    [
        (b"file,label,label\nx.png,a,b\n", "the column 'label' appears 2 times"),
        (b"file,label\nx.png,a\ny.png,b\nx.png,c\n", "lines 2 and 4: 'x.png' is labelled both a and c"),
        (b"file;label\nx.png;a\n", "separate the columns with commas"),
        (b"file\tlabel\nx.png\ta\n", "separate the columns with commas"),
        (b"name,letter\nx.png,a\n", "found 'name', 'letter'"),
        ("file,label\nx.png,\xe9\n".encode("latin-1"), "not UTF-8 text; save it as UTF-8"),
    ],
)
def test_a_labels_file_that_would_mislabel_is_refused_naming_what_it_found(tmp_path, capsys, table, expect):
    folder = _letter_folder(tmp_path / "set", table)
    code = main(["run", "--preset", "smoke", "--real-world", str(folder), "--out", str(tmp_path / "study")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("letterbench: error:") and expect in err[0], err
    assert not (tmp_path / "study").exists()


def test_a_labels_file_with_spaced_capital_headers_and_a_repeated_row_is_read(tmp_path):
    from letterbench.evaluation.real_world import load_real_world

    folder = _letter_folder(tmp_path / "set", b"File , Label\nx.png,l\ny.png,L\nx.png,l\n\n")
    with pytest.warns(UserWarning, match="line 4 repeats line 2; 'x.png' is counted once"):
        found = load_real_world(folder)
    assert len(found) == 2 and list(found.labels) == [11, 11]


@pytest.mark.parametrize(
    "damage, expect",
    [
        (lambda p, lab, r: (p[:, :10], lab, r), "not (images, 26)"),
        (lambda p, lab, r: (p, lab[:-1], r), "labels (1,)"),
        (lambda p, lab, r: (np.full_like(p, np.nan), lab, r), "not numbers from 0 to 1"),
        (lambda p, lab, r: (p[:0], lab[:0], r[:0]), "not (images, 26)"),
    ],
)
def test_damaged_real_world_readings_are_named_in_one_line(tmp_path, capsys, damage, expect):
    import sys

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "main-run"
    sys.path.insert(0, str(fixture.parent))
    from make_main_run import tiny_data

    run = Path(shutil.copytree(fixture, tmp_path / "run"))
    folder = _letter_folder(tmp_path / "set", b"file,label\nx.png,l\ny.png,i\n")
    data = tiny_data(tmp_path / "emnist")
    assert (
        main(["evaluate", str(run), "--data-dir", str(data), "--no-plots", "--real-world", str(folder)]) == 0
    )
    with np.load(run / "real-world-train.npz") as f:
        arrays = {k: f[k] for k in f.files}
    probs, labels, readable = damage(arrays["probs"], arrays["labels"], arrays["readable"])
    np.savez(
        run / "real-world-train.npz", probs=probs, labels=labels, readable=readable, folder=arrays["folder"]
    )
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("letterbench: error:") and "damaged real-world readings" in err[0]
    )
    assert expect in err[0] and "real-world-train.npz" in err[0]


@pytest.mark.parametrize("how", ["link", "parent"])
def test_a_labels_file_naming_an_image_outside_its_folder_says_so(tmp_path, capsys, how):
    """A link to an image elsewhere (which `ls` shows in the folder) or a ``../`` name is refused
    as pointing outside the folder, with the fix, not as a missing image."""
    elsewhere = _letter_folder(tmp_path / "elsewhere", b"file,label\nx.png,l\n")
    folder = _letter_folder(tmp_path / "set", b"file,label\nx.png,l\next.png,l\n")
    if how == "link":
        (folder / "ext.png").symlink_to(elsewhere / "y.png")
    else:
        (folder / "labels.csv").write_bytes(b"file,label\nx.png,l\n../elsewhere/y.png,l\n")
    code = main(["run", "--preset", "smoke", "--real-world", str(folder), "--out", str(tmp_path / "study")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "line 3" in err[0] and "outside" in err[0], err
    assert "copy the image itself into the folder" in err[0] and not (tmp_path / "study").exists()
