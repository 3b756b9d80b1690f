"""The in-process engine: llama-cpp-python over a local GGUF file.

One :class:`LlamaCppEngine` owns one ``llama_cpp.Llama``. A turn renders the conversation with the
model's chat template (see :mod:`g3chat.core.prompt`), evaluates only the part of the prompt the KV cache
does not already hold, then samples token by token, checking the cancel event after every token and
between prompt batches.

With a projector (``mmproj``) attachments become media chunks evaluated by llama.cpp's mtmd between the
prompt's text batches (see :mod:`g3chat.core.engine.projector`); attachments the model cannot take reach
it as a short text note and stay in the history. A Gemma 3n model hears audio attachments through
g3chat's own audio encoder instead (mtmd skips Gemma 3n's audio tower): see
:mod:`g3chat.core.engine.hearing`.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import hashlib
import io
import json
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from g3chat.core.engine.base import MMPROJ_FIX, NO_AUDIO, NO_VISION, MediaProblem, ModelInfo
from g3chat.core.engine.decoding import StopMatcher, sample_tokens
from g3chat.core.engine.grammar import GrammarCache
from g3chat.core.engine.hearing import AudioChunk, Hearing
from g3chat.core.engine.kv import KVSession
from g3chat.core.engine.native_log import native_log
from g3chat.core.engine.projector import MediaChunk, MediaItem, Projector
from g3chat.core.engine.speculative import (
    CALIBRATION_BATCH,
    DraftPolicy,
    FixedDraft,
    PromptLookupDrafter,
    calibration_ratios,
)
from g3chat.core.engine.state_cache import StateCache
from g3chat.core.errors import ContextOverflowError, EngineError, MediaError, ModelFileError
from g3chat.core.gguf_file import inspect_gguf
from g3chat.core.prompt import ChatFormat, Segment, chat_format_for
from g3chat.core.tools.protocol import message_text
from g3chat.core.types import (
    AttachmentPart,
    EngineEvent,
    Finished,
    FinishReason,
    GenerationParams,
    Message,
    PromptProgress,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    from g3chat.core.audio.config import AudioConfig


@dataclass
class PromptPlan:
    """A rendered prompt as tokens (media chunks as placeholder ids) and where its media chunks start."""

    tokens: list[int] = field(default_factory=list)
    media: list[tuple[int, MediaChunk | AudioChunk]] = field(default_factory=list)
    items: list[MediaItem] = field(default_factory=list)  # keeps the chunks alive until evaluated
    preamble: int = 0  # leading tokens every conversation with this system prompt starts with (0: none)

    @property
    def spans(self) -> list[tuple[int, int]]:
        return [(start, start + chunk.n_tokens) for start, chunk in self.media]


def default_threads() -> int:
    """Physical cores (llama.cpp decodes fastest with one thread per physical core)."""
    import psutil

    return max(1, psutil.cpu_count(logical=False) or psutil.cpu_count() or 1)


class LlamaCppEngine:
    """Runs a GGUF model in this process through llama-cpp-python."""

    def __init__(
        self,
        model_path: Path | str,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_gpu_layers: int = -1,
        n_batch: int = 512,
        swa_full: bool = True,
        flash_attn: bool = True,
        speculative: str | bool = "auto",
        draft_length: int | None = None,
        state_dir: Path | None = None,
        state_memory_mb: int = 512,
        state_disk_mb: int = 2048,
        verbose: bool = False,
        name: str | None = None,
        is_test_model: bool = False,
        mmproj: Path | str | None = None,
        audio_weights: Sequence[Path | str] = (),
        audio_config: AudioConfig | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.mmproj = Path(mmproj) if mmproj else None
        self._projector: Projector | None = None
        # Gemma 3n's audio encoder weights, in order of preference (see engine/hearing.py)
        self.audio_weights = tuple(Path(p) for p in audio_weights)
        self.audio_config = audio_config
        self._hearing: Hearing | None = None
        self.n_ctx_requested = n_ctx
        self.n_threads = n_threads or default_threads()
        self.n_gpu_layers = n_gpu_layers
        self.n_batch = n_batch
        self.swa_full = swa_full
        self.flash_attn = flash_attn
        # "auto": speculate when sampling without a seed; greedy and seeded runs stay reproducible.
        self.speculative = ("on" if speculative else "off") if isinstance(speculative, bool) else speculative
        self.draft_length = draft_length  # None: chosen per step from measured costs (DraftPolicy)
        self.state_dir = state_dir
        self.state_memory_mb = state_memory_mb
        self.state_disk_mb = state_disk_mb
        self._kv: KVSession | None = None
        self.verbose = verbose
        self.name = name or self.model_path.name
        self.is_test_model = is_test_model
        self._llm: Any = None
        self._info: ModelInfo | None = None
        self._format: ChatFormat | None = None
        self._stop_ids: frozenset[int] = frozenset()
        self._pieces: dict[int, bytes] = {}
        self._vocab: Any = None
        self._evaluated = 0
        self._piece_buf = ctypes.create_string_buffer(64)
        self._grammars = GrammarCache()
        self._preambles: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._draft_ratios: dict[int, float] | None = None  # see draft_ratios()
        self._n_vocab = 0

    # ------------------------------------------------------------------------------------------ load

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    @property
    def llama(self) -> Any:
        """The underlying ``llama_cpp.Llama`` (for low-level extensions such as vision and KV state)."""
        return self._require()

    def load(self) -> ModelInfo:
        if self._info is not None:
            return self._info
        summary = inspect_gguf(self.model_path)
        import llama_cpp

        native_log.install(self.verbose)
        native_log.take_errors()  # forget what earlier loads logged
        n_ctx = self.n_ctx_requested or summary.context_length or 4096
        if summary.context_length:
            n_ctx = min(n_ctx, summary.context_length)
        started = time.perf_counter()
        # verbose=True keeps llama-cpp-python from redirecting the process's stdout/stderr file descriptors
        # during the load (which would blank a running TUI); native logs go through native_log instead and
        # llama-cpp-python's own Python prints are swallowed here unless we are verbose.
        quiet = contextlib.nullcontext() if self.verbose else contextlib.redirect_stderr(io.StringIO())
        try:
            with quiet:
                llm = llama_cpp.Llama(
                    model_path=str(self.model_path),
                    n_ctx=n_ctx,
                    n_batch=self.n_batch,
                    n_ubatch=self.n_batch,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_gpu_layers=self.n_gpu_layers,
                    swa_full=self.swa_full,
                    flash_attn=self.flash_attn,
                    verbose=True,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            detail = native_log.explain() or str(exc)
            raise ModelFileError(f"{self.model_path}: llama.cpp could not load the model: {detail}") from None
        llm.verbose = self.verbose
        load_s = time.perf_counter() - started
        self._llm = llm
        self._grammars.install(llm)
        vocab = llm._model.vocab
        bos_text = llm._model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
        eos_text = llm._model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else ""
        self._format = chat_format_for(llm.metadata.get("tokenizer.chat_template"), bos_text, eos_text)
        # End-of-generation tokens (EOS, <end_of_turn>) are asked of llama.cpp per token; in addition a chat
        # model must never open a new turn itself (a base model sometimes does).
        opener = llm.tokenize(b"<start_of_turn>", add_bos=False, special=True)
        self._stop_ids = frozenset(opener if len(opener) == 1 else ())
        self._vocab = vocab
        self._n_vocab = llm.n_vocab()
        self._kv = KVSession(llm, self._state_cache(llm))
        if self.mmproj is not None:
            try:
                self._projector = Projector(
                    self.mmproj, llm, n_threads=self.n_threads, use_gpu=self.n_gpu_layers != 0
                )
            except BaseException:
                self._llm = None
                llm.close()
                raise
        projector = self._projector
        if summary.architecture == "gemma3n":
            self._hearing = Hearing(llm, self.audio_weights, self.audio_config)
        hears = self._hearing is not None and self._hearing.ready
        self._info = ModelInfo(
            name=self.name,
            path=str(self.model_path),
            n_ctx=llm.n_ctx(),
            n_ctx_train=summary.context_length,
            architecture=summary.architecture,
            chat_format=self._format.name,
            load_s=load_s,
            is_test_model=self.is_test_model,
            projector=projector.path.name if projector else None,
            vision=bool(projector and projector.vision),
            audio=bool(projector and projector.audio) or hears,
        )
        return self._info

    def _state_cache(self, llm: Any) -> StateCache | None:
        """Saved KV states for this model file and these context settings only (see state_cache)."""
        if self.state_memory_mb <= 0 and (self.state_dir is None or self.state_disk_mb <= 0):
            return None
        import llama_cpp

        st = self.model_path.stat()
        key = "|".join(
            str(part)
            for part in (
                self.model_path.resolve(), st.st_size, st.st_mtime_ns, llm.n_ctx(), self.swa_full,
                self.flash_attn, llm.context_params.type_k, llm.context_params.type_v, llama_cpp.__version__,
            )
        )  # fmt: skip
        return StateCache(
            key,
            self.state_dir if self.state_disk_mb > 0 else None,
            memory_budget=max(0, self.state_memory_mb) << 20,
            disk_budget=max(0, self.state_disk_mb) << 20,
        )

    def close(self) -> None:
        if self._hearing is not None:
            self._hearing.close()
            self._hearing = None
        if self._projector is not None:
            self._projector.close()
            self._projector = None
        if self._llm is not None:
            self._llm.close()
        self._llm = None
        self._info = None
        self._kv = None
        self._preambles.clear()
        self._draft_ratios = None

    def _require(self) -> Any:
        if self._llm is None:
            raise EngineError("the model is not loaded")
        return self._llm

    # ---------------------------------------------------------------------------------- tokenizing

    def segments(self, messages: Sequence[Message]) -> list[Segment]:
        self._require()
        assert self._format is not None
        return self._format.segments(messages, add_generation_prompt=True)

    def tokenize_prompt(self, messages: Sequence[Message]) -> list[int]:
        """The prompt's tokens; each media chunk's positions hold its (negative) placeholder ids."""
        return self.plan(messages).tokens

    def plan(self, messages: Sequence[Message], *, preamble: bool = True) -> PromptPlan:
        llm = self._require()
        plan = PromptPlan()
        generated = {
            text.strip(): m.tokens
            for m in messages
            if m.role == "assistant" and m.tokens and (text := message_text(m)).strip()
        }
        for seg in self.segments(messages):
            if seg.media is None:
                ids = generated.get(seg.text) if not seg.special else None
                if ids is not None:
                    plan.tokens.extend(self._spelled(seg.text, ids))
                    continue
                plan.tokens.extend(llm.tokenize(seg.text.encode("utf-8"), add_bos=False, special=seg.special))
                continue
            item = self._media_item(seg.media)
            if item is None:
                note = f"[{seg.media.kind} {seg.media.label}: not available to this model]"
                plan.tokens.extend(llm.tokenize(note.encode("utf-8"), add_bos=False, special=False))
                continue
            plan.items.append(item)
            for piece in item.pieces:
                if isinstance(piece, list):
                    plan.tokens.extend(piece)
                else:
                    assert isinstance(piece, (MediaChunk, AudioChunk))  # the projector's or hearing's
                    plan.media.append((len(plan.tokens), piece))
                    plan.tokens.extend(piece.placeholders)
        if preamble:
            plan.preamble = self._preamble(messages, plan.tokens)
        return plan

    def _spelled(self, text: str, ids: Sequence[int]) -> list[int]:
        """``text`` as tokens, taking the generated ``ids`` for as much of it as they spell exactly.

        The answer's text is what the ids decoded to (as the engine decodes while streaming: pieces through
        an incremental UTF-8 decoder that replaces broken bytes, control tokens showing as nothing), but the
        template trims it and stop strings may have cut it: the ids are used up to the last one that ends
        on a whole character within the text, and the rest is tokenized. Ids that decode to another text
        (another vocabulary, an edited message) are used only as far as they agree with it.
        """
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        position = kept = spelled = 0
        for index, token in enumerate(ids):
            if token < 0 or token >= self._n_vocab:
                break
            out = decoder.decode(self._piece(token))
            if out and not text.startswith(out, position):
                break
            position += len(out)
            if not decoder.getstate()[0]:  # no partial character pending: a clean place to stop
                kept, spelled = index + 1, position
        rest = text[spelled:].encode("utf-8")
        tail = self._llm.tokenize(rest, add_bos=False, special=False) if rest else []
        return [*ids[:kept], *tail]

    def _preamble(self, messages: Sequence[Message], tokens: Sequence[int]) -> int:
        """How many leading ``tokens`` any conversation with these system messages starts with: the
        rendered system prompt (the tools' description included) up to where the first user text begins.
        Found as the tokens two probe conversations share, so it holds for any chat template."""
        system = [m for m in messages if m.role == "system" and m.text.strip()]
        if not system or len(system) == len(messages):
            return 0
        key = tuple(m.text for m in system)
        shared = self._preambles.get(key)
        if shared is None:
            a, b = (
                self.plan([*system, Message.text_message("user", probe)], preamble=False).tokens
                for probe in ("A", "z")
            )
            n = 0
            while n < min(len(a), len(b)) and a[n] == b[n]:
                n += 1
            shared = tuple(a[:n])
            if len(self._preambles) >= 16:
                self._preambles.clear()
            self._preambles[key] = shared
        n = len(shared)
        return n if n < len(tokens) and tuple(tokens[:n]) == shared else 0

    def _media_item(self, part: AttachmentPart) -> MediaItem | None:
        hearing = self._hearing if part.kind == "audio" else None
        if (self._projector is None and hearing is None) or self.media_problem(part) is not None:
            return None
        try:
            if hearing is not None:
                return hearing.item(part)
            return self._projector.tokenize(part) if self._projector is not None else None
        except MediaError:
            return None  # e.g. the stored file was deleted: the model gets the note instead

    def media_problem(self, part: AttachmentPart) -> MediaProblem | None:
        if part.kind == "text_file":  # written into the prompt as text
            return None
        if part.kind == "audio" and self._hearing is not None:
            return self._hearing.problem
        if self._projector is not None:
            reason = self._projector.cannot_take(part)
            return MediaProblem(reason) if reason else None
        if part.kind == "image":
            return MediaProblem(NO_VISION, MMPROJ_FIX.format(kind="image"))
        return MediaProblem(NO_AUDIO, MMPROJ_FIX.format(kind="audio"))

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens including every media chunk's (256 per image for Gemma 3n)."""
        return len(self.plan(messages).tokens)

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            import llama_cpp

            vocab = self._llm._model.vocab
            n = llama_cpp.llama_token_to_piece(vocab, token, self._piece_buf, len(self._piece_buf), 0, False)
            if n < 0:
                self._piece_buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(vocab, token, self._piece_buf, -n, 0, False)
            piece = self._piece_buf.raw[:n]
            self._pieces[token] = piece
        return piece

    # --------------------------------------------------------------------------------- generation

    def _grammar(self, params: GenerationParams) -> Any:
        """The compiled grammar for ``params`` (lazy with triggers), or None; see engine/grammar.py."""
        if not params.grammar:
            return None
        return self._grammars.get(self._require(), params.grammar, params.grammar_triggers)

    def perf(self) -> dict[str, float]:
        """llama.cpp's own counters since the start of the last turn (prompt tokens evaluated, timings)."""
        import llama_cpp

        data = llama_cpp.llama_perf_context(self._require().ctx)
        return {
            "n_p_eval": data.n_p_eval,
            "n_eval": data.n_eval,
            "t_p_eval_ms": data.t_p_eval_ms,
            "t_eval_ms": data.t_eval_ms,
        }

    def cached_tokens(self) -> list[int]:
        """Tokens whose keys and values the KV cache holds, in order."""
        self._require()
        assert self._kv is not None
        return self._kv.tokens()

    def _prefill(
        self, plan: PromptPlan, cancel: threading.Event | None, calibrate: bool = False
    ) -> Iterator[PromptProgress]:
        """Evaluate what the cache lacks: text in batches, each media chunk whole through the projector.

        A batch never spans the end of the preamble (so the cache holds the same values whether the
        preamble was evaluated now or restored), and a preamble evaluated now is saved as a shared prefix.
        """
        assert self._kv is not None
        llm = self._llm
        tokens = plan.tokens
        reuse = self._kv.prepare(tokens, plan.spans)
        total = len(tokens) - reuse
        preamble = plan.preamble if plan.preamble > reuse else 0
        report = total > self.n_batch or preamble > 0 or any(start >= reuse for start, _ in plan.media)
        self._evaluated = 0
        position = reuse
        for start, chunk in [*[m for m in plan.media if m[0] >= reuse], (len(tokens), None)]:
            cuts = [preamble, start] if position < preamble < start else [start]
            timed = chunk is None and calibrate and start - max(position, preamble) > CALIBRATION_BATCH
            if timed:
                cuts[-1:] = [start - CALIBRATION_BATCH - 1]
            for cut in cuts:
                todo = tokens[position:cut]
                for offset in range(0, len(todo), self.n_batch):
                    if cancel is not None and cancel.is_set():
                        return
                    batch = todo[offset : offset + self.n_batch]
                    llm.eval(batch)
                    self._evaluated += len(batch)
                    if report:
                        stage: Literal["preamble", "prompt"] = (
                            "preamble" if llm.n_tokens <= preamble else "prompt"
                        )
                        yield PromptProgress(self._evaluated, total, stage)
                position = cut
                if preamble and cut == preamble:
                    with contextlib.suppress(OSError, RuntimeError):
                        self._kv.stash_prefix(to_disk=self.state_dir is not None)
            if timed:
                self._calibrate(tokens[position:start])
                self._evaluated += start - position
                position = start
            if chunk is None:
                break
            if cancel is not None and cancel.is_set():
                return
            if isinstance(chunk, AudioChunk):
                chunk.evaluate(llm)  # records its placeholder ids itself
            else:
                assert self._projector is not None
                self._kv.append_placeholders(
                    chunk.placeholders, self._projector.evaluate(llm, chunk, self.n_batch)
                )
            self._evaluated += chunk.n_tokens
            position = start + chunk.n_tokens
            yield PromptProgress(self._evaluated, total)

    # --------------------------------------------------------------------------- speculation costs

    def _calibrate(self, last: Sequence[int]) -> None:
        """Evaluate the prompt's last ``CALIBRATION_BATCH + 1`` tokens as one verification-sized batch and
        one single token, timing both: the loaded model's cost curve for DraftPolicy (once per model and
        settings; kept in the state folder)."""
        assert self._kv is not None and len(last) == CALIBRATION_BATCH + 1
        started = time.perf_counter()
        self._kv.decode(last[:-1], all_logits=True)
        batch_s = time.perf_counter() - started
        started = time.perf_counter()
        self._kv.decode(last[-1:], all_logits=False)
        self._save_draft_ratios(calibration_ratios(batch_s, time.perf_counter() - started))

    def _ratios_file(self) -> tuple[Path | None, str]:
        import llama_cpp

        key = f"{self._kv.states.key if self._kv and self._kv.states else self.model_path.resolve()}"
        offload = self.n_gpu_layers != 0 and llama_cpp.llama_supports_gpu_offload()
        key += f"|threads={self.n_threads}|offload={offload}|batch={self.n_batch}"
        path = self.state_dir / "draft-costs.json" if self.state_dir is not None else None
        return path, hashlib.sha256(key.encode()).hexdigest()[:16]

    def draft_ratios(self) -> dict[int, float]:
        """The loaded model's cost curve for speculation, as measured before (empty: not yet)."""
        if self._draft_ratios is None:
            self._draft_ratios = {}
            path, key = self._ratios_file()
            if path is not None:
                with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                    saved = json.loads(path.read_text()).get(key, {})
                    self._draft_ratios = {int(k): float(v) for k, v in saved.items() if float(v) >= 1.0}
        return self._draft_ratios

    def _save_draft_ratios(self, measured: dict[int, float], smoothing: float = 0.3) -> None:
        ratios = self.draft_ratios()
        for k, ratio in measured.items():
            old = ratios.get(k)
            ratios[k] = max(1.0, ratio if old is None else old + smoothing * (ratio - old))
        path, key = self._ratios_file()
        if path is None:
            return
        with contextlib.suppress(OSError, ValueError):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            data[key] = {str(k): round(v, 4) for k, v in sorted(ratios.items())}
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)

    def _sampler(self, params: GenerationParams) -> Any:
        return self._llm._init_sampler(
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=params.min_p,
            temp=params.temperature,
            repeat_penalty=params.repeat_penalty,
            grammar=self._grammar(params),
        )

    def stream_chat(
        self,
        messages: Sequence[Message],
        params: GenerationParams,
        cancel: threading.Event | None = None,
    ) -> Iterator[EngineEvent]:
        import llama_cpp

        llm = self._require()
        started = time.perf_counter()
        plan = self.plan(messages)
        tokens = plan.tokens
        n_ctx = llm.n_ctx()
        if len(tokens) >= n_ctx:
            raise ContextOverflowError(
                f"the conversation is {len(tokens)} tokens but the context window is {n_ctx}; "
                "start a new chat or raise --ctx"
            )
        budget = n_ctx - len(tokens)
        max_new = min(params.max_tokens, budget) if params.max_tokens else budget
        llama_cpp.llama_perf_context_reset(llm.ctx)
        llm.set_seed(params.seed if params.seed is not None else random.getrandbits(32))

        reason: FinishReason = "length"
        stop_hit = False
        error: str | None = None
        produced = 0
        first_text: float | None = None
        first_token = last_token = 0.0
        self._evaluated = 0
        prompt_done = started
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stopper = StopMatcher(params.stop)
        drafter: PromptLookupDrafter | None = None
        generated: list[int] = []
        speculate = self.speculative == "on" or (
            self.speculative == "auto" and params.temperature > 0 and params.seed is None
        )
        adaptive = speculate and self.draft_length is None
        policy: DraftPolicy | FixedDraft | None = None
        try:
            yield from self._prefill(plan, cancel, calibrate=adaptive and not self.draft_ratios())
            prompt_done = time.perf_counter()
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
            else:
                if speculate:
                    # media placeholders are not tokens: never propose them
                    drafter = PromptLookupDrafter([t for t in tokens if t >= 0])
                policy = (
                    FixedDraft(self.draft_length)
                    if self.draft_length is not None
                    else DraftPolicy(ratios=self.draft_ratios())
                )
                assert self._kv is not None  # _prefill checked that a model is loaded
                generator = sample_tokens(self._kv, self._sampler(params), drafter, policy)
                try:
                    for token in generator:
                        if cancel is not None and cancel.is_set():
                            reason = "cancelled"
                            break
                        if token in self._stop_ids or llama_cpp.llama_vocab_is_eog(self._vocab, token):
                            reason = "stop"
                            break
                        last_token = time.perf_counter()
                        if produced == 0:
                            first_token = last_token
                        produced += 1
                        generated.append(token)
                        text, stopped = stopper.feed(decoder.decode(self._piece(token)))
                        if text:
                            if first_text is None:
                                first_text = time.perf_counter() - started
                            yield TextDelta(text)
                        if stopped:
                            reason, stop_hit = "stop", True
                            break
                        if produced >= max_new:
                            break
                finally:
                    generator.close()
        except (RuntimeError, ValueError, OSError) as exc:
            reason, error = "error", f"llama.cpp failed while generating: {exc}"
        tail = "" if stop_hit else stopper.feed(decoder.decode(b"", final=True))[0] + stopper.flush()
        if tail:
            if first_text is None:
                first_text = time.perf_counter() - started
            yield TextDelta(tail)
        if adaptive and isinstance(policy, DraftPolicy) and policy.learned():
            self._save_draft_ratios(policy.learned())  # what this answer measured refines the curve
        if reason != "error" and self.state_dir is not None and self._kv is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._kv.stash(to_disk=True)  # so `ask -c` in a new process starts where this turn ended
        elapsed = last_token - first_token
        yield Usage(
            prompt_tokens=len(tokens),
            completion_tokens=produced,
            prompt_eval_tokens=self._evaluated,
            ttft_s=first_text,
            decode_tokens_per_s=(produced - 1) / elapsed if produced > 1 and elapsed > 0 else None,
            prompt_eval_s=prompt_done - started,
            total_s=time.perf_counter() - started,
            restored_tokens=self._kv.restored if self._kv else 0,
            completion_ids=tuple(generated),
            drafted_tokens=drafter.proposed if drafter else 0,
            accepted_tokens=drafter.accepted if drafter else 0,
        )
        yield Finished(reason, error)
