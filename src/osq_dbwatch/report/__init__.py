"""The analyst's view: findings rendered as one self-contained HTML page or as text.

read (findings lines, latest version of each chain) -> model (one Chain record
per chain, every string made displayable) -> html (jinja2 page, JSON data,
hashed CSP) or text (terminal timelines).
"""
