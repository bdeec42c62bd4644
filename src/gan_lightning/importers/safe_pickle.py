"""Reading a StyleGAN2-ADA network pickle without running anything from it.

The authors' pickles (``network-snapshot-*.pkl``, ``ffhq.pkl``) hold their networks as *persistent objects*
(``torch_utils/persistence.py``): each one is pickled as ``_reconstruct_persistent_obj(meta)`` with
``meta = {type: 'class', version, module_src, class_name, state}``, where ``module_src`` is the Python source of
the module that defined the class and ``state`` the module's ``__dict__``. ``pickle.load`` would import that source
(an ``exec``); any other global in a pickle can run code too. ``load`` uses an unpickler that knows a short list of
globals, rebuilds each persistent object as a plain ``Record`` (its class name and state; the source is never
looked at), and refuses every other global with one line before anything is built from it.

The tensors inside are pickled the ordinary torch way: ``_rebuild_tensor_v2`` / ``_rebuild_parameter`` over
storages pickled as ``torch.storage._load_from_bytes(bytes)``, which itself is a ``torch.load`` of the bytes; here
those bytes go through ``torch.load(..., weights_only=True)``, torch's own unpickler for plain tensors.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import re
import struct
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import UserError


NOT_A_NETWORK_PICKLE = "not a StyleGAN2-ADA network pickle"


class UnsafePickle(UserError):
    """The pickle names a global outside the allowed list: loading it could run code."""


class TruncatedPickle(UserError):
    """The file ends before the pickle does."""


class NotAPickle(UserError):
    """The file is not a pickle of the records this module rebuilds (raised inside with the reason alone; ``load``
    adds the path and ``NOT_A_NETWORK_PICKLE``)."""


@dataclass
class Record:
    """A persistent object of the authors' code, rebuilt as data: ``class_name`` (``Generator``,
    ``SynthesisLayer``, ...) and ``state``, the module's ``__dict__`` (``_parameters``, ``_buffers`` and
    ``_modules`` hold its tensors and sub-records; ``_init_kwargs`` the arguments it was built with)."""

    class_name: str
    state: dict = field(repr=False)
    version: int | None = None

    @property
    def init_kwargs(self) -> dict:
        kwargs = self.state.get("_init_kwargs")
        return dict(kwargs) if isinstance(kwargs, dict) else {}

    def children(self) -> dict[str, Record]:
        """The sub-modules by attribute name (None entries left out)."""
        return {k: v for k, v in (self.state.get("_modules") or {}).items() if v is not None}

    def tensors(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """``(name, tensor)`` of every parameter and persistent buffer, named as ``state_dict()`` names them."""
        skip = self.state.get("_non_persistent_buffers_set") or set()
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is not None and not (group == "_buffers" and name in skip):
                    yield prefix + name, value
        for name, child in self.children().items():
            if not isinstance(child, Record):
                raise NotAPickle(f"the sub-module {prefix}{name} is a {type(child).__name__}, not a network record")
            yield from child.tensors(f"{prefix}{name}.")

    def state_dict(self) -> dict[str, Tensor]:
        out = dict(self.tensors())
        bad = [k for k, v in out.items() if not isinstance(v, Tensor)]
        if bad:
            raise NotAPickle(f"{self.class_name}: {bad[0]} is a {type(out[bad[0]]).__name__}, not a tensor")
        return out


# --- the stand-ins the allowed globals resolve to: each builds plain data from plain arguments ------------------------
def _persistent_obj(meta: Any) -> Record:
    """``torch_utils.persistence._reconstruct_persistent_obj``: the record, without importing ``module_src``."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str) \
            or not isinstance(meta.get("state"), dict):
        raise NotAPickle("a persistent object whose record is not {type: 'class', class_name, state}")
    version = meta.get("version")
    return Record(meta["class_name"], dict(meta["state"]), version if isinstance(version, int) else None)


def _load_from_bytes(data: Any):
    """``torch.storage._load_from_bytes``: the storage, through torch's weights-only unpickler."""
    if not isinstance(data, (bytes, bytearray)):
        raise NotAPickle(f"a storage pickled as a {type(data).__name__}, not bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (TypedStorage is deprecated: torch warns on every storage)
            storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # what torch's weights-only unpickler raises for what it refuses
        found = re.search(r"unsupported global:? GLOBAL ([\w.]+)", str(e), re.IGNORECASE)  # (torch's wordings)
        what = f"the global {found.group(1)}" if found else "what torch's weights-only loader refuses"
        raise UnsafePickle(f"refused {what} inside a tensor storage (loading it could run code)") from None
    except (RuntimeError, EOFError, ValueError, struct.error) as e:
        raise NotAPickle(f"a tensor storage that does not load ({_first_line(e)})") from None
    if not isinstance(storage, torch.TypedStorage):
        raise NotAPickle(f"a storage's bytes hold a {type(storage).__name__}, not a typed storage")
    return storage


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None) -> Tensor:
    """``torch._utils._rebuild_tensor_v2``: a view of ``storage``, its arguments checked first."""
    if not isinstance(storage, torch.TypedStorage) or not _ints(size) or not _ints(stride) \
            or not isinstance(offset, int) or len(size) != len(stride):
        raise NotAPickle("a tensor whose storage, offset, size or stride is malformed")
    if hooks:
        raise NotAPickle("a tensor with backward hooks")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch._utils._rebuild_tensor_v2(storage, offset, tuple(size), tuple(stride), False, OrderedDict())
    except RuntimeError as e:  # a view past the end of its storage
        raise NotAPickle(f"a tensor that does not fit its storage ({_first_line(e)})") from None


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None) -> Tensor:
    """``torch._utils._rebuild_parameter`` (and ``_with_state``): the parameter's values as a plain tensor."""
    if not isinstance(data, Tensor) or hooks or state:
        raise NotAPickle("a parameter that is not a plain tensor")
    return data


