"""DICOMweb (PS3.18) as pure rules: what the index keeps of a header, DICOM JSON, QIDO matching and
aggregation, WADO multipart framing, and the query parameters of rendered resources.

Nothing here reads the network or the database: `adapters/dicomweb.py` finds the visible instances,
`routes/dicomweb.py` streams the objects, `dicomindex.py` reads each header once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.tag import Tag

from casebook_platform.errors import ApiError
from casebook_platform.rendering import FrameFormat, Viewport, VoiFunction, Window

DICOM_JSON = "application/dicom+json"
# Attributes answered for each QIDO level (PS3.18 Tables 10.6.3-3/-4/-5), kept per instance by the index.
STUDY_ATTRS = ("StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName", "PatientName", "PatientID",
               "PatientBirthDate", "PatientSex", "PatientAge", "StudyInstanceUID", "StudyID", "StudyDescription")
SERIES_ATTRS = ("Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID", "BodyPartExamined",
                "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime")
INSTANCE_ATTRS = ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns", "BitsAllocated",
                  "NumberOfFrames", "PhotometricInterpretation")
INDEXED = STUDY_ATTRS + SERIES_ATTRS + INSTANCE_ATTRS
LEVEL_ATTRS = {"study": STUDY_ATTRS, "series": STUDY_ATTRS + SERIES_ATTRS,
               "instance": STUDY_ATTRS + SERIES_ATTRS + INSTANCE_ATTRS}
# What each level answers by default (PS3.18 Tables 10.6.3-3/-4/-5): its own attributes with the UIDs of the
# levels above; the attributes of a level above only when the path does not name it.
DEFAULT_RETURN = {"study": STUDY_ATTRS, "series": ("StudyInstanceUID", *SERIES_ATTRS),
                  "instance": ("StudyInstanceUID", "SeriesInstanceUID", *INSTANCE_ATTRS)}


def default_return(level: str, path_uids: int) -> tuple[str, ...]:
    """The attributes a result answers unasked, at `level`, with `path_uids` UIDs named in the path."""
    extra: tuple[str, ...] = ()
    if level != "study" and path_uids == 0:
        extra += STUDY_ATTRS
    if level == "instance" and path_uids < 2:
        extra += SERIES_ATTRS
    return DEFAULT_RETURN[level] + extra
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
# Binary values longer than this are bulk data: left out of the metadata (the frames resources serve pixels).
BULK_THRESHOLD = 1024
PIXEL_DATA_GROUP = 0x7FE0  # (7FE0,xxxx): pixel data and its kin, always bulk
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_QUERY_CONTROL = frozenset({"limit", "offset", "includefield", "fuzzymatching", "case_id"})
MAX_LIMIT = 1000
MAX_FRAMES_IN_REQUEST = 1000


@dataclass(frozen=True)
class HeaderIndex:
    """What the gateway keeps of a de-identified DICOM header: its UIDs, the QIDO attributes (DICOM JSON),
    and the whole header as DICOM JSON without bulk data (the metadata resources)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    attrs: dict[str, Any]
    meta: dict[str, Any]


def is_uid(value: str) -> bool:
    """A UID as DICOM spells it: digits and dots, at most 64 characters."""
    return 0 < len(value) <= 64 and bool(_UID.match(value))


def tag_hex(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return f"{tag:08X}"


def index_header(ds: Dataset) -> HeaderIndex:
    """Index one header (read with `stop_before_pixels`).

    Raises:
        ValueError: the header lacks a Study, Series or SOP Instance UID, or one is not a UID.
    """
    uids = {k: str(ds.get(k, "") or "").strip() for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                                            "SOPInstanceUID", "SOPClassUID")}
    bad = [k for k, v in uids.items() if not is_uid(v)]
    if bad:
        raise ValueError(f"not indexable: {', '.join(bad)} missing or not a UID")
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or EXPLICIT_LITTLE)
    meta = to_json(ds)
    meta[tag_hex("AvailableTransferSyntaxUID")] = {"vr": "UI", "Value": [syntax]}
    attrs = {tag_hex(k): meta[tag_hex(k)] for k in INDEXED if tag_hex(k) in meta}
    return HeaderIndex(study_uid=uids["StudyInstanceUID"], series_uid=uids["SeriesInstanceUID"],
                       sop_uid=uids["SOPInstanceUID"], sop_class_uid=uids["SOPClassUID"],
                       transfer_syntax_uid=syntax, attrs=attrs, meta=meta)


