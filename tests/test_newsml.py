"""NewsML-G2 newsItem and newsMessage, read through `feedsvc parse --json`."""

from __future__ import annotations

from .newsroom import CORPUS, one, parsed, rejected

HARBOUR = "urn:newsml:harbourwire.example:20261122:"


def test_item_with_nitf_body_maps_every_field() -> None:
    item = one(CORPUS / "g2-01-item-nitf.xml")
    assert item["format"] == "newsml-g2"
    assert item["guid"] == "urn:newsml:harbourwire.example:20261120:rowing-final"
    assert item["version"] == 1 and item["status"] == "usable"
    # contentMeta's headline wins over the NITF hl1; the summary is the drol:summary description
    assert item["title"] == "Douro crew takes the coastal eights title by a canvas"
    assert item["summary"].startswith("A late push on the last stroke")
    assert item["author"] == "Inês Valente"  # NITF byline's person, not the job title
    assert item["dateline"] == "PORTO, Nov 20"
    assert item["published"] == "2026-11-20T10:00:00+00:00"  # firstCreated
    assert item["updated"] == "2026-11-20T10:15:00+00:00"  # versionCreated
    assert item["language"] == "en-GB"
    assert item["subjects"] == ["medtop:20001026"]
    assert item["topics"] == ["sport"]
    assert item["content"] == (
        "<p>The Douro club won the coastal eights final on Friday, crossing the line a canvas "
        "ahead of the river police crew.</p>\n<h2>A slow start</h2>\n"
        "<p>The winners sat third at halfway and only <em>moved up</em> in the last 300 "
        "metres.</p>"
    )
    assert item["correction"] is None and item["ednote"] is None and item["images"] == []


def test_the_id_comes_from_the_guid_and_a_new_version_keeps_it() -> None:
    first = one(CORPUS / "g2-01-item-nitf.xml")
    second = one(CORPUS / "g2-02-item-nitf-v2-correction.xml")
    assert first["id"] == second["id"] and len(first["id"]) == 16
    assert second["version"] == 2


def test_correction_signal_and_note_for_readers_and_ednote_kept_apart() -> None:
    item = one(CORPUS / "g2-02-item-nitf-v2-correction.xml")
    note = "An earlier version gave the margin as a length; it was a canvas."
    assert item["correction"] == note
    assert item["content"].endswith(
        f'<p class="correction"><strong>Correction:</strong> {note}</p>'
    )
    assert item["ednote"].startswith("Corrects the margin")
    assert "Desk" not in item["content"] and "Desk" not in (item["summary"] or "")


def test_xhtml_body_is_sanitised_and_subject_codes_kept() -> None:
    item = one(CORPUS / "g2-03-item-xhtml-subj.xml")
    assert "<script" not in item["content"] and "alert" not in item["content"]
    assert '<a href="https://quaynews.example/fares">' in item["content"]
    assert "ignored" not in item["content"]  # the XHTML head is not body text
    assert item["author"] == "Tomasz Wrona" and item["source"] == "Quay News"
    assert item["subjects"] == ["subj:04006000"] and item["topics"] == ["business"]
    assert item["published"] == "2026-11-21T07:30:00+01:00"


def test_inline_data_body_and_language_tag() -> None:
    item = one(CORPUS / "g2-04-item-inlinedata-fr.xml")
    assert item["language"] == "fr-FR"
    assert item["content"].count("<p>") == 2
    assert item["updated"] == "2026-11-22T16:00:00+01:00" and item["published"] is None


def test_embargo_withheld_and_canceled_statuses() -> None:
    embargoed = one(CORPUS / "g2-05-item-embargo.xml")
    assert embargoed["embargo"] == "2026-11-25T00:01:00+00:00"
    assert embargoed["status"] == "usable"
    withheld = one(CORPUS / "g2-06-item-withheld.xml")
    assert withheld["status"] == "withheld" and withheld["version"] == 4
    canceled = one(CORPUS / "g2-07-item-canceled.xml")
    assert canceled["status"] == "canceled"
    assert canceled["ednote"] == "KILL: the fire was at a different pier. Do not use."
    assert canceled["content"] is None


def test_news_message_publishes_text_items_with_their_linked_pictures() -> None:
    items = parsed(CORPUS / "g2-10-message.xml")
    assert [item["guid"] for item in items] == [
        HARBOUR + "lighthouse",
        HARBOUR + "container-ship",
    ]  # the pictures, the video and the package are not items
    lighthouse, ship = items
    # linked from the text item's itemMeta/link: the web rendition, caption, credit
    assert ship["images"] == [
        {
            "url": "https://img.harbourwire.example/ship-web.jpg",
            "type": "image/jpeg",
            "width": 1024,
            "height": 640,
            "caption": "The ship is nudged alongside by three tugs at dawn.",
            "credit": "Harbour Wire/Rui Matos",
            "length": None,
        }
    ]
    # grouped with the text item in a package; no caption given: the picture's headline
    assert [image["url"] for image in lighthouse["images"]] == [
        "https://img.harbourwire.example/lens-web.png"
    ]
    assert lighthouse["images"][0]["caption"] == "The lens in the gallery"


def test_stated_broader_code_files_a_provider_code(tmp_path) -> None:
    item = one(CORPUS / "g2-08-item-broader-stated.xml")
    assert item["subjects"] == ["medtop:13000000"]  # the provider's own code is not kept
    assert item["topics"] == ["science"]


def test_missing_guid_is_one_line_with_the_line(tmp_path) -> None:
    bad = tmp_path / "noguid.xml"
    bad.write_text(
        '<?xml version="1.0"?>\n<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/">\n'
        "<contentMeta><headline>Where is my guid</headline></contentMeta></newsItem>\n"
    )
    assert (
        rejected(bad)
        == f"feedsvc: error: {bad}:2: no guid: a newsroom item needs its provider's identifier"
    )


def test_bad_version_and_unknown_status_are_refused(tmp_path) -> None:
    template = (
        '<newsItem xmlns="http://iptc.org/std/nar/2006-10-01/" guid="g1" version="{v}">'
        '<itemMeta><pubStatus qcode="{s}"/></itemMeta>'
        "<contentMeta><headline>H</headline></contentMeta></newsItem>"
    )
    bad = tmp_path / "v.xml"
    bad.write_text(template.format(v="two", s="stat:usable"))
    assert "version must be a whole number: 'two'" in rejected(bad)
    bad.write_text(template.format(v="2", s="stat:pending"))
    assert "unknown publication status 'pending'" in rejected(bad)


def test_other_xml_roots_are_named(tmp_path) -> None:
    bad = tmp_path / "feed.xml"
    bad.write_text('<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>\n')
    assert rejected(bad) == (
        f"feedsvc: error: {bad}:2: the root element <rss> is not NewsML-G2 (newsItem, "
        "newsMessage) or NITF"
    )
