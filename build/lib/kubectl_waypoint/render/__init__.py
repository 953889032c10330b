"""Renderers: they only consume finished results and write to a stream."""
