"""WordCount with topic names from the environment, for tests that run `fluvial run`."""

from __future__ import annotations

import os

from examples.wordcount.app import split_words

import fluvial
from fluvial import serdes


def build() -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    (builder.stream(os.environ["WORDCOUNT_INPUT"], value_serde=serdes.String())
        .flat_map_values(split_words)
        .group_by(lambda _key, word: word)
        .count(materialized="counts")
        .to_stream()
        .to(os.environ["WORDCOUNT_OUTPUT"], value_serde=serdes.Int64()))
    return builder.build()
