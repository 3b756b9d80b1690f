"""Attachments: images, audio files, video frames and the microphone (headless; Pillow, PyAV, sounddevice).

Every attachment is normalized (RGB PNG/JPEG images; 16 kHz mono 16-bit WAV audio), stored once under its
sha256 in the data dir (:mod:`.store`), and referenced from a message as an
:class:`g3chat.core.types.AttachmentPart`. Heavy libraries are imported inside the functions that use them.
"""
