"""ninjs, IPTC's news in JSON: 1.x (`headline`, `body_html`, `versioncreated`, `subject`,
`associations` as an object), 2.x (`headlines[]`, `bodies[]`, `subjects[]`, lowercase dates) and
3.x (camelCase: `versionCreated`, `pubStatus`, `embargoedUntil`, `edNote`...). One document is
one news object; a text object becomes an `Item`, the pictures among its `associations` its
images. A picture or other non-text object alone gives no item.

uri -> guid, version, headline(s) -> title, body -> content (HTML, else plain text),
description(s) (role summary/abstract, else the first) -> summary, a description with role
`correction` -> the correction note for readers, by/byline -> author, infosource(s) -> source,
located -> dateline, firstcreated -> published, versioncreated -> updated, embargoed ->
embargo, pubstatus -> status, language, ednote -> editor's note, subject(s) IPTC codes (URIs
reduced to `medtop:`/`subj:`)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from .errors import DocumentError
from .jsonlines import Fail
from .model import Image, Item
from .newsroom import Story, to_item

FORMAT = "ninjs"
TEXT_TYPES = ("text", "composite", None)
PICTURE_TYPES = ("picture", "graphic")
# Keys only ninjs 3 has (its camelCase), and keys 2 introduced (arrays in place of 1's strings).
_V3_KEYS = frozenset(
    [
        "versionCreated",
        "firstCreated",
        "pubStatus",
        "edNote",
        "embargoedUntil",
        "contentCreated",
        "altIds",
        "infoSources",
        "copyrightHolder",
        "copyrightNotice",
        "representationType",
    ]
)
_V2_KEYS = frozenset(("headlines", "bodies", "descriptions", "subjects", "by", "infosources"))
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SUMMARY_ROLES = ("summary", "abstract", "lead")


def is_ninjs(record: object) -> bool:
    """A JSON document that looks like ninjs: an object with a `uri`."""
    return isinstance(record, dict) and isinstance(record.get("uri"), str)


def ninjs_version(record: Mapping[str, object]) -> int:
    """The major ninjs version a document follows: stated in `standard`, else told by its keys."""
    standard = record.get("standard") or record.get("$standard")
    if isinstance(standard, dict) and str(standard.get("version", ""))[:1] in "123":
        return int(str(standard["version"])[0])
    if _V3_KEYS.intersection(record):
        return 3
    if _V2_KEYS.intersection(record) or isinstance(record.get("associations"), list):
        return 2
    return 1


def load(text: str, name: str) -> dict:
    """A ninjs document's object, or a one-line error."""
    try:
        record = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as error:
        raise DocumentError(f"not valid JSON: {error.msg}", name, error.lineno) from None
    except RecursionError:
        raise DocumentError("JSON nested too deeply", name) from None
    if not is_ninjs(record):
        raise DocumentError("not a ninjs document: a JSON object with a 'uri' is expected", name)
    return record


def parse_ninjs(text: str, name: str) -> list[Item]:
    """The item of one ninjs document (none for a picture alone)."""
    return parse_record(load(text, name), name)


def parse_record(record: dict, name: str) -> list[Item]:
    """The item of a ninjs object (none for a picture alone)."""

    def fail(message: str) -> DocumentError:
        return DocumentError(message, name)

    reader = _Reader(record, fail)
    if reader.string("type") not in TEXT_TYPES:
        return []
    v3 = ninjs_version(record) == 3
    story = Story(
        guid=reader.string("uri"),
        version=reader.string("version"),
        title=reader.string("headline") or reader.valued("headlines", ("main", "")),
        author=reader.string("by") or reader.string("byline"),
        dateline=reader.string("located"),
        published=reader.string("firstCreated" if v3 else "firstcreated"),
        updated=reader.string("versionCreated" if v3 else "versioncreated"),
        embargo=reader.string("embargoedUntil" if v3 else "embargoed"),
        status=reader.string("pubStatus" if v3 else "pubstatus"),
        language=reader.string("language"),
    )
    story.ednotes = [reader.string("edNote" if v3 else "ednote") or ""]
    story.source = _names(reader.objects("infoSources" if v3 else "infosources"))
    story.source = story.source or _names(reader.objects("infosource"))
    _bodies(reader, story)
    _descriptions(reader, story)
    for subject in reader.objects("subjects") + reader.objects("subject"):
        story.subjects.append(_subject_code(subject))
    story.images = [_image(a, fail) for a in _associations(reader) if _is_picture(a)]
    return [to_item(story, name)]


