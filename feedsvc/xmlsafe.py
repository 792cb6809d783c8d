"""Untrusted XML read safely by construction: lxml with no DTD loaded, no entity expanded, no
file or network access (every external resource resolves to nothing), libxml2's depth and size
limits kept; plus the small helpers the XML formats (NewsML-G2, NITF) share."""

from __future__ import annotations

import html.entities
import re

from lxml import etree

from .errors import DocumentError
from .model import clean_text

_SPACES = re.compile(r"\s+")
# A DOCTYPE may name a DTD (NITF's often do); it is never read, so the only entities a document
# may use undeclared are HTML's named characters, which are put back as the characters.
_HTML_CHARACTERS = html.entities.name2codepoint


class _Nothing(etree.Resolver):
    """Every external DTD or entity resolves to empty text: libxml2 opens no file, no URL."""

    def resolve(self, url: str | None, pubid: str | None, context: object) -> object:
        return self.resolve_string("", context)


def _parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,  # entity references stay references: no expansion bomb
        no_network=True,
        load_dtd=False,
        huge_tree=False,  # libxml2's limits: depth 256, 10 MB text nodes and attributes
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    parser.resolvers.add(_Nothing())
    return parser


def parse_xml(data: bytes, name: str) -> etree._Element:
    """The root element of an XML document given as bytes (its declared encoding is honoured:
    ISO-8859-1 NITF reads as it should), or a one-line `DocumentError`."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        message = " ".join((error.msg or "not well-formed").split())  # libxml2's may end in \n
        message = re.sub(r", line \d+, column \d+$", "", message)
        raise DocumentError(f"not well-formed XML: {message}", name, error.lineno) from None
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None:
        for entity in dtd.iterentities():
            raise DocumentError(
                f"the DOCTYPE declares entity {entity.name!r}: entity declarations are refused "
                "(they serve entity-expansion and external-entity attacks)",
                name,
            )
    for entity in list(root.iter(etree.Entity)):
        _replace_entity(entity, name)
    return root


def _replace_entity(entity: etree._Entity, name: str) -> None:
    codepoint = _HTML_CHARACTERS.get(entity.name)
    if codepoint is None:
        raise DocumentError(
            f"entity &{entity.name}; is not defined (DTDs are never read: use a character "
            "reference)",
            name,
            entity.sourceline,
        )
    text = chr(codepoint) + (entity.tail or "")
    parent = entity.getparent()
    previous = entity.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(entity)


def local(element: etree._Element) -> str:
    """An element's name without its namespace."""
    return etree.QName(element).localname


def children(element: etree._Element | None, tag: str) -> list[etree._Element]:
    """The child elements named `tag` (any namespace)."""
    if element is None:
        return []
    return list(element.iterchildren(f"{{*}}{tag}"))  # lxml matches any namespace, in C


def child(element: etree._Element | None, tag: str) -> etree._Element | None:
    found = children(element, tag)
    return found[0] if found else None


def descendant(element: etree._Element | None, *path: str) -> etree._Element | None:
    """The first element down `path` (local names)."""
    for tag in path:
        element = child(element, tag)
    return element


def text_of(element: etree._Element | None) -> str | None:
    """An element's text, spaces collapsed; None when it has none."""
    if element is None:
        return None
    text = _SPACES.sub(" ", clean_text("".join(element.itertext()))).strip()
    return text or None


def strip_namespaces(element: etree._Element) -> etree._Element:
    """The element with its namespaces removed, so its markup serialises as plain HTML."""
    for node in element.iter():
        if isinstance(node.tag, str):
            node.tag = local(node)
    etree.cleanup_namespaces(element)
    return element


def inner_html(element: etree._Element) -> str:
    """The markup inside `element` (its text and children, serialised as HTML); the indentation
    between its blocks becomes one line end, as in the HTML feedsvc writes itself."""
    parts = [(element.text or "").strip()]
    for node in element:
        tail, node.tail = node.tail, None
        parts.append(etree.tostring(node, method="html", encoding="unicode"))
        parts.append("\n" if not tail or tail.isspace() else tail)
    return "".join(parts).strip()