def to_json(ds: Dataset) -> dict[str, Any]:
    """The dataset (not its file meta) as DICOM JSON (PS3.18 F.2), bulk data left out."""
    def drop_bulk(d: Dataset) -> Dataset:
        out = Dataset()
        for elem in d:
            if elem.tag.group == PIXEL_DATA_GROUP or (
                    elem.VR in _BINARY_VRS and len(elem.value or b"") > BULK_THRESHOLD):
                continue
            if elem.VR == "SQ":
                out.add_new(elem.tag, "SQ", [drop_bulk(item) for item in elem.value])
            else:
                out.add(elem)
        return out

    def suppress(_elem: Any) -> str:  # never called: bulk data is dropped above
        return ""

    result: dict[str, Any] = drop_bulk(ds).to_json_dict(BULK_THRESHOLD * 1024, suppress)
    return result


def value_of(element: Mapping[str, Any] | None) -> list[str]:
    """The values of a DICOM JSON element as text (a person name by its alphabetic form)."""
    if not element:
        return []
    out = []
    for v in element.get("Value", []):
        if isinstance(v, dict):
            out.append(str(v.get("Alphabetic", "")))
        else:
            out.append(str(v))
    return out


# ---- QIDO-RS ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    """A parsed QIDO-RS query: matching keys (tag → value), paging, extra return attributes."""

    matches: dict[str, str] = field(default_factory=dict)
    limit: int = MAX_LIMIT
    offset: int = 0
    include: tuple[str, ...] = ()
    include_all: bool = False
    ignored: tuple[str, ...] = ()


def _tag_of(name: str) -> str | None:
    """`PatientID`, `00100020` or `0010,0020` → `00100020`; None when it names no attribute."""
    text = name.strip()
    if re.fullmatch(r"[0-9A-Fa-f]{8}", text):
        return text.upper()
    if re.fullmatch(r"[0-9A-Fa-f]{4},[0-9A-Fa-f]{4}", text):
        return text.replace(",", "").upper()
    tag = tag_for_keyword(text)
    return f"{tag:08X}" if tag is not None else None


