"""A small server process that speaks each request with espeak-ng from the same fresh engine state.

espeak-ng keeps state between utterances in one process (pitch flutter phase, pause lengths), and re-initialising
it in-process is not supported (espeak_Terminate + espeak_Initialize hangs in 1.51). So this process initialises
the library once, never speaks itself, and forks a child per request: every child starts from the identical
just-initialised state, costs about a millisecond more than speaking in-process (a fresh `espeak-ng` command costs
~10 ms of start-up), and also reports word timings, which the command line cannot. It runs as its own
single-threaded process (`python -m vocaloom.text_to_token.espeak_zygote`) because forking a multi-threaded caller
(torch, Beam) is unsafe; it imports nothing that starts threads (not even numpy, whose BLAS does).

Protocol on stdin/stdout, little-endian: request = u32 prelude length, u32 text length, prelude and text as UTF-8;
the prelude (usually empty) is spoken first and discarded, to put the engine in another state on purpose.
Response = i32 n (-1: error, then u32 length + UTF-8 message), then u32 words, n int16 samples at SAMPLE_RATE,
and per word an i32 character offset into the text and an i32 start time in ms.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys

LIBRARY = "libespeak-ng.so.1"
VOICE = b"en-us"
RATE_WPM = 175  # espeak-ng's default, set explicitly so a distribution's defaults cannot change the teacher
SAMPLE_RATE = 22050
# espeak_lib.h constants
AUDIO_OUTPUT_SYNCHRONOUS, POS_CHARACTER, CHARS_UTF8, PARAM_RATE = 2, 1, 1, 1
EVENT_LIST_TERMINATED, EVENT_WORD = 0, 1


class EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(EspeakEvent)
)


class Engine:
    """The espeak-ng library in this process, collecting one utterance's samples and word events."""

    def __init__(self):
        self.lib = ctypes.CDLL(LIBRARY)
        if self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0) != SAMPLE_RATE:
            raise RuntimeError("espeak-ng did not initialise at 22050 Hz")
        self.callback = SynthCallback(self._collect)  # kept referenced: the library holds the pointer
        self.lib.espeak_SetSynthCallback(self.callback)
        if self.lib.espeak_SetVoiceByName(VOICE) != 0:
            raise RuntimeError(f"espeak-ng has no voice {VOICE.decode()}")
        self.lib.espeak_SetParameter(PARAM_RATE, RATE_WPM, 0)
        self.chunks, self.words = [], []

    def _collect(self, wav, n, events):
        if n > 0:
            self.chunks.append(ctypes.string_at(wav, 2 * n))  # int16 samples in the machine's (little) endianness
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            if events[i].type == EVENT_WORD:  # text_position counts characters from 1
                self.words.append((events[i].text_position - 1, events[i].audio_position))
            i += 1
        return 0

    def speak(self, text: str) -> tuple[bytes, list[tuple[int, int]]]:
        self.chunks, self.words = [], []
        data = text.encode("utf-8")
        status = self.lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        if status != 0 or self.lib.espeak_Synchronize() != 0:
            raise RuntimeError(f"espeak-ng failed with status {status}")
        return b"".join(self.chunks), self.words


def _read_exactly(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


def _response(engine: Engine, prelude: str, text: str) -> bytes:
    try:
        if prelude:
            engine.speak(prelude)
        audio, words = engine.speak(text)
    except Exception as e:  # reported to the caller, which raises it there in one line
        message = str(e).encode("utf-8")
        return struct.pack("<iI", -1, len(message)) + message
    flat = [value for word in words for value in word]
    return struct.pack("<iI", len(audio) // 2, len(words)) + audio + struct.pack(f"<{len(flat)}i", *flat)


def _speak_in_child(engine: Engine, prelude: str, text: str) -> bytes:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child must never return into the server's loop, whatever happens
        status = 1
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as out:
                out.write(_response(engine, prelude, text))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as result:
        data = result.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or len(data) < 8:
        message = f"espeak-ng child exited with status {status}".encode()
        return struct.pack("<iI", -1, len(message)) + message
    return data


def main() -> None:
    engine = Engine()
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            prelude_len, text_len = struct.unpack("<II", _read_exactly(requests, 8))
            prelude = _read_exactly(requests, prelude_len).decode("utf-8")
            text = _read_exactly(requests, text_len).decode("utf-8")
        except EOFError:
            return
        replies.write(_speak_in_child(engine, prelude, text))
        replies.flush()


if __name__ == "__main__":
    main()
