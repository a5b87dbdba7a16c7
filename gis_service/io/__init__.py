"""Reading, checking and writing layer data: imports, exports and the demo loader."""
