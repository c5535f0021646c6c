"""Hotspot detection, WhistleCall, Muster and two-way evaluation."""
