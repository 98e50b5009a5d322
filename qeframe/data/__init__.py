"""Datasets: the generation plan (:mod:`.build`), the on-disk store (:mod:`.store`) and sharded,
parallel builds (:mod:`.shards`)."""
