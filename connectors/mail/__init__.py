"""Internet mail as bytes: parsing what arrives (MIME, charsets, hostile HTML) and building
what goes out.  Shared by the IMAP and SMTP connectors; knows no client and no database."""
