"""NewsML-G2: a `newsItem`, or a `newsMessage` whose `itemSet` holds items and packages.

Every text item (itemClass `ninat:text`, or none given) becomes an `Item`. Picture items and
packages are read only for what a text item links: a picture named by the text item's
`itemMeta/link` (`residref` = the picture's guid) or grouped with it in a `packageItem` becomes
one of its images; neither is published on its own.

newsItem@guid -> guid, @version -> version, @xml:lang or contentMeta/language -> language;
itemMeta: firstCreated -> published, versionCreated -> updated, embargoed -> embargo,
pubStatus -> status, edNote -> editor's note, signal sig:correction -> correction, link to an
image -> images; contentMeta: headline -> title, description (role summary or abstract) ->
summary, description (role ...correction) -> the correction note for readers, by (else
creator names) -> author, infoSource/provider -> source, dateline (else located) -> dateline,
subject qcodes (and their stated broader codes) -> subjects; contentSet: inlineXML (NITF or
XHTML) or inlineData -> content."""

from __future__ import annotations

from lxml import etree

from .model import Image, Item
from .newsroom import Story, to_item
from .nitf import is_nitf, read_body
from .xmlsafe import child, children, inner_html, local, strip_namespaces, text_of

NAMESPACE = "http://iptc.org/std/nar/2006-10-01/"
FORMAT = "newsml-g2"
ROOTS = ("newsItem", "newsMessage")
TEXT, PICTURE, GRAPHIC = "ninat:text", "ninat:picture", "ninat:graphic"
CORRECTION_SIGNAL = "sig:correction"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_SUMMARY_ROLES = ("summary", "abstract")
_WEB_RENDITIONS = ("web", "preview", "main", "baseimage")  # the rendition a feed links to


def is_newsml(root: etree._Element) -> bool:
    return etree.QName(root).namespace == NAMESPACE and local(root) in ROOTS


def parse_newsml(root: etree._Element, name: str) -> list[Item]:
    """The text items of a newsItem or newsMessage, in document order."""
    single = local(root) == "newsItem"
    items = [root] if single else children(child(root, "itemSet"), "newsItem")
    by_guid = {item.get("guid"): item for item in items if item.get("guid")}
    packaged = _packaged_with(child(root, "itemSet"))
    stories = []
    for item in items:
        if _item_class(item) in (TEXT, None):
            linked = [*_links(item), *packaged.get(item.get("guid") or "", [])]
            pictures = [by_guid[g] for g in linked if g in by_guid]
            pictures = [p for p in pictures if _item_class(p) in (PICTURE, GRAPHIC)]
            stories.append(_story(item, pictures))
    return [to_item(story, name) for story in stories]


def _item_class(item: etree._Element) -> str | None:
    item_class = child(child(item, "itemMeta"), "itemClass")
    return item_class.get("qcode") if item_class is not None else None


def _links(item: etree._Element) -> list[str]:
    return [
        link.get("residref") or ""
        for link in children(child(item, "itemMeta"), "link")
        if link.get("residref")
    ]


def _packaged_with(item_set: etree._Element | None) -> dict[str, list[str]]:
    """For each item in a package, the other items of that package (its pictures, say)."""
    together: dict[str, list[str]] = {}
    for package in children(item_set, "packageItem"):
        refs = [ref.get("residref") for ref in package.iter(f"{{{NAMESPACE}}}itemRef")]
        members = [ref for ref in refs if ref]
        for member in members:
            together.setdefault(member, []).extend(m for m in members if m != member)
    return together


