"""Signing service: service requests, their documents, amendments and OTP-confirmed PAdES signing."""
