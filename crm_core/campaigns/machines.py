"""Telling a person's open or click from a machine's, by rules simple enough to explain.

Every hit is recorded; a machine's is flagged with the rule that caught it and kept out of the
human counts.  The first rule that matches decides.  The rules, and where they come from:

- Apple Mail Privacy Protection fetches every image of every message with the bare
  ``User-Agent: Mozilla/5.0`` from Apple's egress addresses (Mailgun, SendGrid's
  ``sg_machine_open``): a machine open, whenever it comes.
- Gmail's and Yahoo's image proxies fetch when the person opens the message: a human open
  (through a proxy); on a *link* they are prefetching, so a machine click.
- Security gateways (Defender Safe Links, Proofpoint, Mimecast, Barracuda...) follow every link
  within seconds of delivery, often with a browser's User-Agent: HEAD requests, automation
  User-Agents, a hit within seconds of sending, two different links of one message within
  2 s or three within 10 s (a person has to come back to the message between clicks).
- An address in Apple's list on a *click* is a Safari user behind iCloud Private Relay: human.

No network access is needed: Apple's egress list (``egress-ip-ranges.csv``) and an operator's
list of scanner networks are optional files.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_AUTOMATION = re.compile(
    r"bot\b|crawl|spider|slurp|python-|aiohttp|httpx|requests/|curl/|wget/|go-http-client|java/|"
    r"apache-httpclient|libwww|lwp-|headlesschrome|phantomjs|puppeteer|playwright|"
    r"barracuda|proofpoint|mimecast|ironport|cisco|fortimail|sophos|trendmicro|symantec|forcepoint|"
    r"zscaler|checkpoint|microsoft office|ms-office|msoffice|preview|linkexpand|facebookexternal|"
    r"slackbot|skypeuripreview|whatsapp|telegrambot",
    re.IGNORECASE,
)
_OBSOLETE = re.compile(r"MSIE [1-9]\.|MSIE 10\.|Trident/[1-6]\.", re.IGNORECASE)
_BROWSER = re.compile(r"Chrome/|Safari/|Firefox/|Edg/|OPR/", re.IGNORECASE)
_BARE = "Mozilla/5.0"


class Networks:
    """A set of IP networks, looked up by bisection over merged ranges."""

    def __init__(self, cidrs: Iterable[str] = ()) -> None:
        nets: dict[int, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {4: [], 6: []}
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                continue
            nets[net.version].append(net)
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, listed in nets.items():
            merged = list(ipaddress.collapse_addresses(listed))  # type: ignore[type-var]  # one version per list
            self._starts[version] = [int(n.network_address) for n in merged]
            self._ends[version] = [int(n.broadcast_address) for n in merged]

    @classmethod
    def from_file(cls, path: Path) -> Networks:
        """One network per line, first comma-separated field (Apple's CSV has that shape)."""
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
        return cls(line.split(",", 1)[0] for line in lines if line.strip() and not line.startswith("#"))

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not any(self._starts.values()):  # an empty list: no parsing
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        starts = self._starts.get(ip.version, [])
        at = bisect.bisect_right(starts, int(ip)) - 1
        return at >= 0 and int(ip) <= self._ends[ip.version][at]


@dataclass(frozen=True)
class MachineRules:
    apple: Networks = field(default_factory=Networks)
    scanners: Networks = field(default_factory=Networks)
    open_min_seconds: float = 2.0  # an open this soon after the SMTP server took the message is no person's
    click_min_seconds: float = 3.0
    pair_seconds: float = 2.0  # two different links of one message within this: a scanner
    burst_seconds: float = 10.0
    burst_links: int = 3  # this many different links within burst_seconds: a scanner
    early_seconds: float = 300.0  # the delivery window, for the weaker signals


@dataclass(frozen=True)
class Hit:
    kind: str  # "open" or "click"
    method: str
    user_agent: str | None
    ip: str | None
    seconds_since_sent: float | None
    has_accept_language: bool = True
    links_in_pair: int = 1  # different links of this message hit within pair_seconds, this one included
    links_in_burst: int = 1  # the same within burst_seconds


@dataclass(frozen=True)
class Verdict:
    human: bool
    reason: str  # the rule that decided; "human" when none caught it
    proxied: bool = False


@functools.lru_cache(maxsize=4096)
def _automation(agent: str) -> bool:
    """The long pattern costs tens of microseconds a search; a mailing's hits come from a few
    hundred distinct agents, so each is searched once."""
    return _AUTOMATION.search(agent) is not None


def classify(hit: Hit, rules: MachineRules) -> Verdict:
    agent = (hit.user_agent or "").strip()
    if hit.method.upper() in ("HEAD", "OPTIONS"):
        return Verdict(False, "head_request")
    if not agent:
        return Verdict(False, "no_user_agent")
    if hit.kind == "open":
        return _open(hit, agent, rules)
    return _click(hit, agent, rules)


def _open(hit: Hit, agent: str, rules: MachineRules) -> Verdict:
    if agent == _BARE or hit.ip in rules.apple:
        return Verdict(False, "apple_mpp", proxied=True)
    if "GoogleImageProxy" in agent:
        return Verdict(True, "gmail_proxy", proxied=True)
    if "YahooMailProxy" in agent:
        return Verdict(True, "yahoo_proxy", proxied=True)
    if _automation(agent) and "Microsoft Outlook" not in agent:
        return Verdict(False, "automation_ua")
    if hit.ip in rules.scanners:
        return Verdict(False, "scanner_ip")
    if hit.seconds_since_sent is not None and hit.seconds_since_sent < rules.open_min_seconds:
        return Verdict(False, "too_fast")
    return Verdict(True, "human")


def _click(hit: Hit, agent: str, rules: MachineRules) -> Verdict:
    early = hit.seconds_since_sent is not None and hit.seconds_since_sent < rules.early_seconds
    if agent == _BARE:
        return Verdict(False, "bare_ua")
    if "GoogleImageProxy" in agent or "YahooMailProxy" in agent:
        return Verdict(False, "image_proxy_prefetch")
    if _automation(agent):
        return Verdict(False, "automation_ua")
    if _OBSOLETE.search(agent):
        return Verdict(False, "obsolete_ua")
    if hit.ip in rules.scanners:
        return Verdict(False, "scanner_ip")
    if hit.seconds_since_sent is not None and hit.seconds_since_sent < rules.click_min_seconds:
        return Verdict(False, "too_fast")
    if hit.links_in_pair >= 2:
        return Verdict(False, "link_pair_burst")
    if hit.links_in_burst >= rules.burst_links:
        return Verdict(False, "link_burst")
    if not hit.has_accept_language and _BROWSER.search(agent) and early:
        return Verdict(False, "browser_without_accept_language")
    return Verdict(True, "human")
