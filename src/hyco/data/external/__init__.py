"""Trajectories made elsewhere, imported into hyco's dataset store: The Well's and PDEBench's HDF5 layouts.

With `data.external.path` set, `ensure_dataset` imports the file's trajectories instead of simulating them;
the store keeps its validation, checksums and atomic writes, and every task reads the imported file like a
generated one. The SHA-256 of each source file is part of the dataset's config hash, so a changed source is
imported anew (the digest is cached next to the datasets by size and modification time: a multi-GB file is
read once, not at every run).

Layouts read (arrays have x first; hyco stores space in tensor order, x last, and transposes on import):

The Well (one file per split of a dataset, ``data/{train,valid,test}/*.hdf5``):
- root attributes ``n_trajectories``, ``grid_type`` (only ``cartesian`` grids are read), ``dataset_name``;
- group ``dimensions``: attribute ``spatial_dims`` (e.g. ``['x', 'y']``), one coordinate dataset per axis and
  ``time`` (``[T]``, or ``[n_traj, T]`` when it varies between trajectories);
- groups ``t0_fields`` (scalars), ``t1_fields`` (vectors: D components), ``t2_fields`` (tensors: D x D) with
  attribute ``field_names``; a field is ``[n_traj, T, *space, (D,)*order]``, the two leading axes present only
  when its attributes ``sample_varying``/``time_varying`` say so, and a spatial axis of size 1 or absent where
  ``dim_varying`` is false (it is broadcast);
- ``boundary_conditions/*``: ``bc_type`` per ``associated_dims``, recorded and compared with the model's.

PDEBench, two layouts:
- arrays at the root: ``tensor`` ``[N, T, X(, Y, Z)]`` (advection, Burgers, 1D reaction-diffusion) or one
  dataset per variable (``density``, ``pressure``, ``Vx``, ... of the CFD problems), each ``[N, T, *space]``
  with an optional trailing component axis (``[N, *space]``: constant in time), the grid in
  ``x-coordinate`` (``y-coordinate``, ``z-coordinate``) and ``t-coordinate``;
- one group per trajectory (``0000``, ``0001``, ..., taken in name order) holding ``data``
  ``[T, *space, C]`` and ``grid/x`` (``grid/y``, ``grid/z``), ``grid/t`` (2D diffusion-reaction, shallow water).

Mapping (`data.external.fields`, file field -> physics field): the file's field names (The Well: a
dataset of a ``t*_fields`` group; PDEBench: ``tensor``, ``density``, ``data``, ...), with ``[i]`` or ``_i`` to
take one component (or The Well's own component names, ``velocity_x``, ``stress_xy``), onto the physics
model's fields, with ``[j]`` for one channel. Left empty, a physics field
takes the file field of its own name, and a file with a single field whose components match the model's
channels fills them in order. A file field constant in time may only fill a static (not evolved) field.

Splits: `data.num_train`, `num_val`, `num_test` trajectories, in this order, from `path` (or from the file
`splits.<split>`, the The Well way); frames `start_frame`, `start_frame + frame_stride`, ... (`data.num_frames`
of them). The grid must match `physics.resolution`; the file's bounds and dt (times `frame_stride`) replace
`physics.bounds` and `physics.dt` (see `physics_config`). True coefficients are those of the physics config
that are known (`learn: false`) or listed in `data.external.known_truth`; the others are unknown, and the
evaluation reports them so.
"""

from hyco.data.external.importer import (
    DIGEST_CACHE,
    ImportPlan,
    file_digest,
    import_trajectories,
    plan_import,
    read_truths,
)
from hyco.data.external.mapping import ChannelSource, channel_map
from hyco.data.external.physics_setup import physics_config
from hyco.data.external.source import Source

__all__ = ["DIGEST_CACHE", "ChannelSource", "ImportPlan", "Source", "channel_map", "file_digest",
           "import_trajectories", "physics_config", "plan_import", "read_truths"]
