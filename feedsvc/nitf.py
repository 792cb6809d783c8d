"""NITF 3.x: a standalone document (one item), and the NITF body a NewsML-G2 item carries inline.

head/docdata: doc-id -> guid, du-key@version -> version, date.issue -> published,
date.release -> embargo, management-status -> status, correction -> correction (its info is
the note for readers), ed-msg and `note type="npa"` -> editor's note, tobject.subject ->
subj: codes. body.head: hl1 -> title, byline -> author, distributor -> source, dateline,
abstract -> summary. body.content -> content; its `media` images -> images."""

from __future__ import annotations

import copy

from lxml import etree

from .model import Image, Item
from .newsroom import Story, to_item
from .xmlsafe import child, children, descendant, inner_html, local, strip_namespaces, text_of

NAMESPACE = "http://iptc.org/std/NITF/2006-10-18/"
FORMAT = "nitf"
# NITF body markup -> the HTML the sanitiser keeps (others lose their tag, keep their text).
_RENAMED = {"hl2": "h2", "bq": "blockquote", "block": "div", "credit": "p"}
_DROPPED = ("media", "note", "fn", "pronounce")  # read apart, or not prose
NOT_FOR_PUBLICATION = "npa"


def is_nitf(root: etree._Element) -> bool:
    return local(root) == "nitf" and etree.QName(root).namespace in (None, NAMESPACE)


def parse_nitf(root: etree._Element, name: str) -> list[Item]:
    """The item of a standalone NITF document."""
    story = Story(line=root.sourceline)
    head = child(root, "head")
    docdata = child(head, "docdata")
    doc_id = child(docdata, "doc-id")
    if doc_id is not None:
        identifier = doc_id.get("id-string")
        source = doc_id.get("regsrc")
        # regsrc names the registering source: part of the identity, so ids differ by provider.
        story.guid = f"{source}:{identifier}" if source and identifier else identifier
        story.line = doc_id.sourceline
    du_key = child(docdata, "du-key")
    story.version = du_key.get("version") if du_key is not None else None
    story.published = _norm(child(docdata, "date.issue"))
    story.embargo = _norm(child(docdata, "date.release"))
    if docdata is not None:
        story.status = docdata.get("management-status")
    correction = child(docdata, "correction")
    if correction is not None:
        story.corrected = True
        story.correction_note = correction.get("info")
    story.ednotes.extend(m.get("info") or text_of(m) or "" for m in children(docdata, "ed-msg"))
    for tobject in children(head, "tobject"):
        for subject in children(tobject, "tobject.subject"):
            refnum = subject.get("tobject.subject.refnum")
            if refnum:
                story.subjects.append(f"subj:{refnum}")
    story.language = root.get("{http://www.w3.org/XML/1998/namespace}lang")
    read_body(root, story)
    story.title = story.title or text_of(child(head, "title"))
    return [to_item(story, name)]


def read_body(nitf: etree._Element, story: Story) -> None:
    """What an NITF `body` gives, for the fields `story` does not have yet (a NewsML-G2
    item's own metadata comes first)."""
    body = child(nitf, "body")
    body_head = child(body, "body.head")
    headline = text_of(descendant(body_head, "hedline", "hl1"))
    story.title = story.title or headline
    byline = child(body_head, "byline")
    if story.author is None and byline is not None:
        story.author = _byline(byline)
    story.source = story.source or text_of(child(body_head, "distributor"))
    story.dateline = story.dateline or text_of(child(body_head, "dateline"))
    story.summary = story.summary or text_of(child(body_head, "abstract"))
    for note in children(body_head, "note"):
        _note(note, story)
    content = child(body, "body.content")
    if content is not None and story.body_html is None:
        story.body_html = _content_html(content, story)


def _byline(byline: etree._Element) -> str | None:
    person = child(byline, "person")
    if person is not None:
        return text_of(person)
    trimmed = copy.deepcopy(byline)
    for title in children(trimmed, "byttl"):  # the job title, not the name
        trimmed.remove(title)
    name = text_of(trimmed)
    if name and name[:3].lower() == "by ":
        name = name[3:]
    return name.strip(" ,") if name else None


def _note(note: etree._Element, story: Story) -> None:
    if note.get("type") == NOT_FOR_PUBLICATION or note.get("noteclass") == "editorsnote":
        story.ednotes.append(text_of(note) or "")


def _content_html(content: etree._Element, story: Story) -> str:
    body = strip_namespaces(copy.deepcopy(content))
    for dropped in [node for node in body.iter() if node.tag in _DROPPED]:
        if dropped.tag == "media":
            story.images.extend(media_images(dropped))
        elif dropped.tag == "note":
            _note(dropped, story)
        _remove_keeping_tail(dropped)
    for node in body.iter():
        if node.tag in _RENAMED:
            node.tag = _RENAMED[node.tag]
    return inner_html(body)


def _remove_keeping_tail(node: etree._Element) -> None:
    parent = node.getparent()
    if parent is None:
        return
    if node.tail:
        previous = node.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + node.tail
        else:
            parent.text = (parent.text or "") + node.tail
    parent.remove(node)


def media_images(media: etree._Element) -> list[Image]:
    """An NITF `media` element's pictures (its references with an image type)."""
    if (media.get("media-type") or "image") not in ("image", "graphic"):
        return []
    caption = text_of(child(media, "media-caption"))
    credit = text_of(child(media, "media-producer"))
    images = []
    for reference in children(media, "media-reference"):
        source = reference.get("source")
        if source:
            images.append(
                Image(
                    source,
                    reference.get("mime-type"),
                    _int(reference.get("width")),
                    _int(reference.get("height")),
                    caption or reference.get("alternate-text"),
                    credit,
                )
            )
    return images


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 7 else None


def _norm(element: etree._Element | None) -> str | None:
    """An NITF date: its `norm` attribute (ISO 8601, e.g. 20261120T093000Z), else its text."""
    if element is None:
        return None
    return element.get("norm") or text_of(element)
