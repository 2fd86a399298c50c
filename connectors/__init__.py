"""Protocol adapters: each subpackage speaks one peer's protocol (Asterisk AMI, IMAP, SMTP,
1C OData), keeps the connection alive and turns what it hears into domain events.

They use ``crm_core``; ``crm_core`` never imports them.
"""
