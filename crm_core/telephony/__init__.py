"""Telephony in domain terms: what the PBX reports, how calls are followed, what gets logged."""
