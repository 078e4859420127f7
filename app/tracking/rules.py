"""Is an open or a click a person or a machine? Versioned rules, kept as data.

Machines are kept, flagged with a reason: image proxies (Google, Yahoo) that fetch every image,
Apple Mail Privacy Protection's prefetch, security scanners (HEAD requests, crawler user agents,
a click within seconds of sending, several links of one message clicked within a second).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from crawlerdetect import CrawlerDetect

RULES_VERSION = "2026-11-30.1"
PROXIES = (  # substring of the user agent → reason
    ("GoogleImageProxy", "google_image_proxy"),
    ("YahooMailProxy", "yahoo_image_proxy"),
    ("Yahoo! Slurp", "yahoo_image_proxy"),
)
APPLE_MPP_AGENTS = {"Mozilla/5.0"}  # Apple's prefetch sends this bare user agent
APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
SCANNER_CLICK_SECONDS = 10  # a click this soon after sending is a link scanner
BURST_CLICK_SECONDS = 1.0  # several links of one message within this: a scanner


@lru_cache(maxsize=4096)
def _crawler(user_agent: str) -> bool:
    return CrawlerDetect(user_agent=user_agent).isCrawler()


def _apple(user_agent: str, ip: str | None) -> bool:
    if user_agent in APPLE_MPP_AGENTS:
        return True
    try:
        return ip is not None and ipaddress.ip_address(ip) in APPLE_NETWORK
    except ValueError:
        return False


def classify_open(method: str, user_agent: str | None, ip: str | None) -> str | None:
    """None for a person, else why a machine fetched the pixel."""
    agent = (user_agent or "").strip()
    if method == "HEAD":
        return "head_request"
    for needle, reason in PROXIES:
        if needle in agent:
            return reason
    if _apple(agent, ip):
        return "apple_mpp"
    if not agent or _crawler(agent[:500]):
        return "scanner_agent"
    return None


def classify_click(
    method: str,
    user_agent: str | None,
    ip: str | None,
    seconds_after_send: float | None,
    scanner_seconds: float = SCANNER_CLICK_SECONDS,
) -> str | None:
    """None for a person, else why a machine followed the link."""
    agent = (user_agent or "").strip()
    if method == "HEAD":
        return "head_request"
    if not agent or _crawler(agent[:500]):
        return "scanner_agent"
    if seconds_after_send is not None and seconds_after_send < scanner_seconds:
        return "click_right_after_send"
    return None
