"""The learning loop: match goals to traces, replay them, and keep the evidence."""
