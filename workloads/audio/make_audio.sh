#!/usr/bin/env bash
# Regenerates the prerecorded speech workload WAVs for rtbench.
# Requires: espeak-ng, sox. Output: PCM16 LE, 24000 Hz, mono, 100 ms leading
# digital silence, no trailing silence, peak normalised to -3 dBFS.
set -euo pipefail

OUT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TMP_DIR="$(mktemp -d)"
trap 'rm -rf "$TMP_DIR"' EXIT

# name|voice|speed (wpm)|text (SSML when it starts with <speak>: espeak-ng -m)
UTTERANCES=(
  "en_timer|en-us|175|Set a timer for ten minutes please."
  "en_weather|en-us|175|What's the weather going to be like in Seattle tomorrow?"
  "en_booking|en-us|175|Can you book a table for two at an Italian restaurant tonight at seven?"
  "en_reminder|en-us|175|Remind me to call my mom when I get home and to pick up some groceries on the way."
  "en_flight|en-us|175|I need to move my flight to Boston from Friday morning to Sunday afternoon and keep my aisle seat near the front."
  "ko_greeting|ko|175|안녕하세요 내일 서울 날씨 좀 알려 주세요."
  # A hesitation mid-sentence: a 600 ms SSML break (640 ms below the VAD level with the words'
  # own tails), longer than a 500 ms server-VAD silence window: the premature-endpointing case.
  "en_timer_pause|en-us|175|<speak>Set a timer for <break time='600ms'/> ten minutes please.</speak>"
)

for entry in "${UTTERANCES[@]}"; do
  IFS='|' read -r name voice speed text <<<"$entry"
  raw="$TMP_DIR/$name.raw.wav"
  ssml=()
  [[ "$text" == "<speak>"* ]] && ssml=(-m)
  espeak-ng "${ssml[@]}" -v "$voice" -s "$speed" -w "$raw" -- "$text"
  # -D: no dither (keeps padded silence exactly zero).
  # 1. resample to 24 kHz mono 16-bit
  # 2. normalise peak to -3 dBFS
  # 3. trim leading silence, then trailing silence (reverse/trim/reverse) at 1% FS
  #    (internal pauses are kept: `silence 1 ...` trims only up to the first sound)
  # 4. 5 ms fade-out to avoid a click, then 100 ms digital silence in front
  trimmed="$TMP_DIR/$name.trim.wav"
  sox -D "$raw" -r 24000 -c 1 -b 16 -e signed-integer "$trimmed" \
    rate -v 24000 \
    gain -n -3 \
    silence 1 0 1% \
    reverse silence 1 0 1% reverse
  sox -D "$trimmed" -r 24000 -c 1 -b 16 -e signed-integer "$OUT_DIR/$name.wav" \
    fade t 0 -0 0.005 \
    pad 0.1 0
  printf '%-12s %s\n' "$name" "$(soxi -D "$OUT_DIR/$name.wav")s"
done
