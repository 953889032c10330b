"""Istio version parsing and the n-1 skew rule, on the shapes met in real clusters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_waypoint.versions import (
    IstioVersion,
    SkewJudgement,
    judge_skew,
    parse_version,
    version_from_image,
)

OLD_DEV = (
    "1.7-alpha.6b1b1b3f4c7a1e0b9f3d2c1a0e9f8d7c6b5a4f3e"
    "-2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a-Clean"
)
DIGEST = "sha256:" + "ab" * 32

# text -> (major, minor, patch, prerelease, vendor, variant, alias)
PARSED = {
    "1.28.6": (1, 28, 6, None, None, None, False),
    "1.29.0-alpha.0": (1, 29, 0, "alpha.0", None, None, False),
    "1.29.0-beta.1": (1, 29, 0, "beta.1", None, None, False),
    "1.29.0-rc.0": (1, 29, 0, "rc.0", None, None, False),
    "1.29-dev": (1, 29, None, "dev", None, None, False),
    OLD_DEV: (1, 7, None, OLD_DEV.partition("-")[2], None, None, False),
    "1.28.6-asm-r3": (1, 28, 6, None, "asm-r3", None, False),
    "1.20.0-tetrate0": (1, 20, 0, None, "tetrate0", None, False),
    "1.20.0-tetrate-v0": (1, 20, 0, None, "tetrate-v0", None, False),
    "1.16.7-tetratefips0": (1, 16, 7, None, "tetratefips0", None, False),
    "1.30.2-solo": (1, 30, 2, None, "solo", None, False),
    "1.28.6-distroless": (1, 28, 6, None, None, "distroless", False),
    "1.28.6-debug": (1, 28, 6, None, None, "debug", False),
    "1.20.3-tetrate-v0-distroless": (1, 20, 3, None, "tetrate-v0", "distroless", False),
    "1.28.6-asm-r3-distroless": (1, 28, 6, None, "asm-r3", "distroless", False),
    "1.29.0-rc.0-asm-r1": (1, 29, 0, "rc.0", "asm-r1", None, False),
    "v1.28.6": (1, 28, 6, None, None, None, False),
    "v1.28-latest": (1, 28, None, None, None, None, True),
    "v1.32.0-alpha.527f8d6c": (1, 32, 0, "alpha.527f8d6c", None, None, False),
    "release-1.28": (1, 28, None, None, None, None, False),
    "1.28.6-alphabet": (1, 28, 6, None, "alphabet", None, False),
    "1.28.6+build.5": (1, 28, 6, None, "build.5", None, False),
    "1.31.0-some-new-vendor-7": (1, 31, 0, None, "some-new-vendor-7", None, False),
}


@pytest.mark.parametrize("text", PARSED)
def test_parse_version_fields(text):
    version = parse_version(text)
    assert version is not None
    fields = (version.major, version.minor, version.patch, version.prerelease,
              version.vendor, version.variant, version.alias)
    assert fields == PARSED[text]


@pytest.mark.parametrize(
    "text", ["1.28.6-asm-r3-distroless", "v1.28-latest", "release-1.28", OLD_DEV]
)
def test_raw_is_kept_for_display(text):
    version = parse_version(f"  {text}\n")
    assert version.raw == text
    assert str(version) == text


@pytest.mark.parametrize("text", [
    "", "   ", "master", "latest", "v", "release-", "1", "1.", ".28.6", "x1.28.6",
    "1.2e5", "1.28.6x", "1.28.x", "1.28.6.7", "one.two", DIGEST, "abcdef0123456789",
    "1.1234567890", "1" * 5000 + ".2",
])
def test_parse_version_refuses_non_versions(text):
    assert parse_version(text) is None


def test_minor_version_is_major_and_minor():
    assert parse_version("1.28.6-asm-r3").minor_version == (1, 28)
    assert parse_version("1.29-dev").minor_version == (1, 29)


@pytest.mark.parametrize("image, expected", [
    ("docker.io/istio/pilot:1.28.6", "1.28.6"),
    ("registry.alauda.cn:60080/asm/proxyv2:1.28.6-asm-r3", "1.28.6-asm-r3"),
    ("gcr.io/istio-release/ztunnel:1.28.6-distroless", "1.28.6-distroless"),
    ("localhost:5000/istio/install-cni:1.27.3", "1.27.3"),
    ("pilot:1.28.6@" + DIGEST, "1.28.6"),
    ("  proxyv2:1.20.3-tetrate-v0-distroless  ", "1.20.3-tetrate-v0-distroless"),
])
def test_version_from_image_reads_the_tag(image, expected):
    version = version_from_image(image)
    assert version is not None
    assert version.raw == expected


@pytest.mark.parametrize("image", [
    "docker.io/istio/pilot@" + DIGEST,
    "localhost:5000/pilot",
    "registry.alauda.cn:60080/asm/proxyv2",
    "pilot",
    "pilot:",
    "pilot:latest",
    "pilot:master",
    "",
])
def test_version_from_image_without_a_versioned_tag(image):
    assert version_from_image(image) is None


def test_sort_key_orders_releases():
    expected = [
        "1.27.9", "1.28-dev", "1.28.0-alpha.0", "1.28.0-alpha.1", "1.28.0-beta.0",
        "1.28.0-rc.0", "1.28.0-rc.2", "1.28.0", "1.28.2", "1.28.6", "1.28.6-asm-r3",
        "1.28.10", "v1.28-latest", "1.29.0",
    ]
    shuffled = expected[::2] + expected[1::2]
    ordered = sorted((parse_version(t) for t in shuffled), key=IstioVersion.sort_key)
    assert [v.raw for v in ordered] == expected


def v(text):
    return parse_version(text)


@pytest.mark.parametrize("control, data, status, skew", [
    ("1.28.6", "1.28.6", "ok", 0),
    ("1.28.6", "1.28.0", "ok", 0),
    ("1.28.0", "1.28.6", "ok", 0),  # patch differences do not matter
    ("1.28.6", "1.27.3", "ok", 1),
    ("1.28.6-asm-r3", "1.27.3-asm-r1-distroless", "ok", 1),
    ("v1.28-latest", "1.27.9", "ok", 1),
    ("1.28.6", "1.29.0", "ahead", -1),
    ("1.28.6", "1.30.2-solo", "ahead", -2),
    ("1.28.6", "1.26.1", "too-old", 2),
    ("1.28.6", "1.20.0-tetrate0", "too-old", 8),
    ("1.28.6", None, "unknown", None),
    (None, "1.28.6", "unknown", None),
    (None, None, "unknown", None),
    ("2.0.0", "1.28.6", "unknown", None),
    ("1.28.6", "2.0.0", "unknown", None),
])
def test_judge_skew(control, data, status, skew):
    control_plane = v(control) if control else None
    data_plane = v(data) if data else None
    assert judge_skew(control_plane, data_plane) == SkewJudgement(status, skew)


def test_judge_skew_on_unparsable_versions_is_unknown():
    assert judge_skew(version_from_image("pilot@" + DIGEST), v("1.28.6")).status == "unknown"
    assert judge_skew(v("1.28.6"), v("master")).status == "unknown"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(text):
    for parsed in (parse_version(text), version_from_image(text)):
        if parsed is not None:
            parsed.sort_key()


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 99), st.integers(0, 999), st.integers(0, 999),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
)
def test_any_suffix_keeps_major_and_minor(major, minor, patch, suffix):
    version = parse_version(f"{major}.{minor}.{patch}-{suffix}")
    assert version is not None
    assert version.minor_version == (major, minor)


@settings(max_examples=150, deadline=None)
@given(st.lists(
    st.one_of(st.sampled_from(list(PARSED)), st.text().map(lambda suffix: "1.28.6-" + suffix)),
    min_size=2,
))
def test_sort_keys_of_any_versions_compare(texts):
    """Sorting mixed shapes must never hit a TypeError inside the key tuples."""
    ordered = sorted((parse_version(t) for t in texts), key=IstioVersion.sort_key)
    keys = [version.sort_key() for version in ordered]
    assert keys == sorted(keys)
