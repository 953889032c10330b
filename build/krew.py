"""Krew's and krew-index's rules, applied offline: manifests, the release template, archives.

Each rule restates one in Krew's source (sigs.k8s.io/krew): `internal/index/validation/validate.go`
(ValidatePlugin), `cmd/validate-krew-manifest/main.go` (what krew-index CI runs on every pull
request: supported and non-overlapping platforms, then an install per platform that must leave a
LICENSE), `internal/download/downloader.go` (what extraction refuses) and
`internal/installation/{install,move}.go` (files, bin). krew-release-bot's template functions
follow `pkg/source/template.go` of rajatjindal/krew-release-bot.

    python build/krew.py validate plugin.yaml
    python build/krew.py render --tag v0.1.0 --archives build/dist > plugin.yaml
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import hashlib
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import zipfile
from typing import Callable

import yaml

API_VERSION = "krew.googlecontainertools.github.com/v1alpha2"
SAFE_NAME = re.compile(r"^[\w-]+$")
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
SHA256 = re.compile(r"^[a-f0-9]{64}$")
# k8s.io/apimachinery/pkg/util/version ParseSemantic, behind Krew's own "must start with v"
SEMVER = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
                    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")
SUPPORTED_PLATFORMS = [("windows", "386"), ("windows", "amd64"), ("windows", "arm64"), ("linux", "386"),
                       ("linux", "amd64"), ("linux", "arm"), ("linux", "arm64"), ("linux", "ppc64le"),
                       ("darwin", "386"), ("darwin", "amd64"), ("darwin", "arm64")]
LICENSE_FILES = {"license", "license.txt", "license.md", "licenses", "licenses.txt", "licenses.md",
                 "copying", "copying.txt"}


class KrewError(Exception):
    """What `kubectl krew install` or krew-index CI would refuse, in Krew's words where it has them."""


# -- manifests ------------------------------------------------------------------------------------

def validate_manifest(manifest: dict, file_name: str) -> list[str]:
    """Every problem Krew's ValidatePlugin and validate-krew-manifest find without downloading."""
    problems: list[str] = []
    if not file_name.endswith(".yaml"):
        problems.append(f'expected manifest extension ".yaml" but found {os.path.splitext(file_name)[1]!r}')
    name = os.path.basename(file_name)[: -len(".yaml")]
    metadata = manifest.get("metadata") or {}
    spec = manifest.get("spec") or {}
    if manifest.get("apiVersion") != API_VERSION:
        problems.append(f"plugin manifest has apiVersion={manifest.get('apiVersion')!r}, not supported")
    if manifest.get("kind") != "Plugin":
        problems.append(f"plugin manifest has kind={manifest.get('kind')!r}, but only 'Plugin' is supported")
    if not SAFE_NAME.match(name) or name.upper() in WINDOWS_RESERVED:
        problems.append(f"the plugin name {name!r} is not allowed, must match {SAFE_NAME.pattern}")
    if metadata.get("name") != name:
        problems.append(f"plugin should be named {name!r}, not {metadata.get('name')!r}")
    short = spec.get("shortDescription")
    if not short:
        problems.append("should have a short description")
    elif "\n" in str(short) or "\r" in str(short):
        problems.append("should not have line breaks in short description")
    platforms = spec.get("platforms") or []
    if not platforms:
        problems.append("should have a platform specified")
    version = spec.get("version")
    if not version:
        problems.append("should have a version specified")
    elif not SEMVER.match(str(version)):
        problems.append(f"failed to parse plugin version {version!r} (v-prefixed semantic version)")
    for index, platform in enumerate(platforms):
        problems.extend(f"platform {index}: {p}" for p in validate_platform(platform))
    if not problems:
        problems.extend(_platform_coverage_problems(platforms))
    return problems


def validate_platform(platform: dict) -> list[str]:
    problems = []
    if not platform.get("uri"):
        problems.append("`uri` has to be set")
    sha = platform.get("sha256")
    if not sha:
        problems.append("`sha256` sum has to be set")
    elif not SHA256.match(str(sha)):
        problems.append(f"`sha256` value {sha} is not valid, must match pattern {SHA256.pattern}")
    if not platform.get("bin"):
        problems.append("`bin` has to be set")
    files = platform.get("files")
    if files is not None:
        if not files:
            problems.append("`files` has to be unspecified or non-empty")
        for operation in files:
            if not operation.get("from"):
                problems.append("`from` field has to be set")
            elif not operation.get("to"):
                problems.append("`to` field has to be set")
    problems.extend(_selector_problems(platform.get("selector")))
    return problems


def _selector_problems(selector) -> list[str]:
    if selector is None:
        return ["nil selector is not supported"]
    labels = selector.get("matchLabels")
    expressions = selector.get("matchExpressions")
    if labels is None and not expressions:
        return ["empty selector is not supported"]
    keys = list(labels or {}) + [e.get("key") for e in expressions or []]
    problems = [f"key {key!r} not supported" for key in keys if key not in ("os", "arch")]
    if labels is not None and not labels:
        problems.append("`matchLabels` specified but empty")
    if expressions is not None and not expressions:
        problems.append("`matchExpressions` specified but empty")
    return problems