def _ints(values) -> bool:
    return isinstance(values, (tuple, list)) and all(isinstance(v, int) and v >= 0 for v in values)


class _DType:
    """``numpy.dtype`` as pickled (``dtype('f8', False, True)`` plus a state holding the byte order): only what
    ``_numpy_scalar`` needs. numpy scalars appear as attributes (``weight_gain = lr / np.sqrt(fan_in)``)."""

    def __init__(self, code: Any = None, align: Any = False, copy: Any = True):
        self.code, self.order = code, "<"

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.order = state[1]


_SCALAR_FORMATS = {"f8": "d", "f4": "f", "f2": "e", "i8": "q", "i4": "i", "i2": "h", "i1": "b",
                   "u8": "Q", "u4": "I", "u2": "H", "u1": "B", "b1": "?"}


def _numpy_scalar(dtype: Any, data: Any = None):
    """``numpy.core.multiarray.scalar``: a numeric numpy scalar as the Python number (decoded from its bytes)."""
    fmt = _SCALAR_FORMATS.get(getattr(dtype, "code", None))
    if fmt is None or not isinstance(data, bytes):
        raise NotAPickle(f"a numpy scalar of type {getattr(dtype, 'code', dtype)!r} (only numbers are read)")
    order = {"|": "<"}.get(dtype.order, dtype.order)
    try:
        (value,) = struct.unpack(order + fmt, data)
    except struct.error:
        raise NotAPickle(f"a numpy scalar of type {dtype.code} with {len(data)} bytes") from None
    return value


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:
    """``_codecs.encode``, which protocol 2 pickles bytes with (``encode(str, 'latin1')``): that call alone."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise NotAPickle("an _codecs.encode call other than protocol 2's bytes")
    return text.encode("latin1")


# (module, name) -> what the unpickler builds in its place. Everything else is refused.
ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_obj,
    ("dnnlib.util", "EasyDict"): dict,  # a dict with attribute access: its items are all a pickle stores
    ("dnnlib", "EasyDict"): dict,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,  # (protocols < 4 pickle sets and frozensets as a call on a list)
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): _DType,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}

HINTS = {
    ("dnnlib.tflib.network", "Network"): "a TensorFlow StyleGAN2 pickle: convert it with the authors' legacy.py "
                                         "(stylegan2-ada-pytorch) first",
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Python 2's names, which protocols < 3 write (``__builtin__.set``), as Python 3 spells them.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        target = ALLOWED.get((module, name))
        if target is None:
            hint = HINTS.get((module, name), "loading it could run code; a network pickle needs only tensors and "
                                            "network records")
            raise UnsafePickle(f"refused the global {module}.{name} ({hint})")
        return target

    def persistent_load(self, pid: Any) -> Any:
        raise NotAPickle("a pickle with persistent ids (a torch.save file, not a network pickle)")


def load(src: str | Path) -> Any:
    """The pickle at ``src`` with persistent objects as ``Record``s and tensors as tensors, or a ``UserError`` of
    one line: ``UnsafePickle`` (a global outside ``ALLOWED``, named), ``TruncatedPickle``, ``NotAPickle``."""
    path = Path(src)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
        f.seek(0)
        if head.startswith(b"PK"):
            raise NotAPickle(f"{path}: {NOT_A_NETWORK_PICKLE} (a zip archive: a torch.save checkpoint?)")
        try:
            return _Unpickler(f).load()
        except NotAPickle as e:
            raise NotAPickle(f"{path}: {NOT_A_NETWORK_PICKLE} ({e})") from None
        except UserError as e:
            raise type(e)(f"{path}: {e}") from None
        except EOFError:
            raise TruncatedPickle(f"{path}: the pickle is truncated ({size} bytes): download the file again") from None
        except pickle.UnpicklingError as e:
            if "truncated" in str(e):
                raise TruncatedPickle(f"{path}: the pickle is truncated ({size} bytes): download the file again") \
                    from None
            raise NotAPickle(f"{path}: {NOT_A_NETWORK_PICKLE} (not a pickle: {_first_line(e)})") from None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error, RecursionError,
                MemoryError, UnicodeDecodeError) as e:
            raise NotAPickle(f"{path}: {NOT_A_NETWORK_PICKLE} ({type(e).__name__}: {_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
