"""Embedded pretrained bases and the small feature extractor that ship with adaptkit."""
