"""Dispatch modes: each is a plugin that can run a goal."""
