"""Agent desk: call-centre agents take over bot conversations and hand them back."""
