"""Reports for compliance reviewers: HTML, Markdown, JSON and PDF from saved results.

The entry points are :func:`governance.report.render.render` and
:func:`governance.report.render.write_reports`; this package imports nothing heavy.
"""
