"""Tar member types for what a walk finds besides regular files and symlinks, shared
by ``berth cp`` (a host tree to upload) and ``berth build`` (the context tar)."""

from __future__ import annotations

import os
import stat
import tarfile


def set_node_type(info: tarfile.TarInfo, st: os.stat_result) -> bool:
    """Give ``info`` the type (and device numbers) of a directory, device or FIFO;
    False for what tar cannot carry (a socket: docker skips those)."""
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFDIR:
        info.type = tarfile.DIRTYPE
    elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
        info.type = tarfile.CHRTYPE if fmt == stat.S_IFCHR else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif fmt == stat.S_IFIFO:
        info.type = tarfile.FIFOTYPE
    else:
        return False
    return True
