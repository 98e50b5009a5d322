"""Learning: training (:mod:`.train`), multi-process training (:mod:`.distributed`), routed
ensembles (:mod:`.ensemble`), the gated, calibrated prediction layer (:mod:`.prediction`) and the
run folder (:mod:`.runs`)."""
