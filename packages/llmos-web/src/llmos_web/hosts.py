"""Host rules and address classes: which addresses are private, loopback, metadata..."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance-metadata services of the big clouds: credentials live there.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def normalize_host(host: str) -> str:
    """Lower case, IDNA-encoded, without a trailing dot or IPv6 brackets."""
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise ValueError(f"{host!r} is not a valid host name: {exc}") from None


def parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def is_hostname(host: str) -> bool:
    """A syntactically valid DNS name (already normalized)."""
    return 0 < len(host) <= 253 and all(_LABEL.match(label) for label in host.split("."))


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address tunnels to (mapped, NAT64, 6to4, Teredo)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def address_class(address: IPAddress) -> str | None:
    """Why an address is not a public internet address, or None when it is."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        reason = address_class(inner)
        if reason:
            return f"{reason} (tunnelled in IPv6 {address})"
    if address in METADATA_ADDRESSES:
        return "a cloud-metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private-network address"
    if not address.is_global:
        return "a reserved, non-public address"
    return None


@dataclass(frozen=True)
class HostRule:
    """One entry of ``allowed_hosts`` / ``denied_hosts``."""

    text: str
    name: str | None = None  # exact host name
    suffix: str | None = None  # "*.example.com" -> ".example.com"
    network: IPNetwork | None = None

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        raw = entry.strip()
        if not raw:
            raise ValueError("an empty host entry; write a host name, IP address or CIDR network")
        if "/" in raw and not _looks_like_cidr(raw):
            raise ValueError(
                f"{entry!r} is not a host: write a host name (example.com), a wildcard "
                "(*.example.com), an IP address (10.0.0.5) or a CIDR network (10.0.0.0/8)"
            )
        if _looks_like_cidr(raw) or parse_ip(raw.strip("[]")) is not None:
            try:
                return cls(entry, network=ipaddress.ip_network(raw.strip("[]"), strict=False))
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not a valid IP network: {exc}") from None
        wildcard = raw.startswith("*.")
        name = normalize_host(raw[2:] if wildcard else raw)
        if not is_hostname(name):
            raise ValueError(f"{entry!r} is not a valid host name")
        return cls(entry, suffix="." + name) if wildcard else cls(entry, name=name)

    def matches_name(self, host: str) -> bool:
        if self.name is not None:
            return host == self.name
        return self.suffix is not None and host.endswith(self.suffix)

    def matches_address(self, address: IPAddress) -> bool:
        if self.network is None or address.version != self.network.version:
            return False
        return address in self.network

    def names_exactly(self, host: str, address: IPAddress) -> bool:
        """True for an exact name or a single address: enough to open a metadata address."""
        if self.name is not None:
            return host == self.name
        return self.network is not None and self.network.num_addresses == 1 and (
            self.matches_address(address)
        )


def _looks_like_cidr(raw: str) -> bool:
    head, sep, bits = raw.partition("/")
    return bool(sep) and bits.isdigit() and parse_ip(head.strip("[]")) is not None