def _story(item: etree._Element, linked: list[etree._Element]) -> Story:
    meta, content = child(item, "itemMeta"), child(item, "contentMeta")
    story = Story(
        guid=item.get("guid"),
        line=item.sourceline,
        version=item.get("version"),
        published=text_of(child(meta, "firstCreated")) or text_of(child(content, "contentCreated")),
        updated=text_of(child(meta, "versionCreated")),
        embargo=text_of(child(meta, "embargoed")),
        language=_language(item, content),
        title=_headline(content),
        author=text_of(child(content, "by")) or _names(children(content, "creator")),
        source=_names(children(content, "infoSource")) or _provider(meta),
        dateline=text_of(child(content, "dateline")),
    )
    status = child(meta, "pubStatus")
    story.status = status.get("qcode") if status is not None else None
    story.ednotes = [text_of(note) or "" for note in children(meta, "edNote")]
    signals = {signal.get("qcode") for signal in children(meta, "signal")}
    story.corrected = CORRECTION_SIGNAL in signals
    for description in children(content, "description"):
        role = (description.get("role") or "").rpartition(":")[2].lower()
        if role in _SUMMARY_ROLES and story.summary is None:
            story.summary = text_of(description)
        elif role.endswith("correction"):
            story.correction_note = text_of(description)
    for subject in children(content, "subject"):
        story.subjects.append(subject.get("qcode") or subject.get("uri") or "")
        story.subjects.extend(b.get("qcode") or "" for b in children(subject, "broader"))
    story.images = [*_linked_images(meta), *(_picture(picture) for picture in linked)]
    _read_content(child(item, "contentSet"), story)
    story.dateline = story.dateline or _names(children(content, "located"))
    return story


def _language(item: etree._Element, content: etree._Element | None) -> str | None:
    language = child(content, "language")
    if language is not None and language.get("tag"):
        return language.get("tag")
    return item.get(_XML_LANG)


def _headline(content: etree._Element | None) -> str | None:
    """The main headline: one without a role, or the first."""
    headlines = children(content, "headline")
    plain = [headline for headline in headlines if not headline.get("role")]
    return text_of((plain or headlines or [None])[0])


def _names(elements: list[etree._Element]) -> str | None:
    names = [text_of(child(element, "name")) for element in elements]
    found = [name for name in names if name]
    return " and ".join(found) if found else None


def _provider(meta: etree._Element | None) -> str | None:
    provider = child(meta, "provider")
    if provider is None:
        return None
    qcode = provider.get("qcode") or ""
    return text_of(child(provider, "name")) or qcode.partition(":")[2] or None


def _linked_images(meta: etree._Element | None) -> list[Image]:
    """Pictures an item links to by URL (`link` with an image media type)."""
    return [
        Image(link.get("href") or "", link.get("contenttype"), caption=link.get("title"))
        for link in children(meta, "link")
        if (link.get("contenttype") or "").startswith("image/") and link.get("href")
    ]


def _picture(item: etree._Element) -> Image:
    """A picture newsItem as the image of the text item that links it: its web rendition."""
    content = child(item, "contentMeta")
    renditions = children(child(item, "contentSet"), "remoteContent")

    def rank(remote: etree._Element) -> int:
        name = (remote.get("rendition") or remote.get("renditionuri") or "").lower()
        found = [i for i, web in enumerate(_WEB_RENDITIONS) if name.endswith(web)]
        return found[0] if found else len(_WEB_RENDITIONS)

    remote = min(renditions, key=rank) if renditions else None
    captions = [
        description
        for description in children(content, "description")
        if (description.get("role") or "").endswith("caption")
    ]
    return Image(
        (remote.get("href") or "") if remote is not None else "",
        remote.get("contenttype") if remote is not None else None,
        _int(remote.get("width")) if remote is not None else None,
        _int(remote.get("height")) if remote is not None else None,
        text_of(captions[0]) if captions else text_of(child(content, "headline")),
        text_of(child(content, "creditline")),
    )


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 7 else None


def _read_content(content_set: etree._Element | None, story: Story) -> None:
    """The body: NITF inline first, then XHTML, then plain text."""
    inline = children(content_set, "inlineXML")
    for wanted in ("nitf", "html"):
        for block in inline:
            for root in (node for node in block if isinstance(node.tag, str)):
                if wanted == "nitf" and is_nitf(root):
                    read_body(root, story)
                    return
                if wanted == "html" and local(root) in ("html", "body", "div"):
                    body = child(root, "body") if local(root) == "html" else root
                    if body is not None:
                        story.body_html = inner_html(strip_namespaces(body))
                    return
    for data in children(content_set, "inlineData"):
        story.body_text = "".join(data.itertext())
        return
