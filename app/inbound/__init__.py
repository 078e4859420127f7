"""The inbound SMTP server: delivery status notifications at the VERP return path, and
unsubscribe requests by mail. It accepts only our own addresses and never relays."""
