"""ninjs 1.x, 2.x and 3.x documents, read through `feedsvc parse --json`."""

from __future__ import annotations

import json

import pytest

from .newsroom import CORPUS, cli, one, parsed, rejected


def test_ninjs_1_names() -> None:
    item = one(CORPUS / "ninjs1-16-text.json")
    assert item["format"] == "ninjs-1"
    assert item["guid"] == "urn:ninjs:northsea.example:2026:wind-auction"
    assert item["title"] == "Offshore wind auction draws a record eleven bidders"  # headline
    assert item["content"].startswith("<p>Eleven consortia")  # body_html
    assert item["summary"] == "Eleven consortia bid for three new offshore wind zones."
    assert item["author"] == "Pieter de Groot" and item["dateline"] == "ROTTERDAM"
    assert item["published"] == "2026-11-20T11:00:00+00:00"  # firstcreated
    assert item["updated"] == "2026-11-20T11:20:00+00:00"  # versioncreated
    # scheme + code, and a qcode given as the code
    assert item["subjects"] == ["medtop:20000249", "medtop:04000000"]
    assert item["ednote"] == "Figures from the ministry's 11:00 briefing."
    (image,) = item["images"]  # associations as an object, renditions as an object
    assert image["url"] == "https://media.northsea.example/wind-web.jpg"
    assert (image["width"], image["height"], image["type"]) == (1280, 768, "image/jpeg")
    assert image["caption"] == "Turbines in an existing wind zone at sunset."
    assert image["credit"] == "Anouk Smit"


def test_ninjs_1_plain_text_body_and_withheld() -> None:
    item = one(CORPUS / "ninjs1-17-plain-withheld.json")
    assert item["status"] == "withheld" and item["language"] == "nl"
    assert item["content"] == (
        "<p>Vakbonden en werkgevers praten maandag verder.</p>\n"
        "<p>Een nieuwe staking is voorlopig van de baan.</p>"
    )


def test_ninjs_2_arrays() -> None:
    item = one(CORPUS / "ninjs2-18-text.json")
    assert item["format"] == "ninjs-2"
    assert item["title"] == "A fifteen-year-old leads the harbour chess open after round five"
    assert item["content"].startswith("<p>She beat the top seed with the black pieces")  # HTML
    assert item["summary"] == "She beat the top seed with the black pieces."
    assert item["author"] == "Liis Tamm" and item["source"] == "Baltic Desk"
    assert item["embargo"] == "2026-11-22T18:00:00+00:00"
    assert item["subjects"] == ["medtop:20001212", "medtop:15000000"]  # URIs reduced
    assert item["topics"] == ["sport"]
    assert item["images"][0]["caption"] == "The leader at board one."


def test_ninjs_2_correction_description_for_readers() -> None:
    first, second = one(CORPUS / "ninjs2-18-text.json"), one(CORPUS / "ninjs2-19-correction.json")
    assert first["id"] == second["id"] and second["version"] == 2
    assert second["correction"] == "She won in forty-two moves, not forty."
    assert second["content"].endswith("She won in forty-two moves, not forty.</p>")


def test_ninjs_3_camel_case() -> None:
    item = one(CORPUS / "ninjs3-20-text.json")
    assert item["format"] == "ninjs-3"
    assert item["version"] == 5 and item["language"] == "de-AT"
    assert item["published"] == "2026-11-23T06:00:00+01:00"  # firstCreated
    assert item["updated"] == "2026-11-23T09:45:00+01:00"  # versionCreated
    assert item["ednote"] == "Grafik folgt." and item["source"] == "Alpenpost"
    assert item["subjects"] == ["medtop:20000418", "subj:13004000"]
    assert item["topics"] == ["science"]
    canceled = one(CORPUS / "ninjs3-21-canceled.json")
    assert canceled["status"] == "canceled" and canceled["content"] is None
    embargoed = one(CORPUS / "ninjs3-23-embargo-v3keys.json")
    assert embargoed["embargo"] == "2026-11-26T10:00:00+01:00"  # embargoedUntil
    assert embargoed["subjects"] == ["medtop:11000000"] and embargoed["topics"] == ["world"]


def test_a_picture_alone_is_no_item() -> None:
    assert parsed(CORPUS / "ninjs3-22-picture-only.json") == []


def test_ninjs_is_detected_on_stdin_and_in_a_txt_file(tmp_path) -> None:
    data = (CORPUS / "ninjs3-20-text.json").read_bytes()
    result = cli("parse", "--json", "-", stdin=data)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "ninjs-3"
    odd = tmp_path / "story.txt"
    odd.write_bytes(data)
    assert one(odd)["format"] == "ninjs-3"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"uri": "u1", "headline": ["a"]}', "'headline' must be a string"),
        ('{"uri": "u1", "headlines": "a"}', "'headlines' must be a list of objects"),
        ('{"uri": "u1", "headline": "h", "version": "v2"}', "version must be a whole number"),
        ('{"uri": "u1", "headline": "h", "versioncreated": "today"}', "is not a date"),
        ('{"uri": "u1", "headline": "h", "language": "english please"}', "BCP 47"),
        ('{"uri": "u1", "body_text": "no headline"}', "item 'u1' has no headline"),
        ('{"headline": "h"}', "not a ninjs document"),
        ('{"uri": "u1", "headline": "h",', "not valid JSON"),
    ],
)
def test_bad_ninjs_is_one_line(tmp_path, document, message) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(document)
    line = rejected(bad)
    assert line.startswith(f"feedsvc: error: {bad}") and message in line
