"""Pieces shared by the Zalo and Telegram connectors (no platform knowledge here)."""
