"""Public serdes: ``serdes.String()``, ``serdes.Int64()``, ``serdes.Json()``, or plug your own."""

from fluvial.io.serdes import BytesSerde as Bytes
from fluvial.io.serdes import Float64Serde as Float64
from fluvial.io.serdes import Int64Serde as Int64
from fluvial.io.serdes import JsonSerde as Json
from fluvial.io.serdes import Serde, SerdeError
from fluvial.io.serdes import StringSerde as String
from fluvial.io.windowed_serdes import SessionWindowedSerde as SessionWindowed
from fluvial.io.windowed_serdes import TimeWindowedSerde as TimeWindowed

__all__ = ["Bytes", "Float64", "Int64", "Json", "Serde", "SerdeError", "SessionWindowed",
           "String", "TimeWindowed"]
