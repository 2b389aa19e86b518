"""One module per ``reid-repro`` subcommand (see :mod:`reid_repro.cli`)."""
