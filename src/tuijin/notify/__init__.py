"""Notifications: in-app inbox, e-mail, and chat robots (WeCom, DingTalk, Feishu) through an outbox."""
