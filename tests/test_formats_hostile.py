"""Hostile XML and JSON: each attack is refused in one line (or read correctly), nothing is
stored, no file is read and no connection is made on the document's say-so."""

from __future__ import annotations

import socket

import pytest

from feedsvc.cli import main
from feedsvc.store import open_store as open_engine

from .conftest import TOKEN
from .newsroom import CORPUS, cli, one, rejected

NAR = 'xmlns="http://iptc.org/std/nar/2006-10-01/"'


def item(body: str = "<headline>H</headline>", prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>\n{prolog}\n<newsItem {NAR} guid="g-1" version="1">\n'
        f"<contentMeta>{body}</contentMeta></newsItem>\n"
    ).encode()


LAUGHS = "".join(f'<!ENTITY l{n} "{("&l" + str(n - 1) + ";") * 10}">' for n in range(1, 10))
ATTACKS: dict[str, tuple[bytes, str]] = {
    "billion laughs": (
        item("<headline>&l9;</headline>", f'<!DOCTYPE newsItem [<!ENTITY l0 "lol">{LAUGHS}]>'),
        "entity",  # libxml2 stops the amplification itself, else the declaration is refused
    ),
    "external entity": (
        item(
            "<headline>&secret;</headline>",
            '<!DOCTYPE newsItem [<!ENTITY secret SYSTEM "file:///etc/passwd">]>',
        ),
        "the DOCTYPE declares entity 'secret'",
    ),
    "external parameter entity": (
        item(prolog='<!DOCTYPE newsItem [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'),
        "the DOCTYPE declares entity 'p'",
    ),
    "deep nesting": (
        item("<headline>H</headline>" + "<x>" * 5000 + "</x>" * 5000),
        "not well-formed XML: Excessive depth in document",
    ),
    "huge attribute": (
        item(f'<headline a="{"y" * (11 << 20)}">H</headline>'),
        "not well-formed XML",
    ),
    "undefined entity": (
        item("<headline>&bogus;</headline>"),
        "not well-formed XML: Entity 'bogus' not defined",
    ),
    "declared encoding is not the bytes'": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<nitf><head/><body>caf\xe9</body></nitf>'.encode(
            "latin-1"
        ),
        "not well-formed XML",
    ),
    "unknown encoding": (
        b'<?xml version="1.0" encoding="x-klingon"?>\n<nitf/>',
        "not well-formed XML",
    ),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_attack_is_refused_in_one_line(tmp_path, attack) -> None:
    data, message = ATTACKS[attack]
    bad = tmp_path / "attack.xml"
    bad.write_bytes(data)
    line = rejected(bad)
    assert line.startswith(f"feedsvc: error: {bad}") and message in line
    assert len(line) < 300


def test_a_dtd_named_by_a_local_path_is_never_read(tmp_path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED FROM DISK">')
    doc = tmp_path / "doc.xml"
    doc.write_bytes(item("<headline>A &leak;</headline>", f'<!DOCTYPE newsItem SYSTEM "{dtd}">'))
    line = rejected(doc)  # had the DTD been read, the entity would be defined
    assert "entity &leak; is not defined" in line and ":4:" in line
    doc.write_bytes(item("<headline>Fine</headline>", f'<!DOCTYPE newsItem SYSTEM "{dtd}">'))
    assert one(doc)["title"] == "Fine"


def test_a_dtd_named_by_url_is_never_fetched(tmp_path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
        doc = tmp_path / "doc.xml"
        prolog = f'<!DOCTYPE newsItem SYSTEM "http://127.0.0.1:{port}/g2.dtd">'
        doc.write_bytes(item("<headline>Fine &amp; dandy</headline>", prolog))
        assert one(doc)["title"] == "Fine & dandy"
        with pytest.raises(TimeoutError):  # nobody knocked
            listener.accept()


def test_xinclude_is_not_followed(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    doc = tmp_path / "doc.xml"
    body = (
        '<headline>H</headline><description role="drol:summary">'
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{secret}" parse="text"/>'
        "</description>"
    )
    doc.write_bytes(item(body))
    assert "SECRET" not in str(one(doc))


def test_html_entities_are_read_and_latin1_is_decoded() -> None:
    item = one(CORPUS / "nitf-12-latin1-doctype.xml")
    assert "Señores" in item["content"] and "\u00a0" in item["content"]


def test_deeply_nested_json_is_one_line(tmp_path) -> None:
    bad = tmp_path / "deep.json"
    bad.write_text('{"uri": "u", "headline": "h", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "JSON nested too deeply" in rejected(bad)


def test_attacks_store_nothing(runner, settings, tmp_path) -> None:
    for number, (data, _) in enumerate(ATTACKS.values()):
        (tmp_path / f"attack-{number}.xml").write_bytes(data)
    result = runner.invoke(main, ["ingest", str(tmp_path)])
    assert result.exit_code == 1
    assert f"0 new, 0 updated, 0 unchanged; {len(ATTACKS)} rejected" in result.stdout, result.stdout
    assert len(result.stderr.splitlines()) == len(ATTACKS)
    store = open_engine(settings.db)
    try:
        assert list(store.item_ids()) == []
    finally:
        store.close()


def test_attacks_posted_to_the_api_are_400_and_store_nothing(client, settings) -> None:
    for data, message in ATTACKS.values():
        if len(data) > 1 << 20:
            continue  # past the API's body limit: 413 (test_api)
        response = client.post(
            "/api/items",
            data=data,
            content_type="application/vnd.iptc.g2.newsitem+xml",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 400, response.data
        assert message in response.get_data(as_text=True)
    store = open_engine(settings.db)
    try:
        assert list(store.item_ids()) == []
    finally:
        store.close()


def test_no_traceback_for_binary_garbage(tmp_path) -> None:
    bad = tmp_path / "garbage.xml"
    bad.write_bytes(b"\x00\xff" * 1000)
    assert "not well-formed XML" in rejected(bad)
    result = cli("parse", "-", stdin=b"<?xml version='1.0'?><newsItem")
    assert result.exit_code == 1 and "Traceback" not in result.output