def selector_matches(selector: dict, os_name: str, arch: str) -> bool:
    """metav1.LabelSelector semantics over the labels {os, arch}."""
    labels = {"os": os_name, "arch": arch}
    if any(labels.get(k) != str(v) for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _platform_coverage_problems(platforms: list[dict]) -> list[str]:
    problems = []
    for index, platform in enumerate(platforms):
        if not any(selector_matches(platform["selector"], o, a) for o, a in SUPPORTED_PLATFORMS):
            problems.append(f"spec.platform[{index}]'s selector doesn't match any supported platforms")
    for os_name, arch in SUPPORTED_PLATFORMS:
        matching = [i for i, p in enumerate(platforms) if selector_matches(p["selector"], os_name, arch)]
        if len(matching) > 1:
            problems.append(f"multiple spec.platforms (at indexes {matching}) have overlapping selectors "
                            f"that select os={os_name}/arch={arch}")
    return problems


def platform_for(manifest: dict, os_name: str, arch: str) -> dict:
    """The one platform entry Krew would install on os/arch."""
    for platform in manifest["spec"]["platforms"]:
        if selector_matches(platform["selector"], os_name, arch):
            return platform
    raise KrewError(f"plugin does not offer installation for {os_name}/{arch}")


# -- krew-release-bot's template ----------------------------------------------------------------

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_URI_AND_SHA = re.compile(r'^addURIAndSha\s+"((?:[^"\\]|\\.)*)"\s+\.TagName$')


def render_template(text: str, tag: str, sha256_of_url: Callable[[str], str]) -> str:
    """Render .krew.yaml as krew-release-bot does: {{ .TagName }} and {{ addURIAndSha "URL" .TagName }}.

    `sha256_of_url` stands in for the bot's download; any other template action is an error
    here, so the template cannot use something this check does not understand.
    """

    def action(match: re.Match) -> str:
        body = match.group(1)
        if body == ".TagName":
            return tag
        call = _URI_AND_SHA.match(body)
        if call is None:
            raise KrewError(f"unsupported template action {{{{ {body} }}}}")
        url = _render_url(call.group(1), tag)
        return f"uri: {url}\n    sha256: {sha256_of_url(url)}"

    return _ACTION_OUTSIDE_STRINGS.sub(action, text)


def _render_url(template: str, tag: str) -> str:
    version = re.search(r"\d+(\.\d+)+", tag)
    values = {".TagName": tag, ".Version": version.group(0) if version else tag}

    def action(match: re.Match) -> str:
        if match.group(1) not in values:
            raise KrewError(f"unsupported action {{{{ {match.group(1)} }}}} in a release URL")
        return values[match.group(1)]

    return _ACTION.sub(action, template)


# An action whose quoted strings may themselves hold {{ }} (the URL argument of addURIAndSha).
_ACTION_OUTSIDE_STRINGS = re.compile(r'\{\{-?\s*((?:[^"}]|"(?:[^"\\]|\\.)*"|\}(?!\}))*?)\s*-?\}\}', re.S)


# -- archives and installation -----------------------------------------------------------------

def archive_problems(path: str) -> list[str]:
    """What Krew's extraction refuses, plus what a release archive must not contain."""
    problems = []
    for name, kind, _mode in archive_entries(path):
        if ".." in name:
            problems.append(f"refusing to unpack archive with suspicious entry {name!r}")
        if name.startswith(("/", "\\")):
            problems.append(f"refusing to unpack archive with absolute entry {name!r}")
        if kind not in ("file", "dir"):
            problems.append(f"unable to handle {kind} {name!r} (only regular files and folders)")
    return problems


def archive_entries(path: str) -> list[tuple[str, str, int]]:
    """(name, kind, permission bits) of every entry; kind is file, dir, symlink, hardlink or other."""
    with open(path, "rb") as stream:
        magic = stream.read(4)
    if magic[:2] == b"\x1f\x8b":
        with gzip.open(path) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
            return [(m.name, _tar_kind(m), m.mode & 0o7777) for m in tar.getmembers() if m.name != "pax_global_header"]
    if magic == b"PK\x03\x04":
        with zipfile.ZipFile(path) as archive:
            return [(i.filename, _zip_kind(i), (i.external_attr >> 16) & 0o7777) for i in archive.infolist()]
    raise KrewError(f"{path}: mime type is not a supported archive format (gzip or zip)")


def _tar_kind(member: tarfile.TarInfo) -> str:
    return ("file" if member.isreg() else "dir" if member.isdir() else "symlink" if member.issym()
            else "hardlink" if member.islnk() else "other")


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if info.is_dir():
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "file" if mode == 0 or stat.S_ISREG(mode) else "other"


def install(platform: dict, archive: str, install_dir: str) -> str:
    """Do what `kubectl krew install --manifest M --archive A` does; returns the installed bin.

    Checks the sha256, extracts (refusing what Krew refuses), applies `files` (default: all),
    finds `bin` inside the install folder, and requires a LICENSE as krew-index CI does.
    """
    with open(archive, "rb") as stream:
        digest = hashlib.sha256(stream.read()).hexdigest()
    if digest != platform["sha256"]:
        raise KrewError(f"checksum does not match, want: {platform['sha256']}, got {digest}")
    problems = archive_problems(archive)
    if problems:
        raise KrewError("; ".join(problems))
    with tempfile.TemporaryDirectory(prefix="krew-downloads") as staging:
        _extract(archive, staging)
        os.makedirs(install_dir, exist_ok=True)
        for operation in platform.get("files") or [{"from": "*", "to": "."}]:
            _move(staging, install_dir, operation)
    binary = os.path.normpath(os.path.join(install_dir, platform["bin"]))
    if os.path.commonpath([os.path.abspath(install_dir), os.path.abspath(binary)]) != os.path.abspath(install_dir):
        raise KrewError(f"the path {binary!r} does not extend the install folder")
    if not os.path.isfile(binary):
        raise KrewError(f"can't create symbolic link, source binary ({binary!r}) cannot be found in extracted archive")
    installed = [name for _root, _dirs, files in os.walk(install_dir) for name in files]
    if not any(name.lower() in LICENSE_FILES for name in installed):
        raise KrewError("LICENSE (or alike) file is not extracted from the archive as part of installation: "
                        f"could not find license file among [{', '.join(sorted(installed))}]")
    return binary


def _extract(archive: str, target: str) -> None:
    with open(archive, "rb") as stream:
        is_gzip = stream.read(2) == b"\x1f\x8b"
    if is_gzip:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                destination = os.path.join(target, member.name)
                if member.isdir():
                    os.makedirs(destination, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                with tar.extractfile(member) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.chmod(destination, member.mode & 0o7777)
    else:
        with zipfile.ZipFile(archive) as zipped:
            for info in zipped.infolist():
                destination = os.path.join(target, info.filename)
                if info.is_dir():
                    os.makedirs(destination, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                with zipped.open(info) as source, open(destination, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.chmod(destination, (info.external_attr >> 16) & 0o7777 or 0o644)


def _move(source_dir: str, install_dir: str, operation: dict) -> None:
    """One `files` entry: a direct file move, else a glob whose matches land in `to`."""
    source, to = operation["from"], operation["to"]
    if to != os.path.normpath(to):
        raise KrewError(f"the provided path is not clean, {to!r} should be {os.path.normpath(to)!r}")
    direct = os.path.normpath(os.path.join(source_dir, source))
    if os.path.exists(direct) and not any(c in source for c in "*?["):
        destination = os.path.join(install_dir, os.path.basename(direct) if to == "." else to)
        _checked_move(direct, destination, source_dir, install_dir)
        return
    matches = sorted(os.path.join(source_dir, name) for name in _glob(source_dir, source))
    if not matches:
        raise KrewError(f"no files in the plugin archive matched the glob pattern={source}")
    for match in matches:
        _checked_move(match, os.path.join(install_dir, to, os.path.basename(match)), source_dir, install_dir)


def _glob(base: str, pattern: str) -> list[str]:
    parts = pattern.split("/")
    found = [""]
    for part in parts:
        found = [os.path.join(prefix, name) for prefix in found
                 if os.path.isdir(os.path.join(base, prefix))
                 for name in os.listdir(os.path.join(base, prefix)) if fnmatch.fnmatchcase(name, part)]
    return found


def _checked_move(source: str, destination: str, source_dir: str, install_dir: str) -> None:
    for path, base in ((source, source_dir), (destination, install_dir)):
        if os.path.commonpath([os.path.abspath(path), os.path.abspath(base)]) != os.path.abspath(base):
            raise KrewError(f"can't move, move target {path!r} is out of bounds")
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.move(source, destination)


# -- command line --------------------------------------------------------------------------------

def _sha256_file(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="apply Krew's and krew-index's rules to manifests")
    check.add_argument("manifests", nargs="+")
    render = commands.add_parser("render", help="render .krew.yaml with the sha256 of local archives")
    render.add_argument("--tag", required=True)
    render.add_argument("--archives", required=True, help="folder holding every archive the template names")
    render.add_argument("--template", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                           ".krew.yaml"))
    args = parser.parse_args(argv)
    if args.command == "validate":
        failed = 0
        for path in args.manifests:
            with open(path, encoding="utf-8") as stream:
                problems = validate_manifest(yaml.safe_load(stream), os.path.basename(path))
            for problem in problems:
                print(f"{path}: {problem}", file=sys.stderr)
            failed += bool(problems)
        return 1 if failed else 0
    with open(args.template, encoding="utf-8") as stream:
        text = stream.read()
    sys.stdout.write(render_template(text, args.tag,
                                     lambda url: _sha256_file(os.path.join(args.archives, url.rsplit("/", 1)[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