def _int(name: str, raw: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", raw.strip()):
        raise ApiError(400, "invalid_request", f"{name} must be a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, "invalid_request", f"{name} must be between {low} and {high}")
    return value


def parse_query(params: Sequence[tuple[str, str]], level: str) -> Query:
    """Parse QIDO-RS query parameters for `level` (`study`, `series`, `instance`).

    Matching keys are DICOM keywords or tags (`PatientID=`, `00100020=`); `includefield` takes keywords,
    tags or `all` (repeated or comma-separated). Keys naming an attribute this level cannot match, and
    includefield names that are no attribute, are ignored (named in a `Warning` header, as PS3.18 allows).

    Raises:
        ApiError: 400 `invalid_request` for a key that names no attribute, a bad limit or offset.
    """
    matches: dict[str, str] = {}
    include: list[str] = []
    include_all = False
    limit, offset = MAX_LIMIT, 0
    ignored: list[str] = []
    matchable = {tag_hex(k) for k in LEVEL_ATTRS[level]} | {tag_hex("ModalitiesInStudy")}
    for name, value in params:
        if name == "limit":
            limit = _int("limit", value, 1, MAX_LIMIT)
        elif name == "offset":
            offset = _int("offset", value, 0, 10**9)
        elif name == "includefield":
            for part in value.split(","):
                if part.strip() == "all":
                    include_all = True
                elif part.strip():
                    tag = _tag_of(part)
                    if tag is None:
                        ignored.append(part[:64])  # names no attribute: nothing to include
                    else:
                        include.append(tag)
        elif name in _QUERY_CONTROL:
            continue
        else:
            tag = _tag_of(name)
            if tag is None:
                raise ApiError(400, "invalid_request", f"query key {name[:64]!r} names no DICOM attribute")
            if tag in matchable:
                matches[tag] = value
            else:
                ignored.append(name[:64])
    return Query(matches, limit, offset, tuple(include), include_all, tuple(ignored))


def warning(ignored: Sequence[str]) -> str:
    """The `Warning` header naming ignored keys (RFC 7234 299; header text is ASCII, other names are `?`)."""
    names = [n if re.fullmatch(r"[A-Za-z0-9_,]{1,64}", n) else "?" for n in ignored]
    return f'299 casebook "ignored: {", ".join(names)}"'


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                      re.IGNORECASE | re.DOTALL)


def matches_value(tag: str, wanted: str, values: Sequence[str]) -> bool:
    """PS3.4 C.2.2.2 matching of one key against an attribute's values: universal (empty), UID list
    (comma or backslash separated), range (`from-to` for dates and times), wildcard (`*`, `?`), single value.
    Person names and other text match case-insensitively."""
    if wanted == "":
        return True
    vr = _vr(tag)
    if vr == "UI":
        wanted_uids = {u.strip() for u in re.split(r"[,\\]", wanted) if u.strip()}
        return any(v in wanted_uids for v in values)
    if vr in ("DA", "TM", "DT") and "-" in wanted:
        low, _, high = wanted.partition("-")
        return any((not low or v >= low) and (not high or v[:len(high)] <= high) for v in values)
    # Code strings (Modality) may list alternatives; other text is one pattern.
    alternatives = [w.strip() for w in re.split(r"[,\\]", wanted)] if vr == "CS" else [wanted]
    return any(_wildcard(w).fullmatch(v) for w in alternatives for v in values)


def _vr(tag: str) -> str:
    try:
        return str(dictionary_VR(Tag(int(tag, 16))))
    except (KeyError, ValueError):
        return "UN"


@dataclass(frozen=True)
class Instance:
    """One visible instance as the index holds it (a row of `images`)."""

    image_id: str
    case_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    attrs: Mapping[str, Any]
    seq: int
    size: int = 0
    object_key: str = ""
    frames: int = 1

    @property
    def modality(self) -> str:
        return next(iter(value_of(self.attrs.get(tag_hex("Modality")))), "")

    def number(self, keyword: str) -> int | None:
        v = value_of(self.attrs.get(tag_hex(keyword)))
        try:
            return int(float(v[0])) if v else None
        except ValueError:
            return None


def unique(instances: Iterable[Instance]) -> list[Instance]:
    """One instance per SOP Instance UID (the same study uploaded to two cases shares its UIDs: the
    earliest upload answers), in study, series (number) and instance (number) order."""
    seen: dict[str, Instance] = {}
    for inst in sorted(instances, key=lambda i: i.seq):
        seen.setdefault(inst.sop_uid, inst)
    first_of_study: dict[str, int] = {}
    first_of_series: dict[str, int] = {}
    for inst in seen.values():
        first_of_study.setdefault(inst.study_uid, inst.seq)
        first_of_series.setdefault(inst.series_uid, inst.seq)

    def key(i: Instance) -> tuple[Any, ...]:
        sn, inn = i.number("SeriesNumber"), i.number("InstanceNumber")
        return (first_of_study[i.study_uid], i.study_uid, sn is None, sn or 0, first_of_series[i.series_uid],
                i.series_uid, inn is None, inn or 0, i.seq)

    return sorted(seen.values(), key=key)


def _element(keyword: str, values: list[Any]) -> dict[str, Any]:
    vr = _vr(tag_hex(keyword))
    return {"vr": vr, "Value": values} if values else {"vr": vr}


def _urls(base: str, *parts: str) -> str:
    out = base.rstrip("/") + "/studies/" + parts[0]
    if len(parts) > 1:
        out += "/series/" + parts[1]
    if len(parts) > 2:
        out += "/instances/" + parts[2]
    return out


@dataclass
class _Group:
    key: tuple[str, ...]
    members: list[Instance]

    @property
    def first(self) -> Instance:
        return self.members[0]


def _groups(instances: Sequence[Instance], level: str) -> list[_Group]:
    groups: dict[tuple[str, ...], _Group] = {}
    for inst in instances:
        key = {"study": (inst.study_uid,), "series": (inst.study_uid, inst.series_uid),
               "instance": (inst.study_uid, inst.series_uid, inst.sop_uid)}[level]
        groups.setdefault(key, _Group(key, [])).members.append(inst)
    return list(groups.values())


def _computed(group: _Group, level: str, base: str) -> dict[str, Any]:
    """The attributes the server computes for a result (counts, modalities, retrieve URL)."""
    members = group.members
    out: dict[str, Any] = {tag_hex("RetrieveURL"): _element("RetrieveURL", [_urls(base, *group.key)])}
    if level == "study":
        out[tag_hex("ModalitiesInStudy")] = _element("ModalitiesInStudy",
                                                     sorted({m.modality for m in members if m.modality}))
        out[tag_hex("NumberOfStudyRelatedSeries")] = _element("NumberOfStudyRelatedSeries",
                                                              [len({m.series_uid for m in members})])
        out[tag_hex("NumberOfStudyRelatedInstances")] = _element("NumberOfStudyRelatedInstances", [len(members)])
    elif level == "series":
        out[tag_hex("NumberOfSeriesRelatedInstances")] = _element("NumberOfSeriesRelatedInstances", [len(members)])
    else:
        out[tag_hex("InstanceAvailability")] = _element("InstanceAvailability", ["ONLINE"])
    return out


_UID_KEYS = {tag_hex("StudyInstanceUID"): "study_uid", tag_hex("SeriesInstanceUID"): "series_uid",
             tag_hex("SOPInstanceUID"): "sop_uid", tag_hex("SOPClassUID"): "sop_class_uid"}


def search(instances: Sequence[Instance], level: str, query: Query, base: str,
           meta: Mapping[str, Mapping[str, Any]] | None = None, path_uids: int = 0) -> list[dict[str, Any]]:
    """QIDO-RS results at `level` over the visible instances (already `unique`): each group whose first
    instance matches every key (ModalitiesInStudy: any member's Modality), paged, as DICOM JSON objects.

    `meta` (image id → whole header) supplies `includefield` attributes the index does not keep;
    `path_uids` says how many of the study and series UIDs the request's path names.
    """
    out: list[dict[str, Any]] = []
    modalities_key = tag_hex("ModalitiesInStudy")
    for group in _groups(instances, level):
        ok = True
        for tag, wanted in query.matches.items():
            if tag == modalities_key:
                ok = matches_value(tag_hex("Modality"), wanted, [m.modality for m in group.members])
            elif level != "instance" and tag == tag_hex("Modality"):
                ok = matches_value(tag, wanted, [m.modality for m in group.members])
            elif tag in _UID_KEYS:
                ok = matches_value(tag, wanted, [getattr(group.first, _UID_KEYS[tag])])
            else:
                ok = matches_value(tag, wanted, value_of(group.first.attrs.get(tag)))
            if not ok:
                break
        if ok:
            out.append(_result(group, level, query, base, meta, path_uids))
    return out[query.offset:query.offset + query.limit]


def _result(group: _Group, level: str, query: Query, base: str,
            meta: Mapping[str, Mapping[str, Any]] | None, path_uids: int) -> dict[str, Any]:
    first = group.first
    wanted = {tag_hex(k) for k in default_return(level, path_uids)} | set(query.matches) | set(query.include)
    if query.include_all:
        wanted |= {tag_hex(k) for k in LEVEL_ATTRS[level]}
    whole = (meta or {}).get(first.image_id, {})
    result: dict[str, Any] = {}
    for tag in sorted(wanted):
        element = first.attrs.get(tag) or whole.get(tag)
        if element is not None:
            result[tag] = element
        elif keyword_for_tag(int(tag, 16)) and tag in {tag_hex(k) for k in LEVEL_ATTRS[level]}:
            result[tag] = {"vr": _vr(tag)}  # asked for and not present: answered empty
    result.update(_computed(group, level, base))
    return dict(sorted(result.items()))


def needs_meta(query: Query, level: str) -> bool:
    """True when `includefield` asks for attributes beyond the index (the whole header is read)."""
    indexed = {tag_hex(k) for k in INDEXED}
    return (query.include_all and level == "instance") or any(t not in indexed for t in query.include)


# ---- WADO-RS ----------------------------------------------------------------------------------------------

def boundary() -> str:
    return "casebook-" + secrets.token_hex(12)


def multipart_type(part_type: str, boundary_: str) -> str:
    return f'multipart/related; type="{part_type}"; boundary={boundary_}'


def part_head(boundary_: str, content_type: str, length: int | None = None, location: str | None = None) -> bytes:
    lines = [f"--{boundary_}", f"Content-Type: {content_type}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if location:
        lines.append(f"Content-Location: {location}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def part_tail() -> bytes:
    return b"\r\n"


def closing(boundary_: str) -> bytes:
    return f"--{boundary_}--\r\n".encode("ascii")


def multipart(boundary_: str, parts: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """Frame small parts (content type, bytes) as one multipart/related body."""
    for content_type, data in parts:
        yield part_head(boundary_, content_type, len(data))
        yield data
        yield part_tail()
    yield closing(boundary_)


def parse_frames(raw: str) -> list[int]:
    """`1`, `1,3,5` → 0-based frame indexes (at most 1000 of them).

    Raises:
        ApiError: 400 `invalid_request` unless it is a list of whole numbers from 1.
    """
    if len(raw) > FRAMES_MAX_LENGTH or not re.fullmatch(FRAMES_PATTERN, raw):
        raise ApiError(400, "invalid_request", "frames are a comma-separated list of frame numbers from 1")
    return [int(p) - 1 for p in raw.split(",")]


def check_frames(indexes: Sequence[int], frames: int) -> None:
    """Raises ApiError 404 `not_found` when a frame is not in the instance."""
    missing = [i + 1 for i in indexes if i >= frames]
    if missing:
        raise ApiError(404, "not_found", f"the instance has {frames} frame(s); no frame {missing[0]}")


# ---- rendered ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RenderRequest:
    """What a rendered resource was asked for: format, JPEG quality, window and viewport."""

    fmt: FrameFormat
    quality: int | None
    window: Window | None
    viewport: Viewport | None


_FUNCTIONS: dict[str, VoiFunction] = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}
MAX_VIEWPORT = 4096
# The documented forms of the parameters (the OpenAPI carries the same patterns): what matches is served.
FRAMES_PATTERN = r"^[1-9][0-9]{0,11}(,[1-9][0-9]{0,11})*$"
FRAMES_MAX_LENGTH = 2 * MAX_FRAMES_IN_REQUEST - 1
ONE_FRAME_PATTERN = r"^[1-9][0-9]{0,11}$"
_NUM = r"[0-9]{1,12}(\.[0-9]{1,12})?"
WINDOW_PATTERN = rf"^[+-]?{_NUM},[1-9][0-9]{{0,11}}(\.[0-9]{{1,12}})?(,(linear|linear-exact|sigmoid))?$"
VIEWPORT_PATTERN = r"^[1-9][0-9]{0,4},[1-9][0-9]{0,4}(,[0-9]{1,5},[0-9]{1,5},[1-9][0-9]{0,4},[1-9][0-9]{0,4})?$"


def parse_window(raw: str) -> Window:
    """`center,width[,linear|linear-exact|sigmoid]` (PS3.18 8.3.5.1.4; `linear` when left out), width from 1.

    Raises:
        ApiError: 400 `invalid_request` for anything else.
    """
    if not re.fullmatch(WINDOW_PATTERN, raw):
        raise ApiError(400, "invalid_request", "window is center,width,function (linear, linear-exact or "
                                               "sigmoid), with a width of at least 1")
    parts = raw.split(",")
    return Window(float(parts[0]), float(parts[1]), _FUNCTIONS[parts[2]] if len(parts) == 3 else "LINEAR")


def parse_viewport(raw: str) -> Viewport:
    """`vw,vh` or `vw,vh,sx,sy,sw,sh` (PS3.18 8.3.5.1.3); sizes above 4096 are served at 4096.

    Raises:
        ApiError: 400 `invalid_request` for anything else.
    """
    if not re.fullmatch(VIEWPORT_PATTERN, raw):
        raise ApiError(400, "invalid_request", "viewport is vw,vh or vw,vh,sx,sy,sw,sh (whole numbers, sizes from 1)")
    n = [int(p) for p in raw.split(",")]
    return Viewport(min(n[0], MAX_VIEWPORT), min(n[1], MAX_VIEWPORT), (n[2], n[3], n[4], n[5]) if len(n) == 6 else None)


def _accepted(accept: str) -> list[tuple[str, float]]:
    out = []
    for item in accept.split(","):
        media, *params = [p.strip() for p in item.split(";")]
        q = 1.0
        for p in params:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if media:
            out.append((media.lower(), q))
    return out


def choose_rendered_type(accept: str | None, accept_param: str | None = None) -> FrameFormat:
    """PNG or JPEG from the `accept` query parameter or the Accept header; JPEG when either would do
    (PS3.18's default for rendered images).

    Raises:
        ApiError: 406 `not_acceptable` when neither image/png nor image/jpeg is acceptable.
    """
    wanted = _accepted(accept_param or accept or "*/*")
    score = {"png": 0.0, "jpeg": 0.0}
    for media, q in wanted:
        if media in ("image/png",):
            score["png"] = max(score["png"], q + 0.001)
        elif media in ("image/jpeg", "image/jpg"):
            score["jpeg"] = max(score["jpeg"], q + 0.001)
        elif media in ("*/*", "image/*"):
            score["png"] = max(score["png"], q)
            score["jpeg"] = max(score["jpeg"], q)
    if score["png"] <= 0 and score["jpeg"] <= 0:
        raise ApiError(406, "not_acceptable", "rendered resources are image/jpeg or image/png")
    return "png" if score["png"] > score["jpeg"] else "jpeg"


def render_request(*, accept: str | None, accept_param: str | None, quality: int | None, window: str | None,
                   viewport: str | None) -> RenderRequest:
    """Parse a rendered resource's query (`window`, `viewport`, `quality`, `accept`) and Accept header.

    Raises:
        ApiError: 400 `invalid_request` for a bad parameter, 406 `not_acceptable` for the media type.
    """
    return RenderRequest(choose_rendered_type(accept, accept_param), quality,
                         parse_window(window) if window is not None else None,
                         parse_viewport(viewport) if viewport is not None else None)