class _Reader:
    """Typed access to a ninjs object's fields, failing in one line on a wrong type."""

    def __init__(self, record: Mapping[str, object], fail: Fail) -> None:
        self.record = record
        self.fail = fail

    def string(self, key: str) -> str | None:
        value = self.record.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and key == "version":
            return str(value)
        if not isinstance(value, str):
            raise self.fail(f"{key!r} must be a string")
        return value

    def objects(self, key: str) -> list[dict]:
        value = self.record.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"{key!r} must be a list of objects")
        return value

    def valued(self, key: str, roles: tuple[str, ...]) -> str | None:
        """The `value` of the entry of a 2.x/3.x list (headlines, bodies) with the first of
        `roles` found ('' matches an entry without a role), else of the first entry."""
        entries = self.objects(key)
        for role in roles:
            for entry in entries:
                if (entry.get("role") or "") == role and isinstance(entry.get("value"), str):
                    return entry["value"]
        for entry in entries:
            if isinstance(entry.get("value"), str):
                return entry["value"]
        return None


def _bodies(reader: _Reader, story: Story) -> None:
    for key in ("body_html", "body_xhtml"):
        story.body_html = story.body_html or reader.string(key)
    story.body_text = reader.string("body_text")
    for body in reader.objects("bodies"):
        value = body.get("value")
        if not isinstance(value, str):
            raise reader.fail("each of 'bodies' needs a string 'value'")
        kind = str(body.get("contentType") or body.get("role") or "").lower()
        if kind in _HTML_TYPES or kind in ("html", "xhtml"):
            story.body_html = story.body_html or value
        else:
            story.body_text = story.body_text or value


def _descriptions(reader: _Reader, story: Story) -> None:
    story.summary = reader.string("description_text")
    story.correction_note = reader.string("description_correction")
    for description in reader.objects("descriptions"):
        value = description.get("value")
        role = str(description.get("role") or "").rpartition(":")[2].lower()
        if not isinstance(value, str):
            continue
        if role.endswith("correction"):
            story.correction_note = value
        elif role in _SUMMARY_ROLES or (story.summary is None and not role):
            story.summary = story.summary or value


def _subject_code(subject: dict) -> str:
    """A subject's code as a qcode or URI: 2.x/3.x give `uri`, 1.x `scheme` + `code`."""
    uri = subject.get("uri")
    if isinstance(uri, str):
        return uri
    code, scheme = subject.get("code"), subject.get("scheme")
    if isinstance(code, str):
        return (scheme.rstrip("/") + "/" + code) if isinstance(scheme, str) else code
    return ""


def _associations(reader: _Reader) -> list[dict]:
    value = reader.record.get("associations")
    if isinstance(value, dict):  # 1.x: name -> object
        return [v for v in value.values() if isinstance(v, dict)]
    return reader.objects("associations")


def _is_picture(association: dict) -> bool:
    return association.get("type") in PICTURE_TYPES


def _image(picture: dict, fail: Fail) -> Image:
    """A picture association's image: its web-sized rendition (else the first with an href)."""
    renditions = picture.get("renditions") or []
    if isinstance(renditions, dict):  # 1.x: name -> rendition
        renditions = [{"name": k, **v} for k, v in renditions.items() if isinstance(v, dict)]
    if not isinstance(renditions, list):
        raise fail("'renditions' must be a list or an object")
    usable = [r for r in renditions if isinstance(r, dict) and isinstance(r.get("href"), str)]
    preferred = [r for r in usable if str(r.get("name", "")).lower() in ("web", "main", "preview")]
    chosen = (preferred or usable or [{}])[0]
    caption = picture.get("description_text")
    for description in picture.get("descriptions") or []:
        if isinstance(description, dict) and caption is None:
            caption = description.get("value")
    credit = picture.get("by") or picture.get("byline") or picture.get("copyrightholder")
    return Image(
        str(chosen.get("href") or ""),
        _str(chosen.get("contentType") or chosen.get("mimetype")),
        _dimension(chosen.get("width")),
        _dimension(chosen.get("height")),
        _str(caption) or _str(picture.get("headline")),
        _str(credit) or _str(picture.get("copyrightHolder")),
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _dimension(value: object) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1_000_000
    return value if ok else None  # type: ignore[return-value]


def _names(sources: list[dict]) -> str | None:
    names = [s["name"] for s in sources if isinstance(s.get("name"), str) and s["name"].strip()]
    return " and ".join(names) if names else None
