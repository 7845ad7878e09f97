"""Trainer workflow for the NLU data: validate, report, review export, CSV export/import, cross-validation.

Run `python -m trainer --help` (or the Makefile targets `validate`, `nlu-report`, `crossval`, `review`,
`import-nlu`, `export-nlu`). The guide for call-centre trainers is docs/trainer-guide.vi.md.
"""
