"""Datasets: generation, the store on disk, sharded builds.

One room per concern (each module imports only from those above it in this list):

* :mod:`~qeframe.data.build` — the rows: deterministic, parallel generation blocks (family -> labeler).
* :mod:`~qeframe.data.plan` — the blocks of a dataset divided among ``N`` shards.
* :mod:`~qeframe.data.format` — the on-disk format: file names, format version, identity, content hash.
* :mod:`~qeframe.data.verify` — checking stored files against the manifest's hashes.
* :mod:`~qeframe.data.writer` — the one store writer (data files, resume, wipe, lock, manifest).
* :mod:`~qeframe.data.reader` — :func:`~qeframe.data.reader.open_dataset`,
  :class:`~qeframe.data.reader.Dataset`, :func:`~qeframe.data.reader.store_status`.
* :mod:`~qeframe.data.store` — building a store on one machine
  (:func:`~qeframe.data.store.build_dataset`), migration.
* :mod:`~qeframe.data.export` — a store as one ``.npz``.
* :mod:`~qeframe.data.shards` — building one shard store; :mod:`~qeframe.data.merge` — merging them,
  sharded builds through an executor plugin.

Nothing is imported here, so that ``import qeframe.data.build`` in a worker stays light.
"""
