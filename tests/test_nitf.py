"""NITF 3.x documents, standalone, read through `feedsvc parse --json`."""

from __future__ import annotations

from .newsroom import CORPUS, one, rejected


def test_standalone_nitf_maps_every_field() -> None:
    item = one(CORPUS / "nitf-11-basic.xml")
    assert item["format"] == "nitf"
    assert item["guid"] == "ESTUARYPRESS:EP-2026-11-20-0042"  # regsrc:id-string
    assert item["version"] == 1 and item["status"] == "usable"
    assert item["title"] == "Tidal turbine prototype survives its first winter storm"  # hl1
    assert item["author"] == "Maeve Gallagher" and item["source"] == "Estuary Press"
    assert item["dateline"] == "CORK, Nov 20"
    assert item["summary"] == "Engineers say the blades came through gusts of 120 km/h undamaged."
    assert item["published"] == "2026-11-20T14:15:00+00:00"  # date.issue
    assert item["language"] == "en-US"
    assert item["subjects"] == ["subj:13000000"] and item["topics"] == ["science"]
    assert item["images"] == [
        {
            "url": "https://photos.estuarypress.example/turbine.jpg",
            "type": "image/jpeg",
            "width": 1200,
            "height": 800,
            "caption": "The turbine hub is lifted for inspection.",
            "credit": "Estuary Press/Colm Byrne",
            "length": None,
        }
    ]
    # the not-for-publication note goes to editors, never into the content
    assert item["ednote"] == "Photo embargoed for print until Saturday."
    assert "embargoed for print" not in item["content"]
    assert "hub is lifted" not in item["content"]  # the caption belongs to the image
    assert item["content"].count("<p>") == 2


def test_iso_8859_1_with_a_doctype_naming_a_remote_dtd_reads_correctly() -> None:
    item = one(CORPUS / "nitf-12-latin1-doctype.xml")
    assert item["title"] == "Café owners on the quay protest against the new terrace fee"
    assert item["author"] == "Por Begoña Ibáñez"
    # &nbsp; (an HTML entity the DTD would define) is read as the character
    assert "Señores, the fee would triple\u00a0from January" in item["content"]
    assert item["published"] == "2026-11-21T09:00:00+01:00"
    assert item["guid"] == "MERIDIANA:MRD-77120" and item["subjects"] == []


def test_correction_with_note_and_editor_message() -> None:
    first, second = one(CORPUS / "nitf-11-basic.xml"), one(CORPUS / "nitf-13-correction-v2.xml")
    assert second["id"] == first["id"] and second["version"] == 2
    assert second["correction"] == "The storm's gusts reached 120 km/h, not 150 km/h."
    assert "reached 120 km/h, not 150 km/h" in second["content"]
    assert second["ednote"] == "Replaces the earlier version: wind speed corrected."


def test_embargoed_release_date_and_canceled_status() -> None:
    embargoed = one(CORPUS / "nitf-14-embargoed.xml")
    assert embargoed["status"] == "usable"  # embargoed is usable once its time comes
    assert embargoed["embargo"] == "2026-11-26T07:00:00+00:00"
    assert embargoed["subjects"] == ["subj:04008000"] and embargoed["topics"] == ["business"]
    canceled = one(CORPUS / "nitf-15-canceled.xml")
    assert canceled["status"] == "canceled" and canceled["version"] == 2
    assert canceled["id"] == one(CORPUS / "nitf-12-latin1-doctype.xml")["id"]
    assert canceled["ednote"] == "KILL: the fee proposal was withdrawn before the protest."


def test_nitf_without_doc_id_or_headline_is_refused(tmp_path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<nitf>\n<head/><body><body.content><p>x</p></body.content></body></nitf>")
    assert rejected(bad).endswith("no guid: a newsroom item needs its provider's identifier")
    bad.write_text('<nitf><head><docdata><doc-id id-string="A1"/></docdata></head></nitf>')
    assert rejected(bad).endswith("item 'A1' has no headline")
