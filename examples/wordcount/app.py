"""WordCount, the talk's first example: lines in, a running count per word out.

Run it: ``fluvial run examples.wordcount.app:build -a wordcount -b localhost:9092``
"""

from __future__ import annotations

import re

import fluvial
from fluvial import serdes

INPUT = "TextLinesTopic"
OUTPUT = "WordsWithCountsTopic"
_WORD = re.compile(r"\W+")


def split_words(line: str) -> list[str]:
    return [w for w in _WORD.split(line.lower()) if w]


def build() -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    (builder.stream(INPUT, value_serde=serdes.String())
        .flat_map_values(split_words)
        .group_by(lambda _key, word: word)
        .count(materialized="counts")
        .to_stream()
        .to(OUTPUT, value_serde=serdes.Int64()))
    return builder.build()
