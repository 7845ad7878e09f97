"""The notifier process (issue 16): turns notification events into messages on the customer's
channel (Telegram, Zalo, ZNS, SMS), under quiet hours and a daily cap, and records each outcome."""
