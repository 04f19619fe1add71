#!/usr/bin/env bash
# Makes the display board's announcement clips: one short Ogg Vorbis file per
# letter, digit and the word "counter", per language, under
# src/web/assets/audio/<lang>/. The display plays "A042, counter 3" as
# A · 0 · 4 · 2 · counter · 3 from these, so announcements work offline and
# on browsers with no local speech voice. 16 kHz mono, silence trimmed:
# a few kB each. The clips are committed; run this again only to change
# them (needs espeak-ng and sox with Ogg support: apt-get install espeak-ng
# sox libsox-fmt-all).
set -euo pipefail
cd "$(dirname "$0")/.."

out=src/web/assets/audio
# language: espeak-ng voice, the word for "counter"
declare -A voice=([en]=en-gb [pt]=pt)
declare -A counter_word=([en]=counter [pt]=balcão)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for lang in "${!voice[@]}"; do
  mkdir -p "$out/$lang"
  clip() { # name, SSML body
    espeak-ng -m -v "${voice[$lang]}" -s 150 -w "$tmp/raw.wav" "<speak>$2</speak>"
    sox "$tmp/raw.wav" -r 16000 -c 1 -C 0 "$out/$lang/$1.ogg" \
      silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
  }
  for c in {a..z}; do
    clip "$c" "<say-as interpret-as=\"characters\">${c^^}</say-as>"
  done
  for d in {0..9}; do
    clip "$d" "$d"
  done
  clip counter "${counter_word[$lang]}"
done
du -sh "$out"/*
