"""Writes the conference labs' fake microphones into DIR: speech.wav, a speech-like signal
(noise bursts at syllable rate, about -12 dBFS), and silence.wav; 30 s, 48 kHz mono.
usage: python3 tests/browser/wavs.py DIR"""
import math, random, struct, sys, wave

d = sys.argv[1]
random.seed(7)


def write(name, fn, seconds=30, rate=48000):
    with wave.open(f"{d}/{name}", "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(fn(i / rate))) for i in range(seconds * rate)))


def speech(t):
    env = 1.0 if (t * 4) % 1.0 < 0.7 else 0.05
    return env * 8000 * (0.6 * math.sin(2 * math.pi * 180 * t) + 0.4 * random.uniform(-1, 1))


write("speech.wav", speech)
write("silence.wav", lambda t: 0)
