"""Gemma 3n's ears: log-mel features, the audio encoder and its embedder, in numpy.

llama.cpp runs Gemma 3n's text model but not its audio tower, so g3chat runs the tower itself and hands the
resulting soft tokens to llama.cpp as embeddings (see :mod:`g3chat.core.engine.embeddings`). Every module
here imports numpy; none is imported by the CLI until audio is actually used.

- :mod:`.features`: waveform -> log-mel spectrogram (Gemma3nAudioFeatureExtractor).
- :mod:`.config`, :mod:`.shapes`: the encoder's hyper-parameters (E2B's by default) and parameter shapes.
- :mod:`.encoder` (on :mod:`.layers`): the conformer audio tower and the audio embedder.
- :mod:`.weights`: the tower's weights from an mmproj GGUF or safetensors.
- :mod:`.hub`: only the tower's tensors from the original checkpoint on the Hub, by HTTP range reads.
- :mod:`.layout`: where the soft tokens go in a prompt, padding included.
"""
