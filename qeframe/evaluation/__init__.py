"""Evaluation: metrics and result tables (:mod:`.evaluate`) and plots (:mod:`.plots`)."""
