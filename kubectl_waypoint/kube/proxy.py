"""Which proxy a request goes through: a kubeconfig proxy-url, else the environment as Go applies it.

kubectl's transport uses `http.ProxyFromEnvironment` (golang.org/x/net/http/httpproxy): never a
proxy for a literal loopback host (`localhost`, 127.0.0.0/8, ::1) whatever NO_PROXY says, and
NO_PROXY entries that are `*`, CIDRs, IP addresses or domains, each with an optional port, a
leading `.` or `*.` matching subdomains only. Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Mapping
from urllib.parse import urlsplit

from ..errors import BadInput

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_DEFAULT_PORTS = {"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}


def _env(environ: Mapping[str, str], name: str) -> str:
    """Go reads the upper-case variable first, then the lower-case one."""
    return environ.get(name.upper()) or environ.get(name.lower()) or ""


def normalise_proxy_url(text: str, origin: str) -> str:
    """The proxy URL as Go parses it: no scheme means http; only http, https and socks5 are known."""
    url = text.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise BadInput(f'the proxy "{redact_proxy_url(text)}" from {origin} is not a usable proxy URL: '
                       "use http://, https:// or socks5://HOST:PORT")
    return url


def redact_proxy_url(url: str) -> str:
    """A proxy URL without its password, for messages and logs."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def environment_proxy(server: str, environ: Mapping[str, str]) -> str | None:
    """The proxy Go's ProxyFromEnvironment picks for requests to `server`, or None for direct."""
    parts = urlsplit(server)
    scheme = parts.scheme or "https"
    proxy = _env(environ, "https_proxy") if scheme == "https" else _env(environ, "http_proxy")
    if not proxy:
        return None
    host = (parts.hostname or "").lower()
    port = str(parts.port or _DEFAULT_PORTS.get(scheme, "443"))
    if not _use_proxy(host, port, _env(environ, "no_proxy")):
        return None
    return normalise_proxy_url(proxy, "HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _use_proxy(host: str, port: str, no_proxy: str) -> bool:
    if not host or host == "localhost":
        return False
    ip = _ip(host)
    if ip is not None and ip.is_loopback:
        return False
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return False
        if _entry_matches(entry, host, port, ip):
            return False
    return True


def _entry_matches(entry: str, host: str, port: str, ip) -> bool:
    if "/" in entry:  # a CIDR
        try:
            return ip is not None and ip in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    entry_host, entry_port = _split_host_port(entry)
    entry_ip = _ip(entry_host)
    if entry_ip is not None:
        return ip is not None and ip == entry_ip and entry_port in ("", port)
    if entry_host.startswith("*."):
        entry_host = entry_host[1:]
    exact_too = not entry_host.startswith(".")
    suffix = entry_host if not exact_too else "." + entry_host
    matches = host.endswith(suffix) or (exact_too and host == entry_host)
    return matches and entry_port in ("", port)


def _split_host_port(entry: str) -> tuple[str, str]:
    """`host:port`, `[v6]:port` or a bare host/IP (a bare IPv6 address has colons but no port)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, port
    return entry, ""
