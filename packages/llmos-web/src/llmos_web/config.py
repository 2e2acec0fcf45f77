"""The ``[web]`` config section, contributed through ``llmos_register_config``."""

from __future__ import annotations

from llmos.config import Section
from pydantic import Field, field_validator

from llmos_web import __version__
from llmos_web.hosts import HostRule

DEFAULT_USER_AGENT = f"llmos-web/{__version__} (LLM agent tool; honours robots.txt)"


class WebConfig(Section):
    """Where the web tools may go and how they behave.

    Host entries are a host name (``docs.python.org``), a wildcard for subdomains
    (``*.example.com``), an IP address (``127.0.0.1``, ``::1``) or a CIDR network
    (``10.0.0.0/8``).
    """

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts or networks that may be reached although they resolve to private, "
        "loopback or link-local addresses. Cloud-metadata addresses need their exact name or IP.",
    )
    denied_hosts: list[str] = Field(
        default_factory=list, description="Hosts or networks never fetched (wins over allowed)."
    )
    allow_public_hosts: bool = Field(
        True, description="Fetch any public host; false restricts fetching to allowed_hosts."
    )
    user_agent: str = Field(DEFAULT_USER_AGENT, min_length=1, description="User-Agent header.")
    timeout_s: float = Field(
        20.0, gt=0, description="Seconds one HTTP request (connect, headers, body) may take."
    )
    max_redirects: int = Field(5, ge=0, le=30, description="Redirects followed, each re-checked.")
    max_bytes: int = Field(
        2_000_000, ge=1, description="Default body size cap; longer bodies are cut and flagged."
    )
    cache_max_mb: float = Field(
        64.0, ge=0, description="On-disk cache size under .llmos/web-cache (0 disables it)."
    )
    respect_robots: bool = Field(True, description="Obey robots.txt (RFC 9309).")
    ca_bundle: str | None = Field(
        None, description="PEM file of CA certificates to trust instead of certifi's bundle."
    )

    @field_validator("allowed_hosts", "denied_hosts")
    @classmethod
    def _parse_rules(cls, value: list[str]) -> list[str]:
        for entry in value:
            HostRule.parse(entry)  # raises ValueError with a message naming the entry
        return value

    def allowed_rules(self) -> list[HostRule]:
        return [HostRule.parse(entry) for entry in self.allowed_hosts]

    def denied_rules(self) -> list[HostRule]:
        return [HostRule.parse(entry) for entry in self.denied_hosts]
