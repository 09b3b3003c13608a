"""WordCount, the talk's first example: lines in, a running count per word out.

Run it: ``fluvial run examples.wordcount.app:build -a wordcount -b localhost:9092``
"""

from __future__ import annotations

import os
import re

import fluvial
from fluvial import serdes

INPUT = "TextLinesTopic"
OUTPUT = "WordsWithCountsTopic"
_WORD = re.compile(r"\W+")


def split_words(line: str) -> list[str]:
    return [w for w in _WORD.split(line.lower()) if w]


def build(source: str | None = None, sink: str | None = None) -> fluvial.Topology:
    """TextLinesTopic → WordsWithCountsTopic, unless named here or by
    $FLUVIAL_WORDCOUNT_INPUT / $FLUVIAL_WORDCOUNT_OUTPUT (for ``fluvial run``)."""
    builder = fluvial.StreamsBuilder()
    source = source or os.environ.get("FLUVIAL_WORDCOUNT_INPUT", INPUT)
    sink = sink or os.environ.get("FLUVIAL_WORDCOUNT_OUTPUT", OUTPUT)
    (builder.stream(source, value_serde=serdes.String())
        .flat_map_values(split_words)
        .group_by(lambda _key, word: word)
        .count(materialized="counts")
        .to_stream()
        .to(sink, value_serde=serdes.Int64()))
    return builder.build()
