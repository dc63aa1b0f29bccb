"""Which file system a path lies on: reading a large dataset where it lies is only fast on a local disk."""

from __future__ import annotations

import os
from pathlib import Path

MOUNTS = "/proc/self/mounts"
# file systems served over a network (or by a user-space daemon that may be one): reads pay a round trip
NETWORK = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "9p", "lustre", "gpfs", "beegfs", "ceph", "glusterfs",
           "fuse.sshfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "fuse.juicefs", "fuse.ceph")


def mount_type(path: str | Path, mounts: str = MOUNTS) -> str | None:
    """The type of the file system `path` lies on (the mount point that is its longest prefix), or None when the
    system does not say (no /proc/self/mounts)."""
    resolved = os.path.realpath(path)
    best, kind = "", None
    try:
        with open(mounts) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def network_filesystem(path: str | Path, mounts: str = MOUNTS) -> str | None:
    """The network file system's type when `path` lies on one, else None (a local disk, or not known)."""
    kind = mount_type(path, mounts)
    return kind if kind is not None and kind.lower() in NETWORK else None
