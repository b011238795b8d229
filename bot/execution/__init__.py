"""Running an approved plan: its steps on the target, and the way back."""
