"""The package's public surface and its layering, as httpx checks its own ``__all__``."""

from __future__ import annotations

import subprocess
import sys

import rtbench


def test_all_is_sorted_and_complete() -> None:
    public = [name for name in rtbench.__all__ if name != "__version__"]
    assert public == sorted(public)
    assert set(public) == set(rtbench._EXPORTS)
    for name in rtbench.__all__:
        assert getattr(rtbench, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        rtbench.nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("rtbench.nope resolved")


def test_protocol_layer_loads_no_io_or_tables() -> None:
    """``import rtbench.protocol`` (sans-IO) must not import trio, wsproto or pandas."""
    code = ("import sys, rtbench.protocol, rtbench.protocol.turn; "
            "print(sorted(m for m in ('trio', 'wsproto', 'pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
