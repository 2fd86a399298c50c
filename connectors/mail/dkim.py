"""DKIM signatures (RFC 6376) for outgoing mail, with dkimpy.

relaxed/relaxed canonicalisation survives the header refolding and trailing-space changes
relays make.  From, Subject, Reply-To and the List-Unsubscribe pair are over-signed (listed
once more than they occur), so nobody on the way can add a second one: Gmail and Yahoo trust a
one-click unsubscribe only when its headers are covered by the signature.  Signing costs a few
milliseconds of RSA, so callers run it off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dkim

_OVERSIGNED = (b"from", b"subject", b"reply-to", b"list-unsubscribe", b"list-unsubscribe-post", b"to", b"date")


class DkimKeyError(ValueError):
    """The private key cannot be read or used."""


@dataclass(frozen=True)
class DkimSigner:
    domain: str
    selector: str
    private_key: bytes = field(repr=False)  # PEM

    @classmethod
    def from_file(cls, domain: str, selector: str, path: Path) -> DkimSigner:
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise DkimKeyError(f"cannot read the DKIM key {path}: {exc.strerror}") from exc
        signer = cls(domain, selector, key)
        signer.sign(b"From: check@" + domain.encode("idna") + b"\r\nSubject: key check\r\n\r\nkey check\r\n")
        return signer

    def sign(self, raw: bytes) -> bytes:
        """``raw`` with a ``DKIM-Signature`` header in front."""
        signer = dkim.DKIM(raw)
        signer.add_frozen(_OVERSIGNED)
        try:
            header = signer.sign(
                self.selector.encode("ascii"),
                self.domain.encode("idna"),
                self.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
            )
        except (dkim.DKIMException, ValueError) as exc:
            raise DkimKeyError(f"DKIM signing failed: {exc}") from exc
        return bytes(header) + raw
