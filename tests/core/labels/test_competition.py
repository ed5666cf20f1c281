"""core.labels.competition: the competition CSVs are read as published; bad rows are listed, good rows kept."""

from __future__ import annotations

import pytest

from core.labels.competition import CsvError, LabelRow, MetadataRow, read_labels, read_metadata

TRAIN_HEADER = "filename,url,project_id,num_frames,crowd_score,tier1,micro,nano\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_train_metadata_rows_are_typed(tmp_path):
    path = write(tmp_path, "train_metadata.csv", TRAIN_HEADER
                 + "100109.mp4,s3://x/100109.mp4,M,56,0.0625,True,False,False\n"
                 + "100290.mp4,s3://x/100290.mp4,L,29,1.0,False,True,True\n")
    result = read_metadata(path)
    assert result.has_crowd and not result.issues
    assert result.rows == [MetadataRow("100109.mp4", "s3://x/100109.mp4", "M", 56, 0.0625, True, False, False),
                           MetadataRow("100290.mp4", "s3://x/100290.mp4", "L", 29, 1.0, False, True, True)]
    assert set(result.by_filename()) == {"100109.mp4", "100290.mp4"}


def test_test_metadata_has_no_crowd_fields(tmp_path):
    path = write(tmp_path, "test_metadata.csv", "filename,url,project_id,num_frames\n100032.mp4,u,A,40\n")
    result = read_metadata(path)
    assert not result.has_crowd
    assert result.rows == [MetadataRow("100032.mp4", "u", "A", 40)]


def test_synthetic_csvs_read_cleanly(synth_data):
    train = read_metadata(synth_data / "train_metadata.csv")
    labels = read_labels(synth_data / "train_labels.csv")
    test = read_metadata(synth_data / "test_metadata.csv")
    assert not train.issues and not labels.issues and not test.issues
    assert len(train.rows) == len(labels.rows) > 0 and len(test.rows) > 0
    assert set(train.by_filename()) == set(labels.by_filename())


@pytest.mark.parametrize("text, missing", [
    ("filename,url,project_id,crowd_score,tier1,micro,nano\n", "num_frames"),
    ("filename,url,project_id,num_frames,crowd_score,micro\n", "tier1, nano"),
    ("", "filename, url, project_id, num_frames"),
])
def test_missing_columns_name_file_and_columns(tmp_path, text, missing):
    path = write(tmp_path, "train_metadata.csv", text)
    with pytest.raises(CsvError, match=f"missing column\\(s\\) {missing}") as info:
        read_metadata(path)
    assert str(path) in str(info.value)


def test_labels_missing_column_and_unreadable_file(tmp_path):
    with pytest.raises(CsvError, match="missing column\\(s\\) stalled"):
        read_labels(write(tmp_path, "train_labels.csv", "filename,label\na.mp4,1\n"))
    with pytest.raises(CsvError, match="cannot read"):
        read_labels(tmp_path / "absent.csv")


def test_row_problems_are_listed_and_good_rows_kept(tmp_path):
    path = write(tmp_path, "train_metadata.csv", TRAIN_HEADER
                 + "a.mp4,u,P,10,0.5,True,False,False\n"       # line 2: good
                 + "a.mp4,u,P,11,0.2,True,False,False\n"       # 3: duplicate
                 + "b.mp4,u,P,10,nan,True,False,False\n"       # 4: NaN score
                 + "c.mp4,u,P,10,-0.1,True,False,False\n"      # 5: negative
                 + "d.mp4,u,P,10,1.5,True,False,False\n"       # 6: > 1
                 + "e.mp4,u,,10,0.5,True,False,False\n"        # 7: missing project
                 + "f.mp4,u,P,ten,0.5,True,False,False\n"      # 8: bad frame count
                 + ",u,P,10,0.5,True,False,False\n"            # 9: no filename
                 + "g.mp4,u,P,10,0.5,maybe,False,False\n"      # 10: bad flag
                 + "h.mp4,,P,10,0.5,false,0,1\n")              # 11: good, empty url is fine
    result = read_metadata(path)
    assert [row.filename for row in result.rows] == ["a.mp4", "h.mp4"]
    assert result.rows[0].num_frames == 10
    problems = {(issue.line, issue.filename): issue.problem for issue in result.issues}
    assert problems == {
        (3, "a.mp4"): "duplicate filename (first on line 2); row ignored",
        (4, "b.mp4"): "crowd_score 'nan' is not between 0 and 1",
        (5, "c.mp4"): "crowd_score '-0.1' is not between 0 and 1",
        (6, "d.mp4"): "crowd_score '1.5' is not between 0 and 1",
        (7, "e.mp4"): "missing project_id",
        (8, "f.mp4"): "num_frames 'ten' is not a number",
        (9, ""): "missing filename",
        (10, "g.mp4"): "tier1 'maybe' is not true/false",
    }
    assert str(result.issues[0]) == f"{path}:3: a.mp4: duplicate filename (first on line 2); row ignored"


def test_label_rows(tmp_path):
    path = write(tmp_path, "train_labels.csv", "filename,stalled\na.mp4,1\nb.mp4,0\nc.mp4,2\nd.mp4,\na.mp4,0\n")
    result = read_labels(path)
    assert result.rows == [LabelRow("a.mp4", 1), LabelRow("b.mp4", 0)]
    assert [(i.line, i.problem) for i in result.issues] == [
        (4, "stalled '2' is not 0 or 1"), (5, "missing stalled"),
        (6, "duplicate filename (first on line 2); row ignored")]
