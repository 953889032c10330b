"""Just enough protobuf to read the one body kubectl sends that way: a SelfSubjectAccessReview.

kubectl 1.32 posts built-in types as `application/vnd.kubernetes.protobuf`: the bytes `k8s\\0`,
then a runtime.Unknown whose `raw` field holds the object. Writes are refused whatever their
body, so access reviews are the only protobuf the simulated cluster has to understand.
"""

from __future__ import annotations

MAGIC = b"k8s\x00"
_RESOURCE_ATTRIBUTES = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
_NON_RESOURCE_ATTRIBUTES = ("path", "verb")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> dict[int, bytes]:
    """Length-delimited fields by number (the last one wins); other wire types are skipped."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            out[number] = data[pos:pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _strings(data: bytes, names: tuple[str, ...]) -> dict[str, str]:
    fields = _fields(data)
    return {name: fields[i + 1].decode() for i, name in enumerate(names) if fields.get(i + 1)}


def access_review_spec(body: bytes) -> dict:
    """The `spec` of a protobuf-encoded SelfSubjectAccessReview, as its JSON form."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf body")
    raw = _fields(body[len(MAGIC):]).get(2, b"")
    spec_fields = _fields(_fields(raw).get(2, b""))
    spec: dict = {}
    if 1 in spec_fields:
        spec["resourceAttributes"] = _strings(spec_fields[1], _RESOURCE_ATTRIBUTES)
    if 2 in spec_fields:
        spec["nonResourceAttributes"] = _strings(spec_fields[2], _NON_RESOURCE_ATTRIBUTES)
    return spec
