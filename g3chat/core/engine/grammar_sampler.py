"""A grammar sampler that checks the likely tokens first (llama.cpp's common_sampler idea, as a sampler).

llama.cpp's grammar sampler tests every token of the vocabulary against the grammar at every step: on
Gemma's 262,144-token vocabulary that costs far more than decoding a token of a small model. This
sampler wraps it: the grammar is applied to the ``TOP`` most likely tokens first and, when any of them
fits, the rest of the vocabulary is ruled out; only when none fits is the whole vocabulary checked. The
output always follows the grammar; what changes is that a grammar-valid token outside the ``TOP`` most
likely is not sampled while a likelier valid one exists (llama.cpp's own common sampler makes the same
trade: it samples first and checks the whole vocabulary only when the sampled token does not fit). While
a lazy grammar is still waiting for its trigger the sampler costs two tiny probes.
"""

from __future__ import annotations

import ctypes
from typing import Any

TOP = 512
_LIVE: dict[int, _OnDemand] = {}  # ctypes callbacks must outlive llama.cpp's use of them
_FREED: list[int] = []


class _OnDemand:
    def __init__(self, inner: Any, probe_tokens: tuple[int, int]) -> None:
        import llama_cpp
        import numpy as np

        self.np = np
        self.lib = llama_cpp
        self.inner = inner
        self.dtype = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
        self.probe = (llama_cpp.llama_token_data * 2)()
        self.probe_tokens = probe_tokens
        self.small = (llama_cpp.llama_token_data * TOP)()
        iface = llama_cpp.llama_sampler_i()
        self.callbacks = [
            llama_cpp.llama_sampler_i_name(lambda smpl: b"grammar-on-demand"),
            llama_cpp.llama_sampler_i_accept(
                lambda smpl, token: llama_cpp.llama_sampler_accept(self.inner, token)
            ),
            llama_cpp.llama_sampler_i_apply(lambda smpl, cur_p: self.apply(cur_p)),
            llama_cpp.llama_sampler_i_reset(lambda smpl: llama_cpp.llama_sampler_reset(self.inner)),
            llama_cpp.llama_sampler_i_free(lambda smpl: self.free()),
        ]
        iface.name, iface.accept, iface.apply, iface.reset, iface.free = self.callbacks
        self.iface = iface
        self.sampler = llama_cpp.llama_sampler_init(ctypes.pointer(iface), None)

    def _array(self, data: Any, size: int) -> Any:
        return self.lib.llama_token_data_array(data, size, -1, False)

    def _waiting(self) -> bool:
        """True while a lazy grammar has not been triggered: it then leaves both probe tokens alone
        (an active grammar rules out end-of-generation before it is complete, anything else after)."""
        for i, token in enumerate(self.probe_tokens):
            # llama_cpp annotates the fields with their ctypes types; ctypes reads and writes Python ints
            self.probe[i].id, self.probe[i].logit, self.probe[i].p = token, 0.0, 0.0  # type: ignore[assignment]
        array = self._array(self.probe, 2)
        self.lib.llama_sampler_apply(self.inner, ctypes.byref(array))
        return self.probe[0].logit == 0.0 and self.probe[1].logit == 0.0

    def apply(self, cur_p: Any) -> None:
        try:
            self._apply(cur_p)
        except Exception:  # never leave the step unconstrained: an invalid token would abort llama.cpp
            self.lib.llama_sampler_apply(self.inner, cur_p)

    def _apply(self, cur_p: Any) -> None:
        if self._waiting():
            return
        np = self.np
        array = cur_p.contents
        size = int(array.size)
        if size <= TOP:
            self.lib.llama_sampler_apply(self.inner, cur_p)
            return
        raw = (ctypes.c_char * (size * self.dtype.itemsize)).from_address(
            ctypes.addressof(array.data.contents)
        )
        data = np.frombuffer(raw, dtype=self.dtype, count=size)
        top = np.argpartition(data["logit"], size - TOP)[size - TOP :]
        small = np.frombuffer(self.small, dtype=self.dtype, count=TOP)
        small[:] = data[top]
        self.lib.llama_sampler_apply(self.inner, ctypes.byref(self._array(self.small, TOP)))
        keep = small["logit"] != -np.inf
        if not keep.any():
            self.lib.llama_sampler_apply(self.inner, cur_p)  # too few likely tokens fit: check them all
            return
        logits = data["logit"].copy()
        logits[:] = -np.inf
        logits[top[keep]] = small["logit"][keep]
        data["logit"] = logits

    def free(self) -> None:
        self.lib.llama_sampler_free(self.inner)
        self.inner = None
        _FREED.append(id(self))


def on_demand_sampler(inner: Any, probe_tokens: tuple[int, int]) -> Any:
    """Wrap the grammar sampler ``inner`` (ownership passes to the result, which a chain then owns).

    ``probe_tokens``: an end-of-generation token and an ordinary token.
    """
    while _FREED:
        _LIVE.pop(_FREED.pop(), None)
    wrapper = _OnDemand(inner, probe_tokens)
    _LIVE[id(wrapper)] = wrapper
    return wrapper.sampler
